// Online writes to a live catalog: add, remove, update. A write commits to the store (the
// system of record, and so the log of writes) and then changes the in-memory index; the index
// file is only a snapshot, written now and then off the request path (snapshot_index_if_stale)
// and caught up from the store at the next load. Thread-safe; writes are serialised.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "image/image_decoder.h"
#include "service/data_directory.h"
#include "service/model_pools.h"
#include "service/serving_state.h"

namespace lookalike {

struct WriterOptions {
  size_t max_per_category = 1000;  // see CatalogOptions::max_per_category
  DecodeOptions decode;
};

class CatalogWriter {
 public:
  // Keeps references: all four must outlive the writer.
  CatalogWriter(LiveState& live, CatalogStore& store, const DataDirectory& directory, ModelPools& models,
                WriterOptions options);

  // Visible to the next search when they return, durable before. add throws Error(kConflict)
  // for an id in use and leaves no file behind when it fails.
  Item add(std::string_view image_bytes, Item item);
  bool remove(const std::string& id);
  bool update(const std::string& id, const ItemMetadata& metadata,
              const std::optional<std::string>& category);
  // Writes the index as a snapshot when writes changed it since the last one. Returns true when
  // it wrote.
  bool snapshot_index_if_stale();

 private:
  void remove_files_unless_shared(const std::string& sha256, const std::string& image_path) noexcept;
  void cache_feature_map(const Item& item, const cv::Mat& map);
  Item commit(NewItem& n, const cv::Mat& map, bool* inserted);

  LiveState& live_;
  CatalogStore& store_;
  const DataDirectory& directory_;
  ModelPools& models_;
  WriterOptions options_;
};

}  // namespace lookalike

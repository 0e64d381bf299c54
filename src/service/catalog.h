// The search engine over one data directory: catalog store + trained projection and category
// head + vector index + model. Thread-safe: searches run concurrently; writes (add, remove,
// train) take an exclusive lock only for the moment they swap in-memory state.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "image/image_decoder.h"
#include "model/embedder.h"
#include "service/query.h"
#include "store/catalog_store.h"

namespace lookalike {

struct CatalogOptions {
  std::string data_dir = "lookalike-data";
  std::string model_manifest;  // empty = default_model_manifest()
  size_t inference_slots = 1;  // concurrent CNN forwards (each holds its own network copy)
  size_t pca_dimension = 512;
  float min_confidence = 0.5f;  // `auto` falls back to all categories below this
  DecodeOptions decode;
  size_t max_image_bytes = 10 << 20;
};

// $LOOKALIKE_MODEL, else the build's models/inception_v3_gem.json.
std::string default_model_manifest();

struct Timings {
  double decode_ms = 0, model_ms = 0, classify_ms = 0, search_ms = 0, total_ms = 0;
};

struct Hit {
  Item item;
  float score;
};

struct Prediction {
  std::string category;  // top class, empty when the catalog has no classifier
  float confidence = 0;
  std::vector<std::pair<std::string, float>> probabilities;  // by decreasing probability
};

struct QueryResult {
  Prediction prediction;
  std::string searched;  // "all" or the category searched
  bool fallback_used = false;
  std::vector<Hit> hits;
  Timings timings;
  std::vector<float> descriptor;  // the query's raw model descriptor, reusable for another query
};

struct CatalogStats {
  size_t items = 0;
  std::vector<CategoryCount> categories;
  size_t descriptor_dimension = 0, index_dimension = 0;
  bool trained = false;
  bool classifier = false;
  double classifier_cv_accuracy = 0;
  std::string model_id;
  int64_t revision = 0;
};

class Catalog {
 public:
  // Opens (creating when absent) the data directory. The model is loaded now when
  // `load_model`, else on first use, so `list`/`info` never pay for it.
  Catalog(CatalogOptions options, bool load_model);
  ~Catalog();

  const CatalogOptions& options() const { return options_; }
  CatalogStore& store() { return *store_; }
  const std::string& data_dir() const { return options_.data_dir; }
  EmbedderPool& embedders();

  bool ready() const;  // trained and indexed, at least one item
  CatalogStats stats() const;

  QueryResult search_image(std::string_view image_bytes, const QueryOptions& options);
  QueryResult search_descriptor(const std::vector<float>& raw_descriptor, const QueryOptions& options);
  // "More like this" from a stored item, excluding the item itself.
  QueryResult similar(const std::string& id, const QueryOptions& options);
  Prediction classify_image(std::string_view image_bytes, Timings* timings = nullptr);

  // Online changes; visible to the next search when they return, durable before.
  Item add(std::string_view image_bytes, Item item);
  bool remove(const std::string& id);
  bool update(const std::string& id, const ItemMetadata& metadata,
              const std::optional<std::string>& category);

  // Stores the image bytes content-addressed under images/; returns the relative path.
  std::string store_image(std::string_view bytes, const std::string& sha256, ImageFormat format);
  std::string image_file(const Item& item) const;  // absolute path of the stored copy

  // Learns the PCA whitening and the category head from all stored descriptors, then rebuilds
  // the index. Returns a one-line summary.
  std::string train();
  // Rebuilds the vector index from the stored descriptors with the current projection.
  void reindex();
  // Reloads in-memory state after items were inserted directly into the store (import).
  void refresh();

 private:
  struct State;
  std::unique_ptr<State> build_state(bool allow_rebuild) const;
  QueryResult run_query(const std::vector<float>& raw, const QueryOptions& options,
                        std::optional<int64_t> exclude, Timings timings,
                        std::chrono::steady_clock::time_point started);
  void check_model_id();

  CatalogOptions options_;
  std::unique_ptr<CatalogStore> store_;
  std::unique_ptr<EmbedderPool> embedders_;
  std::mutex embedders_mutex_;
  std::unique_ptr<State> state_;
  mutable std::shared_mutex state_mutex_;
};

}  // namespace lookalike

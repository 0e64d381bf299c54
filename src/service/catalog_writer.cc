#include "service/catalog_writer.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "image/product_colour.h"
#include "service/searcher.h"
#include "train/feature_cache.h"

namespace lookalike {
namespace {

Error id_conflict(const std::string& id) {
  return Error(ErrorCode::kConflict, "an item with id '" + id + "' exists");
}

}  // namespace

CatalogWriter::CatalogWriter(LiveState& live, CatalogStore& store, const DataDirectory& directory,
                             ModelPools& models, WriterOptions options)
    : live_(live), store_(store), directory_(directory), models_(models), options_(std::move(options)) {}

Item CatalogWriter::add(std::string_view image_bytes, Item item) {
  std::optional<ModelPools::ImageSlot> slot(models_);
  const DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  // The common conflict, refused before any work.
  if (live_.read([&](const ServingState& s) { return s.items.key_of(item.id).has_value(); }))
    throw id_conflict(item.id);
  item.sha256 = sha256_hex(image_bytes);
  item.image_path = directory_.store_photo(image_bytes, item.sha256, decoded.format);
  // A refused or failed add leaves no photo or feature map behind (unless another item is the
  // same photo, which owns them).
  struct FilesGuard {
    CatalogWriter& writer;
    const Item& item;
    bool stored = false;
    ~FilesGuard() {
      if (!stored) writer.remove_files_unless_shared(item.sha256, item.image_path);
    }
  } files{*this, item};
  item.width = decoded.rgb.cols;
  item.height = decoded.rgb.rows;
  item.added_at = unix_seconds();
  item.colours = dominant_colours(decoded.rgb);
  cv::Mat descriptor, map;
  {
    auto embedder = models_.embedders().lease();
    descriptor = embedder->embed_keeping({decoded.rgb}, kHeadInputBlock, &map);
  }
  slot.reset();
  NewItem n{
      item, std::vector<float>(descriptor.ptr<float>(0), descriptor.ptr<float>(0) + descriptor.cols), {}};
  cache_feature_map(item, map);
  return commit(n, map, &files.stored);
}

// The cache is version-independent: the map is kept once, whatever version stores the item,
// for the photos a head would be trained on (max_per_category per category).
void CatalogWriter::cache_feature_map(const Item& item, const cv::Mat& map) {
  if (item.category.empty()) return;
  const size_t in_category = live_.read([&](const ServingState& s) {
    size_t count = 0;
    s.items.for_each_facts(
        [&](int64_t, const ItemTable::Facts& other) { count += other.category == item.category; });
    return count;
  });
  if (in_category >= options_.max_per_category) return;
  const std::array<int, 3> shape{map.size[1], map.size[2], map.size[3]};
  FeatureCache(directory_.feature_directory(), shape).put(item.sha256, false, map.ptr<float>(0));
}

// Stores the item with the descriptor of the version active when it commits (retrying when a
// switch lands meanwhile) and adds it to the in-memory index.
Item CatalogWriter::commit(NewItem& n, const cv::Mat& map, bool* inserted) {
  return with_version_retries([&] {
    int64_t version = 0;
    std::shared_ptr<HeadPool> heads;
    live_.read([&](const ServingState& s) {
      version = s.version;
      heads = s.heads;
    });
    n.version_descriptors.clear();
    if (heads) {
      const cv::Mat gem = heads->lease()->forward(map).gem;
      n.version_descriptors.push_back(
          {version, std::vector<float>(gem.ptr<float>(0), gem.ptr<float>(0) + gem.cols)});
    }
    // The store commits (and fsyncs) under the write lock only: searches go on meanwhile and
    // wait just for the in-memory insert.
    const auto write = live_.begin_write();
    const ServingState& state = live_.current(write);
    if (state.version != version) throw VersionChanged{};
    if (state.items.key_of(n.item.id)) throw id_conflict(n.item.id);
    n.item.key = store_.insert({n}).front();
    *inserted = true;  // the row owns the files from here on
    const int64_t revision = store_.revision();
    std::vector<float> projected;
    if (state.trained() && state.index) {
      projected = version == 0 ? state.project(n.descriptor)
                               : state.index_vector(n.version_descriptors.front().second, n.descriptor);
    }
    live_.change(write, [&](ServingState& s) {
      if (!projected.empty()) s.index->add(1, &n.item.key, projected.data());
      s.put_item(n.item);  // after the add: it tags the new row
      // Another process's commit in between leaves the state behind: its change log entries
      // (and this one, again) are applied by the next refresh_if_changed.
      if (revision == s.revision + 1) s.revision = revision;
    });
    return n.item;
  });
}

// Runs in a failed add's guard (a destructor) too, so it never throws: when the store cannot
// say whether another item shares the photo (PostgreSQL away), the files stay, and the orphan
// collection deletes them later if no item does.
void CatalogWriter::remove_files_unless_shared(const std::string& sha256,
                                               const std::string& image_path) noexcept {
  try {
    if (!store_.find_by_hash(sha256)) directory_.remove_photo(image_path, sha256);
  } catch (const std::exception& e) {
    spdlog::warn("kept the files of photo {} for now (the orphan collection checks them again): {}", sha256,
                 e.what());
  }
}

bool CatalogWriter::remove(const std::string& id) {
  Item removed;
  {
    const auto write = live_.begin_write();
    const ServingState& state = live_.current(write);
    const std::optional<int64_t> found = state.items.key_of(id);
    if (!found || !store_.remove(id)) return false;
    const int64_t key = *found;
    const int64_t revision = store_.revision();
    live_.change(write, [&](ServingState& s) {
      removed = s.items.at(key);
      s.erase_item(key);
      // Another process's commit in between leaves the state behind: its change log entries
      // (and this one, again) are applied by the next refresh_if_changed.
      if (revision == s.revision + 1) s.revision = revision;
      if (s.index) s.index->remove({key});
    });
  }
  // Files go after the commit (a crash in between leaves an orphan file, never a dangling row),
  // and only when no other item is the same photo: images and maps are stored by content.
  remove_files_unless_shared(removed.sha256, removed.image_path);
  return true;
}

bool CatalogWriter::update(const std::string& id, const ItemMetadata& metadata,
                           const std::optional<std::string>& category) {
  const auto write = live_.begin_write();
  const ServingState& state = live_.current(write);
  const std::optional<int64_t> found = state.items.key_of(id);
  if (!found || !store_.update_metadata(id, metadata, category)) return false;
  const int64_t key = *found;
  const int64_t revision = store_.revision();
  live_.change(write, [&](ServingState& s) {
    Item item = s.items.at(key);
    item.metadata = metadata;
    if (category) item.category = *category;
    s.put_item(item);
    if (revision != s.revision + 1) return;  // behind another process's commit: see commit()
    // Vectors are unchanged: the index snapshot still holds, so it is marked current.
    if (s.snapshot_revision == s.revision) s.snapshot_revision = revision;
    s.revision = revision;
  });
  return true;
}

bool CatalogWriter::snapshot_index_if_stale() {
  const auto write = live_.begin_write();
  // Writers are excluded and searches only read, so the index is serialised without a state lock.
  const ServingState& state = live_.current(write);
  if (!state.index || state.snapshot_revision == state.revision) return false;
  const std::string file = write_index_snapshot(state, directory_);
  live_.change(write, [&](ServingState& s) {
    s.snapshot_revision = s.revision;
    // The rows added since the index was loaded leave memory for the file (a moment: one mmap).
    s.index->map_snapshot(file);
  });
  return true;
}

}  // namespace lookalike

// What a catalog serves: the active model version's projection, classifier, head networks,
// vector index and items, loaded from the store as one immutable-while-shared ServingState, and
// LiveState, the one place that swaps it and takes the locks searches and writes need.
#pragma once

#include <cassert>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "index/pca_whitening.h"
#include "index/score_scale.h"
#include "index/vector_index.h"
#include "model/head_model.h"
#include "model/network_pool.h"
#include "model/softmax_classifier.h"
#include "service/category_tags.h"
#include "service/copy_finder.h"
#include "service/data_directory.h"
#include "service/item_table.h"
#include "service/query.h"
#include "store/catalog_store.h"

namespace lookalike {

using HeadPool = NetworkPool<HeadNetwork>;

inline constexpr float kDefaultMinConfidence = 0.5f;
inline constexpr float kDefaultFrozenSearchWeight = 0.0f;
inline constexpr float kDefaultInstanceThreshold = 0.6f;
inline constexpr float kDefaultInstanceMargin = 0.05f;
// Below this frozen cosine the best match is never taken for the same item, however far it leads:
// 99% of altered copies of catalog photos scored above 0.41 on the validation runs.
inline constexpr float kInstanceFloor = 0.4f;

struct ServingState {
  int64_t version = 0;              // 0 = frozen recipe
  size_t descriptor_dimension = 0;  // of the raw descriptors this version embeds
  std::optional<PcaWhitening> pca;  // frozen recipe: raw -> whitened; trained: L2 normalisation only
  SoftmaxClassifier classifier;     // frozen: on the whitened vector; trained: on the raw GeM vector
  // A trained version's head networks. Shared with queries in flight, so a switch never frees a
  // network while a forward runs on it.
  std::shared_ptr<HeadPool> heads;
  nlohmann::json training = nlohmann::json::object();
  std::unique_ptr<VectorIndex> index;
  // The part of the snapshot `index` was read from that the load left unchecked
  // (ServingStateOptions::defer_copies_check), for its owner to check and take.
  std::optional<UncheckedPart> unchecked_copies;
  ScoreScale score_scale;  // measured on the index at load; writes since do not move it much
  // Changed through put_item and erase_item only, which keep the two in step.
  ItemTable items;
  CategoryTags categories;  // for category filters, which run per scanned row
  CopyGroups copies;        // items whose photos are copies of one product shot (service/copy_finder.h)
  int64_t revision = 0;
  std::string projection = "h";    // names index snapshots: the frozen PCA's hash, "h" for a head
  int64_t snapshot_revision = -1;  // the revision the index's newest snapshot file describes
  float min_confidence = kDefaultMinConfidence;  // `auto`'s threshold unless a caller sets one
  // A trained version whose predictions blend in the frozen recipe's probe: its queries run the
  // whole CNN once, for the probe's GeM descriptor and the head's mixed7 maps.
  struct FrozenBlend {
    PcaWhitening pca;
    SoftmaxClassifier probe;
    float weight = 0;
    std::vector<size_t> column;  // the probe's class of each head class
  };
  std::optional<FrozenBlend> blend;
  // A trained version with the blend indexes [L2(head descriptor), PCA-whitened frozen
  // descriptor], each part scaled by 1/sqrt(2), so that a query can weigh the two cosines as it
  // likes: results rank by (1-w) cos_head + w cos_frozen, and items whose cos_frozen reaches the
  // instance threshold (the very product shot, recognised by the frozen descriptor) come first.
  std::optional<PcaWhitening> frozen_pca;  // set when the index holds the frozen part
  float frozen_search_weight = 0;          // w
  float instance_threshold = 0;            // 0: no instance tier
  float instance_margin = 0;               // the best match's lead over the next (same_item)

  bool trained() const { return version != 0 || pca.has_value(); }
  // Adds an item, or replaces the one with its key (items and categories), and tags
  // its row in the index with its category, when the index holds it already (add it first).
  void put_item(const Item& item);
  // Tags every row of the index with its item's category (VectorIndex::set_tags): for an index
  // just built or loaded, since tags are not in snapshots.
  void tag_index();
  // Forgets the item with this key, if any (not in the index).
  void erase_item(int64_t key);
  bool searches_frozen() const { return frozen_pca.has_value(); }
  // The frozen recipe (version 0) ranks by the frozen descriptor itself: it marks the same item
  // without a second search.
  bool has_instance_tier() const { return (searches_frozen() || version == 0) && instance_threshold > 0; }
  // Whether a query must embed the frozen recipe's descriptor too (the whole CNN).
  bool needs_frozen() const { return blend.has_value() || searches_frozen(); }
  // Raw descriptors (n rows of descriptor_dimension, row-major) -> index vectors.
  std::vector<float> project(const std::vector<float>& raw) const;
  std::vector<float> project_all(size_t n, const float* raw) const;
  // The index vector of an item: project(raw), or with searches_frozen() the combined vector,
  // for which `frozen` is the frozen recipe's raw descriptor. Empty when a part has the wrong
  // size (a descriptor of another version).
  std::vector<float> index_vector(const std::vector<float>& raw, const std::vector<float>& frozen) const;
  // The same for n items at once: raw is n x descriptor_dimension and, with searches_frozen(),
  // frozen n x the frozen PCA's input (otherwise unread); sizes are the caller's to check.
  std::vector<float> index_vectors(size_t n, const float* raw, const float* frozen) const;
  // The combined index vector from an L2-normalised head part and a PCA-whitened frozen part.
  std::vector<float> combine(const float* head, const float* whitened) const;
  // The query vector whose inner product with a combined index vector is
  // head_weight * cos_head + frozen_weight * cos_frozen.
  std::vector<float> weighted_query(const float* head, const float* whitened, float head_weight,
                                    float frozen_weight) const;
  // The ranking query of a stored index vector (the identity unless searches_frozen()).
  std::vector<float> ranking_query_of(const std::vector<float>& indexed) const;
  Prediction predict(const QueryEmbedding& query, const std::vector<float>& projected) const;
};

struct ServingStateOptions {
  std::optional<int64_t> pinned_version;  // serve this version instead of the stored active one
  size_t inference_slots = 1;             // head networks per trained version
  bool blend_frozen = true;               // see CatalogOptions::blend_frozen
  float frozen_search_weight = kDefaultFrozenSearchWeight;  // see CatalogOptions
  float instance_threshold = kDefaultInstanceThreshold;     // see CatalogOptions
  float instance_margin = kDefaultInstanceMargin;           // see CatalogOptions
  bool read_only = false;                                   // load without writing anything (`check`)
  // Read a snapshot's float16 copies unchecked, mapped, and leave their check to the caller
  // (ServingState::unchecked_copies): a 1M-item start reads 0.2 GB instead of 2.2 GB first.
  bool defer_copies_check = false;
  IndexOptions index;  // build and search parameters; the kind comes from the store (kIndexKindBlob)
};

// Builds a ServingState from the store and the data directory: the index from its newest
// snapshot plus the writes since (catch-up), or rebuilt from the stored descriptors.
class ServingStateLoader {
 public:
  // Gives every item lacking one a descriptor of a trained version before it serves.
  using FillMissing = std::function<void(int64_t version, HeadPool& heads)>;

  ServingStateLoader(CatalogStore& store, const DataDirectory& directory, ServingStateOptions options,
                     FillMissing fill_missing);
  // Throws Error(kNotFound) for an unknown version, Error(kCorruptStore) when the index cannot
  // be loaded and `allow_rebuild` is false.
  std::unique_ptr<ServingState> load(bool allow_rebuild) const;

 private:
  // Sets the state's version (the active one unless pinned), head networks and revision, after
  // filling in the descriptors the version lacks; its stored model, when trained.
  std::optional<ModelVersion> resolve_version(ServingState& state) const;
  void load_frozen(ServingState& state) const;
  void load_trained(ServingState& state, const ModelVersion& version) const;
  void load_blend(ServingState& state, float weight) const;
  // The newest snapshot of the state's version and projection, read (or why it could not be),
  // with the score scale measured on it.
  struct SnapshotRead {
    std::optional<IndexSnapshot> file;
    std::unique_ptr<VectorIndex> index;
    std::optional<UncheckedPart> unchecked;  // with defer_copies_check
    ScoreScale score_scale;
    std::string error;
    bool scale_kept = false;              // read from beside the snapshot, not measured
    double read_ms = 0, measured_ms = 0;  // the snapshot read, then the scale measured, for the log
  };
  SnapshotRead read_snapshot(const ServingState& state) const;
  // The snapshot read, brought up to the store (catch_up), or the index rebuilt; the score scale
  // measured on it, or on the rebuilt index.
  void load_index(ServingState& state, SnapshotRead read, bool allow_rebuild) const;
  IndexOptions index_options() const;
  void rebuild_index(ServingState& state) const;
  void for_each_descriptor_page(
      const ServingState& state,
      const std::function<void(const std::vector<int64_t>&, const std::vector<float>&,
                               const std::vector<float>&)>& fn) const;
  bool catch_up(ServingState& state, VectorIndex& index) const;
  static ScoreScale measure_scores(const ServingState& state, const VectorIndex& index);

  CatalogStore& store_;
  const DataDirectory& directory_;
  ServingStateOptions options_;
  FillMissing fill_missing_;
};

// Writes the state's index as the snapshot of its revision and deletes the version's older ones
// (other versions' stay, for a switch back). Returns the file, from which the index may then
// serve its float16 copies (VectorIndex::map_snapshot).
std::string write_index_snapshot(const ServingState& state, const DataDirectory& directory);

// `check`: whether the state's index holds exactly its items, each with the vector its stored
// descriptor projects to. Adds the number of vectors compared to *compared.
std::vector<std::string> index_problems(const ServingState& state, const CatalogStore& store,
                                        size_t* compared);

// The state being served. Searches read it under a shared lock. Every change (add, remove,
// update, reload) holds the write lock for its whole length, store commit included, and takes
// the exclusive lock only for the moment it changes memory: searches never wait for an fsync.
class LiveState {
 public:
  using WriteLock = std::unique_lock<std::mutex>;

  explicit LiveState(std::unique_ptr<ServingState> initial) : state_(std::move(initial)) {}

  // Runs f(const ServingState&) under the shared lock and returns what it returns.
  template <typename F>
  decltype(auto) read(F&& f) const {
    std::shared_lock lock(mutex_);
    return f(static_cast<const ServingState&>(*state_));
  }
  WriteLock begin_write() { return WriteLock(write_mutex_); }
  // With the write lock held no one else changes the state, so it may be read without a lock.
  const ServingState& current(const WriteLock& write) const {
    assert(write.owns_lock() && write.mutex() == &write_mutex_);
    (void)write;
    return *state_;
  }
  // Changes memory under the exclusive lock; the write lock must be held. Then, when the items
  // want it, rebuilds their table beside the searches and swaps it in (rebuild_items).
  template <typename F>
  void change(const WriteLock& write, F&& f) {
    assert(write.owns_lock() && write.mutex() == &write_mutex_);
    {
      std::unique_lock lock(mutex_);
      f(*state_);
    }
    if (state_->items.wants_rebuild()) rebuild_items(write);
  }
  // Swaps in a freshly loaded state; the old one is freed outside the lock.
  void install(const WriteLock& write, std::unique_ptr<ServingState> fresh);

 private:
  // The item table rebuilt under the write lock only (searches read the old one meanwhile), then
  // swapped in under the exclusive lock: a search waits for the swap, not for the O(n) rebuild.
  void rebuild_items(const WriteLock& write);

  std::unique_ptr<ServingState> state_;
  mutable std::shared_mutex mutex_;
  std::mutex write_mutex_;
};

// Thrown inside a query or an add when the active version changed between embedding and
// searching (or storing); with_version_retries does the work again against the new version.
struct VersionChanged {};

template <typename Attempt>
auto with_version_retries(Attempt attempt) {
  constexpr int kMaxVersionRetries = 3;
  for (int i = 1;; ++i) {
    try {
      return attempt();
    } catch (const VersionChanged&) {
      if (i == kMaxVersionRetries) throw Error(ErrorCode::kNotReady, "the model version keeps changing");
    }
  }
}

}  // namespace lookalike

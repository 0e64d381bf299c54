// The search engine over one data directory, as one facade over its parts: the data directory's
// files (DataDirectory), the catalog store, the CNNs (ModelPools), the state being served and its
// reloads (ServingState, LiveState), queries (Searcher), online writes (CatalogWriter), the frozen
// recipe (frozen_recipe.h) and head versions (head_training.cc). Thread-safe: searches run
// concurrently; writes and reloads are serialised and hold the state's exclusive lock only for
// the moment they change memory.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "image/image_decoder.h"
#include "model/embedder.h"
#include "model/head_model.h"
#include "service/catalog_writer.h"
#include "service/data_directory.h"
#include "service/facets.h"
#include "service/frozen_recipe.h"
#include "service/model_pools.h"
#include "service/query.h"
#include "service/recommender.h"
#include "service/searcher.h"
#include "service/serving_state.h"
#include "store/catalog_store.h"
#include "train/feature_cache.h"
#include "train/head_trainer.h"

namespace lookalike {

class WorkQueue;  // store/work_queue.h

struct CatalogOptions {
  std::string data_dir = "lookalike-data";
  // Where the catalog's records live: empty for DATA/catalog.sqlite, else open_store's spec
  // (a postgresql:// URL). Photos, feature maps and index snapshots stay in data_dir.
  std::string store;
  std::string model_manifest;  // empty = default_model_manifest()
  std::string
      trunk_manifest;  // the trained head's input (cut after mixed7); empty = default_trunk_manifest()
  // Serve this model version instead of the stored active one (used by `eval` to score the
  // frozen recipe beside the active version); never written back.
  std::optional<int64_t> pinned_version;
  // Photos per category whose feature maps are cached and trained on: bounds the cache's disk
  // use (2 x 444 KB per photo) and the training time on big catalogs.
  size_t max_per_category = 1000;
  // Queries are embedded as the photo and its mirror image, descriptors averaged: better
  // categories for twice the CNN time (figures in docs/quality.md). On by default: issue 5's
  // accuracy targets are met only with it.
  bool flip_queries = true;
  size_t inference_slots = 1;              // concurrent CNN forwards (each holds its own network copy)
  std::optional<InferenceEngine> engine;   // overrides the model manifests' (default: dnnl)
  Precision precision = Precision::kAuto;  // int8 calibrates on the catalog's photos once
  size_t pca_dimension = 512;
  // A trained version predicts categories with the frozen recipe's probe blended in, at the
  // weight chosen on its validation photos: better categories (docs/quality.md), but each query
  // runs the whole CNN instead of the trunk cut after mixed7. Off: the head alone, faster.
  bool blend_frozen = true;
  // A trained version with the blend can rank by its head's descriptor and the frozen recipe's
  // together, the frozen part at this weight. Default 0, the head's alone: on validation any
  // weight cost category precision, and the instance tier below finds the very item without it
  // (docs/quality.md). Free at query time: blended queries embed the frozen descriptor anyway.
  float frozen_search_weight = kDefaultFrozenSearchWeight;
  // With the blend, items whose frozen-descriptor cosine to the query reaches this threshold are
  // taken for the query's very product shot and ranked first, marked `same_item` (0: off;
  // docs/quality.md): the head's ranking for look-alikes, the frozen descriptor for the item.
  float instance_threshold = kDefaultInstanceThreshold;
  // ... or when it is the best match and leads the next by this much (frozen cosine >= 0.4).
  float instance_margin = kDefaultInstanceMargin;
  // Query expansion: each query is searched again, moved toward its best `neighbours` results
  // (weighted by score^power). 0: off.
  QueryExpansion expansion;
  // `auto` falls back to all categories below this confidence. Unset: the active version's own
  // threshold, chosen on its validation split (0.5 for the frozen recipe).
  std::optional<float> min_confidence;
  DecodeOptions decode;
  size_t max_image_bytes = 10 << 20;
  // Loading writes nothing (`check`): a stale index is rebuilt in memory only, and items missing
  // a descriptor of the active version are left without one (and reported).
  bool read_only = false;
  // Map the index snapshot's float16 copies unchecked at start and check them later
  // (check_started_copies): `serve`, whose start at 1M items would otherwise read 2 GB first.
  bool check_copies_later = false;
};

// $LOOKALIKE_MODEL, else the build's models/inception_v3_gem.json.
std::string default_model_manifest();
// The manifest beside the descriptor model named inception_v3_mixed7.json.
std::string default_trunk_manifest(const std::string& model_manifest);

// What `train` does beyond the frozen recipe: the head trained on the catalog's categories.
struct HeadTrainingRequest {
  HeadTrainOptions head;
  double validation_fraction = 0.05;
  size_t min_per_category = 20;  // categories with fewer photos are left out; < 2 left: no head
  // Activate the new version even when the frozen recipe classifies its validation photos better.
  bool always_activate = false;
  // The frozen probe's weight in the new version's predictions (0 = the head alone); unset:
  // chosen on the validation photos (choose_blend_weight).
  std::optional<float> frozen_blend_weight;
  // PostgreSQL store: the new version's descriptors of the items whose feature maps are not
  // cached here (those needing the CNN) are computed by `lookalike worker` processes, through
  // the queue (WorkQueue::enqueue_descriptors); the version is activated once they are done.
  // When no job moves for worker_idle_seconds, the rest is computed here at activation.
  bool on_workers = false;
  double worker_idle_seconds = 60;
  const std::atomic<bool>* cancel = nullptr;  // set from a signal handler: stop, keep nothing
  // Feature-map extraction and descriptor computation: (stage, done, total).
  std::function<void(const std::string&, size_t, size_t)> on_stage;
  HeadTrainCallbacks callbacks;
};

struct HeadTrainingOutcome {
  bool trained = false;
  bool activated = false;  // false: stored, but the frozen recipe validated better
  int64_t version = 0;
  std::string summary;  // one line, also when no head was trained (says why)
  nlohmann::json info = nlohmann::json::object();
};

struct CatalogStats {
  size_t items = 0;
  std::vector<CategoryCount> categories;
  size_t descriptor_dimension = 0, index_dimension = 0;
  bool trained = false;
  bool classifier = false;
  double classifier_cv_accuracy = 0;
  std::string model_id;
  std::string store;  // CatalogStore::describe()
  int64_t revision = 0;
  int64_t model_version = 0;          // active: 0 = frozen recipe
  float frozen_blend_weight = 0;      // the frozen probe's weight in the predictions (0: none)
  float frozen_search_weight = 0;     // the frozen descriptor's weight in the search (0: none)
  float instance_threshold = 0;       // frozen cosine from which a hit is the very item (0: off)
  float instance_margin = 0;          // the best match's lead that makes it the very item
  InferenceInfo inference;            // engine, precision and instruction set of the CNN
  std::string index_choice = "auto";  // the index type asked for (reindex --index)
  std::string index_kind;             // the one in use: flat, ivfpq or hnsw ("" before training)
  std::string index_parameters;
  // In memory, and the exact copies served from the mapped snapshot file (VectorIndex).
  size_t index_bytes = 0, index_exact_copy_bytes = 0, index_mapped_copy_bytes = 0;
  // Set when the store could not be read (PostgreSQL away): categories are then counted from
  // the items in memory, model_id and index_choice are those of the last answer it gave.
  std::string store_error;
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
  const DataDirectory& directory() const { return directory_; }
  EmbedderPool& embedders();

  bool ready() const;              // trained and indexed, at least one item
  size_t size() const;             // items being served (from memory: answers without the store)
  int64_t active_version() const;  // the version serving now (0 = frozen recipe)
  CatalogStats stats() const;

  QueryResult search_image(std::string_view image_bytes, const QueryOptions& options);
  // Searches again with an earlier query's embedding (QueryResult::embedding); throws
  // Error(kConflict) when another version became active meanwhile.
  QueryResult search_embedding(const QueryEmbedding& embedding, const QueryOptions& options);
  // "More like this" from a stored item, excluding the item itself.
  QueryResult similar(const std::string& id, const QueryOptions& options);
  // Every item's id in the order `recommend` feeds go through them (by internal key: stable, so
  // an interrupted feed can be resumed).
  std::vector<std::string> recommendation_order() const;
  // The look-alikes of each of `ids`, in order, from one index search per category present
  // (service/recommender.h). Throws Error(kNotFound) for an unknown id, Error(kNotReady) before
  // the catalog is trained.
  std::vector<Recommendation> recommend(const std::vector<std::string>& ids, const RecommendOptions& options);
  Prediction classify_image(std::string_view image_bytes, Timings* timings = nullptr);

  // Online changes; visible to the next search when they return, durable before.
  Item add(std::string_view image_bytes, Item item);
  bool remove(const std::string& id);
  bool update(const std::string& id, const ItemMetadata& metadata,
              const std::optional<std::string>& category);

  // The active trained version and its descriptors for a batch of mixed7 maps (N x C x H x W,
  // from embed_keeping), one row each; version 0 and no rows while the frozen recipe is active.
  // Lets a writer store an item complete, with the descriptor the active version searches by.
  std::pair<int64_t, std::vector<std::vector<float>>> active_version_descriptors(const cv::Mat& maps);

  // Absolute path of the item's stored photo. With a PostgreSQL store, a photo this data
  // directory lacks (imported by a worker or on another machine) is fetched from the store first.
  std::string image_file(const Item& item) const;
  // The embedding queue and shared photos of a PostgreSQL store (opened on first use, its own
  // connection); null for an embedded (SQLite) catalog.
  WorkQueue* queue() const;
  // Computes and stores the descriptors of trained `version` (active or not) for these stored
  // items: a worker's share of a new version (WorkQueue::enqueue_descriptors). The version's
  // head is loaded once per catalog. Throws Error(kNotFound) for an unknown version.
  void store_version_descriptors(int64_t version, const std::vector<Item>& items);

  // Compares the items not yet checked for copies of one product shot with their nearest
  // neighbours (or only `keys` among them), stores the pairs found (service/copy_finder.h) and
  // serves the groups they form. Does nothing before the catalog is trained and indexed.
  CopyCheckSummary check_copies(const std::function<void(size_t, size_t)>& on_progress = {},
                                const std::vector<int64_t>& keys = {},
                                const std::atomic<bool>* cancel = nullptr);
  // Forgets every copy check, so that the next check_copies compares every item again.
  void forget_copies();
  // The groups of copies being served, each in key order.
  std::vector<std::vector<Item>> copy_groups() const;
  // The price range and attribute values of the items being served (one pass over them).
  CatalogFacets facets() const;

  // Learns the frozen recipe (PCA whitening and a linear category probe) from all stored
  // descriptors, then rebuilds the index. Returns a one-line summary. `on_phase` hears each
  // step's name as it starts.
  std::string train(const std::function<void(const std::string&)>& on_phase = {});
  // Trains a new model version (head on cached mixed7 maps), gives every item a descriptor of
  // it, then activates it atomically. A running server switches on its next refresh.
  HeadTrainingOutcome train_head(const HeadTrainingRequest& request);
  // Activates a stored version (0 = frozen recipe). Throws Error(kNotFound).
  void use_version(int64_t version);
  // Deletes an inactive trained version, its descriptors and its index files. Throws
  // Error(kNotFound) or Error(kConflict) (the active version).
  void remove_version(int64_t version);
  std::vector<ModelVersion> versions() const { return store_->model_versions(); }
  double frozen_cv_accuracy() const { return lookalike::frozen_cv_accuracy(*store_); }
  // Keeps an evaluation's headline figures with the serving version (shown by `info`).
  void record_evaluation(const nlohmann::json& figures);
  nlohmann::json evaluation(int64_t version) const { return store_->evaluation(version); }
  // Reloads when another process (an import, a training, `model use`) changed the store.
  // Returns true when it did.
  bool refresh_if_changed();
  // The on-disk cache of mixed7 maps (originals and flips) under the data directory.
  FeatureCache feature_cache(const std::array<int, 3>& shape) const;
  ExtractorPool& extractors();
  // Photos to measure the int8 calibration on when the catalog itself has too few (a first
  // import sets the photos it is about to import). Call before the model is loaded.
  void set_calibration_photos(std::vector<std::string> paths) { calibration_photos_ = std::move(paths); }
  // Rebuilds the vector index from the stored descriptors (compacting removed rows); with a
  // kind, first records it as the catalog's index type (kept for every later rebuild).
  void reindex(std::optional<IndexKind> kind = std::nullopt);
  // Reloads in-memory state after items were inserted directly into the store (import).
  void refresh();
  // Writes the index as a snapshot file when writes changed it since the last one, and deletes
  // the version's older snapshots. Writes do not rewrite the index file; a server calls this
  // now and then, off the request path. Returns true when it wrote.
  bool snapshot_index_if_stale();
  // Checks, once, the float16 copies a start left unchecked (check_copies_later): when damaged,
  // drops the version's snapshots and rebuilds the index from the catalog database. Call before
  // the first snapshot_index_if_stale, which would seal damaged copies into a new snapshot, and
  // from one thread. Returns false when they were damaged. Throws io_error() when unreadable.
  bool check_started_copies();
  // `check`: whether the loaded index holds exactly the items, each with the vector its stored
  // descriptor projects to. Adds the number of vectors compared to *compared.
  std::vector<std::string> index_problems(size_t* compared) const;

 private:
  ServingStateLoader loader(bool defer_copies_check = false);
  void reload(const LiveState::WriteLock& write);
  void install_copies(size_t writes, bool pairs_changed);
  void fill_missing_descriptors(int64_t version, HeadPool& heads);
  KeyedDescriptors head_descriptors(const std::vector<Item>& items, HeadPool& heads,
                                    const std::function<void(size_t)>& on_done);
  void check_model_id(const EmbedderPool& embedders);
  std::optional<Int8Calibration> int8_calibration(const ModelManifest& manifest);
  ModelPoolOptions model_pool_options();

  CatalogOptions options_;
  DataDirectory directory_;
  std::unique_ptr<CatalogStore> store_;
  std::vector<std::string> calibration_photos_;
  ModelPools models_;
  std::unique_ptr<LiveState> live_;
  std::optional<UncheckedPart> unchecked_copies_;  // check_started_copies
  std::unique_ptr<Searcher> searcher_;
  std::unique_ptr<CatalogWriter> writer_;
  std::atomic<int64_t> unsettled_revision_{-1};  // refresh_if_changed: last revision seen
  mutable std::mutex queue_mutex_;
  mutable std::unique_ptr<WorkQueue> queue_;
  // The store's part of stats() as last read, answered while the store cannot be reached.
  struct StoreFigures {
    std::vector<CategoryCount> categories;
    std::string model_id, index_choice;
  };
  StoreFigures store_figures() const;
  mutable std::mutex store_figures_mutex_;
  mutable std::optional<StoreFigures> last_store_figures_;
  std::mutex version_heads_mutex_;  // guards version_heads_ (store_version_descriptors)
  std::map<int64_t, std::unique_ptr<HeadPool>> version_heads_;
};

}  // namespace lookalike

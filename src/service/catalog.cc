#include "service/catalog.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "common/allocator.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "image/image_probe.h"
#include "image/product_colour.h"
#include "service/change_follower.h"
#include "service/int8_calibrator.h"
#include "store/work_queue.h"

#ifndef LOOKALIKE_DEFAULT_MODEL_DIR
#define LOOKALIKE_DEFAULT_MODEL_DIR "models"
#endif

namespace lookalike {
namespace fs = std::filesystem;

namespace {

constexpr const char* kModelIdBlob = "model_id";

CatalogOptions with_default_manifests(CatalogOptions options) {
  if (options.model_manifest.empty()) options.model_manifest = default_model_manifest();
  if (options.trunk_manifest.empty()) options.trunk_manifest = default_trunk_manifest(options.model_manifest);
  return options;
}

}  // namespace

std::string default_model_manifest() {
  if (const char* env = std::getenv("LOOKALIKE_MODEL"); env && *env) return env;
  return (fs::path(LOOKALIKE_DEFAULT_MODEL_DIR) / "inception_v3_gem.json").string();
}

std::string default_trunk_manifest(const std::string& model_manifest) {
  return (fs::path(model_manifest).parent_path() / "inception_v3_mixed7.json").string();
}

bool ItemFilter::matches(const Item& item) const {
  return matches(ItemTable::Facts{item.category, item.metadata.price, item.metadata.attributes});
}

bool ItemFilter::matches(const ItemTable::Facts& item) const {
  if (!categories.empty() &&
      std::find(categories.begin(), categories.end(), item.category) == categories.end()) {
    return false;
  }
  if ((price_min || price_max) && !item.price) return false;
  if (price_min && *item.price < *price_min) return false;
  if (price_max && *item.price > *price_max) return false;
  for (const auto& [key, value] : attributes) {
    const auto it = item.attributes.find(key);
    if (it == item.attributes.end() || *it != value) return false;
  }
  return true;
}

Catalog::Catalog(CatalogOptions options, bool load_model)
    : options_(with_default_manifests(std::move(options))),
      directory_(options_.data_dir),
      store_(open_store(options_.store.empty() ? directory_.database() : options_.store)),
      models_(model_pool_options()) {
  // The CNN (about a second on 2 cores) loads while the catalog's state (items, recipe, index)
  // does: a restart or a new replica is ready after the longer of the two, not their sum.
  // Both sides go through the store, which serialises its own access.
  const auto started = std::chrono::steady_clock::now();
  std::future<double> model;
  if (load_model)
    model = std::async(std::launch::async, [this, started] {
      embedders();
      // OpenCV builds its L*a*b* conversion tables on first use (about 130 ms here): pay it now,
      // not on the first search that weighs colour.
      dominant_colours(cv::Mat(4, 4, CV_8UC3, cv::Scalar(200, 40, 40)));
      return ms_since(started);
    });
  auto state = loader(options_.check_copies_later).load(/*allow_rebuild=*/true);
  unchecked_copies_ = std::exchange(state->unchecked_copies, std::nullopt);
  live_ = std::make_unique<LiveState>(std::move(state));
  return_free_memory();  // what reading the items and the index left free in the heap
  const double state_ms = ms_since(started);
  searcher_ = std::make_unique<Searcher>(
      *live_, *store_, models_,
      SearcherOptions{options_.flip_queries, options_.min_confidence, options_.decode, options_.expansion});
  writer_ = std::make_unique<CatalogWriter>(*live_, *store_, directory_, models_,
                                            WriterOptions{options_.max_per_category, options_.decode});
  if (model.valid()) {
    const double model_ms = model.get();
    spdlog::info("loaded the catalog's state in {:.2f} s and the CNN in {:.2f} s, side by side",
                 state_ms / 1e3, model_ms / 1e3);
  }
}

Catalog::~Catalog() = default;

ServingStateLoader Catalog::loader(bool defer_copies_check) {
  ServingStateOptions options;
  options.defer_copies_check = defer_copies_check;
  options.pinned_version = options_.pinned_version;
  options.inference_slots = options_.inference_slots;
  options.blend_frozen = options_.blend_frozen;
  options.frozen_search_weight = options_.frozen_search_weight;
  options.instance_threshold = options_.instance_threshold;
  options.instance_margin = options_.instance_margin;
  options.read_only = options_.read_only;
  return ServingStateLoader(*store_, directory_, options, [this](int64_t version, HeadPool& heads) {
    fill_missing_descriptors(version, heads);
  });
}

ModelPoolOptions Catalog::model_pool_options() {
  ModelPoolOptions o;
  o.model_manifest = options_.model_manifest;
  o.trunk_manifest = options_.trunk_manifest;
  o.inference_slots = options_.inference_slots;
  o.engine = options_.engine;
  o.precision = options_.precision;
  o.int8_calibration = [this](const ModelManifest& manifest) { return int8_calibration(manifest); };
  o.on_embedders_loaded = [this](const EmbedderPool& embedders) { check_model_id(embedders); };
  return o;
}

std::optional<Int8Calibration> Catalog::int8_calibration(const ModelManifest& manifest) {
  try {
    if (auto stored = stored_int8_calibration(*store_, manifest.name)) return stored;
  } catch (const Error& e) {
    // Damaged (edited by hand, say): the photos it came from are still here, so measure again.
    spdlog::warn("the catalog's int8 calibration is unreadable ({}); measuring it again", e.what());
  }
  std::vector<std::string> photos;
  if (const size_t n = store_->count(); n >= kMinCalibrationPhotos) {
    // The photos spread_evenly would pick from all of them, without holding every item: this
    // runs beside the state's own load at start-up (1 GB of Items at 1M items).
    const size_t chosen = std::min(n, kCalibrationPhotos);
    size_t position = 0;
    store_->for_each_item([&](Item&& item) {
      if (photos.size() < chosen && position++ == spread_position(photos.size(), n, chosen))
        photos.push_back(image_file(item));
    });
  } else {
    photos = spread_evenly(calibration_photos_, kCalibrationPhotos);
  }
  auto measured = measure_int8_calibration(manifest, photos);
  if (measured && !options_.read_only)
    store_->put_blobs({{int8_calibration_blob(manifest.name), measured->to_json().dump()}});
  return measured;
}

EmbedderPool& Catalog::embedders() {
  return models_.embedders();
}
ExtractorPool& Catalog::extractors() {
  return models_.extractors();
}

FeatureCache Catalog::feature_cache(const std::array<int, 3>& shape) const {
  return FeatureCache(directory_.feature_directory(), shape);
}

void Catalog::check_model_id(const EmbedderPool& embedders) {
  const auto stored = store_->get_blob(kModelIdBlob);
  const std::string current = embedders.model_id();
  if (stored && *stored != current) {
    throw Error(ErrorCode::kCorruptStore, "the catalog in " + options_.data_dir + " was built with model '" +
                                              *stored + "', but the loaded model is '" + current +
                                              "'; import it again into a new data directory");
  }
  if (!stored) store_->put_blobs({{kModelIdBlob, current}});
}

QueryResult Catalog::search_image(std::string_view image_bytes, const QueryOptions& options) {
  return searcher_->search_image(image_bytes, options);
}

QueryResult Catalog::search_embedding(const QueryEmbedding& embedding, const QueryOptions& options) {
  return searcher_->search_embedding(embedding, options);
}

QueryResult Catalog::similar(const std::string& id, const QueryOptions& options) {
  return searcher_->similar(id, options);
}

Prediction Catalog::classify_image(std::string_view image_bytes, Timings* timings) {
  QueryOptions options;
  options.k = 0;
  options.category = "all";
  auto result = search_image(image_bytes, options);
  if (timings) *timings = result.timings;
  return result.prediction;
}

Item Catalog::add(std::string_view image_bytes, Item item) {
  Item stored = writer_->add(image_bytes, std::move(item));
  // Every machine on a PostgreSQL store shows the photo (image_file), also one added here.
  if (WorkQueue* photos = queue()) photos->put_photo(stored.sha256, image_bytes);
  // The new item is compared with its neighbours now (a few milliseconds), so that a copy of a
  // product already listed collapses into it from the next search on. The item is stored
  // either way; an unchecked one is compared by the next import or `duplicates`.
  try {
    check_copies({}, {stored.key});
  } catch (const std::exception& e) {
    spdlog::warn("item '{}' was added, but not compared for copies: {}", stored.id, e.what());
  }
  return stored;
}

bool Catalog::remove(const std::string& id) {
  return writer_->remove(id);
}

bool Catalog::update(const std::string& id, const ItemMetadata& metadata,
                     const std::optional<std::string>& category) {
  return writer_->update(id, metadata, category);
}

bool Catalog::snapshot_index_if_stale() {
  return writer_->snapshot_index_if_stale();
}

bool Catalog::check_started_copies() {
  const auto part = std::exchange(unchecked_copies_, std::nullopt);
  if (!part) return true;
  const auto started = std::chrono::steady_clock::now();
  if (part->intact()) {
    spdlog::info("checked the index snapshot's float16 copies ({:.2f} GB) in {:.2f} s", part->size() / 1e9,
                 ms_since(started) / 1e3);
    return true;
  }
  spdlog::error(
      "the index snapshot's float16 copies are damaged (their checksum does not match): rebuilding the "
      "index from the catalog database; searches use the damaged copies until it is done");
  reindex();
  return false;
}

std::vector<std::string> Catalog::index_problems(size_t* compared) const {
  return live_->read(
      [&](const ServingState& state) { return lookalike::index_problems(state, *store_, compared); });
}

bool Catalog::ready() const {
  return live_->read([](const ServingState& s) { return s.index && s.index->size() > 0; });
}

size_t Catalog::size() const {
  return live_->read([](const ServingState& s) { return s.items.size(); });
}

int64_t Catalog::active_version() const {
  return live_->read([](const ServingState& s) { return s.version; });
}

CatalogStats Catalog::stats() const {
  CatalogStats s = live_->read([&](const ServingState& state) {
    CatalogStats s;
    s.items = state.items.size();
    s.trained = state.trained();
    s.descriptor_dimension = state.descriptor_dimension;
    s.index_dimension = state.index ? state.index->dimension() : 0;
    s.classifier = !state.classifier.empty();
    // Frozen recipe: 5-fold accuracy of the linear probe; trained head: its validation accuracy.
    s.classifier_cv_accuracy =
        state.training.value("classifier_cv_accuracy", state.training.value("validation_accuracy", 0.0));
    s.revision = state.revision;
    s.model_version = state.version;
    s.frozen_blend_weight = state.blend ? state.blend->weight : 0.0f;
    s.frozen_search_weight = state.searches_frozen() ? state.frozen_search_weight : 0;
    s.instance_threshold = state.has_instance_tier() ? state.instance_threshold : 0;
    s.instance_margin = state.has_instance_tier() ? state.instance_margin : 0;
    if (state.index) {
      s.index_kind = index_kind_name(state.index->kind());
      s.index_parameters = state.index->parameters();
      s.index_bytes = state.index->index_bytes();
      s.index_exact_copy_bytes = state.index->exact_copy_bytes();
      s.index_mapped_copy_bytes = state.index->mapped_copy_bytes();
    }
    return s;
  });
  s.store = store_->describe();
  s.inference = models_.inference();
  // Read outside the state's lock: a round trip to PostgreSQL must not hold up a state swap.
  StoreFigures figures;
  try {
    figures = store_figures();
  } catch (const Error& e) {
    {
      std::lock_guard lock(store_figures_mutex_);
      if (!last_store_figures_) throw;
      figures = *last_store_figures_;
    }
    s.store_error = e.what();
    // The categories as the items in memory have them (the store's were read before, maybe
    // before an import): counting is O(items), paid only while the store is away.
    figures.categories = live_->read([](const ServingState& state) {
      std::map<std::string, size_t> counts;
      state.items.for_each_facts([&](int64_t, const ItemTable::Facts& item) {
        if (!item.category.empty()) ++counts[std::string(item.category)];
      });
      std::vector<CategoryCount> out;
      for (const auto& [name, count] : counts) out.push_back({name, count});
      return out;
    });
  }
  s.categories = std::move(figures.categories);
  s.model_id = std::move(figures.model_id);
  s.index_choice = std::move(figures.index_choice);
  return s;
}

Catalog::StoreFigures Catalog::store_figures() const {
  StoreFigures f{store_->categories(), store_->get_blob(kModelIdBlob).value_or(""),
                 store_->get_blob(kIndexKindBlob).value_or("auto")};
  std::lock_guard lock(store_figures_mutex_);
  last_store_figures_ = f;
  return f;
}

std::pair<int64_t, std::vector<std::vector<float>>> Catalog::active_version_descriptors(const cv::Mat& maps) {
  int64_t version = 0;
  std::shared_ptr<HeadPool> heads;
  live_->read([&](const ServingState& s) {
    version = s.version;
    heads = s.heads;
  });
  std::vector<std::vector<float>> rows;
  if (!heads || maps.empty()) return {version, rows};
  const cv::Mat gem = heads->lease()->forward(maps).gem;
  for (int r = 0; r < gem.rows; ++r) rows.emplace_back(gem.ptr<float>(r), gem.ptr<float>(r) + gem.cols);
  return {version, rows};
}

std::string Catalog::image_file(const Item& item) const {
  std::string path = directory_.photo_path(item.image_path);
  if (WorkQueue* photos = queue(); photos && !fs::exists(path)) {
    // Stored by content, so it lands at the very path the item records.
    if (const auto bytes = photos->photo(item.sha256))
      directory_.store_photo(*bytes, item.sha256, probe_image(*bytes).format);
  }
  return path;
}

WorkQueue* Catalog::queue() const {
  if (!is_postgres_spec(options_.store)) return nullptr;
  std::lock_guard lock(queue_mutex_);
  if (!queue_) queue_ = open_postgres_work_queue(options_.store);
  return queue_.get();
}

void Catalog::record_evaluation(const nlohmann::json& figures) {
  store_->set_evaluation(active_version(), figures);
}

std::string Catalog::train(const std::function<void(const std::string&)>& on_phase) {
  std::string summary = train_frozen_recipe(*store_, options_.pca_dimension, on_phase);
  if (on_phase) on_phase("building the vector index");
  refresh();
  return summary;
}

CopyCheckSummary Catalog::check_copies(const std::function<void(size_t, size_t)>& on_progress,
                                       const std::vector<int64_t>& keys, const std::atomic<bool>* cancel) {
  if (!ready()) return {};
  CopyCheckOptions options;
  options.keys = keys;
  options.cancel = cancel;
  options.read_photo = [this](const Item& item) {
    return read_file(image_file(item), options_.max_image_bytes);
  };
  options.on_progress = on_progress;
  const CopyCheckSummary summary = lookalike::check_copies(*live_, *store_, options);
  install_copies(summary.writes, summary.pairs > 0);
  return summary;
}

void Catalog::forget_copies() {
  store_->forget_copy_checks();
  install_copies(1, true);
}

// Serves the stored copy groups. The store's revision moved by `writes` commits that changed no
// vector: when nothing else moved it, the state (and its index snapshot) stays current, so that
// neither this process nor a server reloads the whole catalog for it. The groups are read again
// only when pairs changed: an add that finds no copy (the usual case) reads no pair.
void Catalog::install_copies(size_t writes, bool pairs_changed) {
  const auto write = live_->begin_write();
  const int64_t revision = store_->revision();
  std::optional<CopyGroups> groups;
  if (pairs_changed) groups = CopyGroups(store_->copy_pairs());
  live_->change(write, [&](ServingState& s) {
    if (groups) s.copies = std::move(*groups);
    const auto moved = static_cast<int64_t>(writes);
    if (s.revision + moved != revision) return;
    if (s.snapshot_revision == s.revision) s.snapshot_revision = revision;
    s.revision = revision;
  });
}

std::vector<std::vector<Item>> Catalog::copy_groups() const {
  std::vector<std::vector<Item>> out;
  live_->read([&](const ServingState& state) {
    for (const auto& group : state.copies.groups()) {
      std::vector<Item> items;
      for (const int64_t key : group) {
        if (auto item = state.items.find(key)) items.push_back(std::move(*item));
      }
      if (items.size() > 1) out.push_back(std::move(items));
    }
  });
  return out;
}

CatalogFacets Catalog::facets() const {
  return live_->read([](const ServingState& state) { return catalog_facets(state.items); });
}

void Catalog::use_version(int64_t version) {
  store_->set_active_version(version);
  refresh();
}

void Catalog::remove_version(int64_t version) {
  store_->remove_model_version(version);
  directory_.remove_index_snapshots(version);
}

bool Catalog::refresh_if_changed() {
  // A shared store's change log is applied in place at once (writes of other processes, a few
  // items at a time); a store without one, or a change that needs it, reloads as below.
  if (!options_.pinned_version) {
    const auto write = live_->begin_write();
    const FollowOutcome followed = follow_changes(*live_, write, *store_);
    if (followed != FollowOutcome::kReload) return followed == FollowOutcome::kApplied;
  }
  const int64_t revision = store_->revision();
  const bool due = live_->read([&](const ServingState& state) {
    if (revision == state.revision) return false;
    // A version switch is applied at once. Other changes (an import committing a batch every
    // second) wait until the store has stopped changing for one check, so a long import does
    // not make the server rebuild its state after every batch.
    const bool switched = !options_.pinned_version && store_->active_version() != state.version;
    const bool settled = revision == unsettled_revision_.exchange(revision);
    return switched || settled;
  });
  if (due) refresh();
  return due;
}

void Catalog::reindex(std::optional<IndexKind> kind) {
  const auto write = live_->begin_write();
  if (kind) store_->put_blobs({{kIndexKindBlob, index_kind_name(*kind)}});
  if (const auto sizes = compact_frozen_recipe(*store_))
    spdlog::info("stored the frozen recipe in its compact form: {:.1f} MB -> {:.1f} MB", sizes->first / 1e6,
                 sizes->second / 1e6);
  directory_.remove_index_snapshots(live_->current(write).version);
  reload(write);
}

void Catalog::refresh() {
  // Serialised with every other state change: two reloads (the watcher and a version switch)
  // must not install an older state last, and a reload must not drop a write made meanwhile.
  reload(live_->begin_write());
}

void Catalog::reload(const LiveState::WriteLock& write) {
  live_->install(write, loader().load(true));
  return_free_memory();  // the state replaced, and what loading its successor left free
}

}  // namespace lookalike

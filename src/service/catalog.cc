#include "service/catalog.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/files.h"
#include "common/vectors.h"
#include "index/pca_whitening.h"
#include "index/vector_index.h"
#include "model/softmax_classifier.h"
#include "service/head_validation.h"

#ifndef LOOKALIKE_DEFAULT_MODEL_DIR
#define LOOKALIKE_DEFAULT_MODEL_DIR "models"
#endif

namespace lookalike {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

constexpr const char* kPcaBlob = "pca";
constexpr float kDefaultMinConfidence = 0.5f;
constexpr const char* kClassifierBlob = "classifier";
constexpr const char* kTrainingBlob = "training";
constexpr const char* kModelIdBlob = "model_id";
constexpr size_t kMinPerCategory = 5;

constexpr int kMaxVersionRetries = 3;

// Holds one of the catalog's image slots: decoding and embedding a photo may need a few hundred
// MB (a 40-megapixel image decodes to 120 MB), so a burst of uploads waits here, holding only
// its compressed bytes, instead of decoding all at once.
class ImageSlot {
 public:
  explicit ImageSlot(std::counting_semaphore<>& slots) : slots_(slots) { slots_.acquire(); }
  ~ImageSlot() { slots_.release(); }
  ImageSlot(const ImageSlot&) = delete;
  ImageSlot& operator=(const ImageSlot&) = delete;

 private:
  std::counting_semaphore<>& slots_;
};

Error id_conflict(const std::string& id) {
  return Error(ErrorCode::kConflict, "an item with id '" + id + "' exists");
}

// Thrown inside a query or an add when the active version changed between embedding and
// searching (or storing); the work is done again against the new version.
struct VersionChanged {};

template <typename Attempt>
auto with_version_retries(Attempt attempt) {
  for (int i = 1;; ++i) {
    try {
      return attempt();
    } catch (const VersionChanged&) {
      if (i == kMaxVersionRetries) throw Error(ErrorCode::kNotReady, "the model version keeps changing");
    }
  }
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
  if (!categories.empty() &&
      std::find(categories.begin(), categories.end(), item.category) == categories.end()) {
    return false;
  }
  if ((price_min || price_max) && !item.metadata.price) return false;
  if (price_min && *item.metadata.price < *price_min) return false;
  if (price_max && *item.metadata.price > *price_max) return false;
  for (const auto& [key, value] : attributes) {
    const auto it = item.metadata.attributes.find(key);
    if (it == item.metadata.attributes.end() || *it != value) return false;
  }
  return true;
}

using HeadPool = NetworkPool<HeadNetwork>;

struct Catalog::State {
  int64_t version = 0;              // 0 = frozen recipe
  size_t descriptor_dimension = 0;  // of the raw descriptors this version embeds
  std::optional<PcaWhitening> pca;  // frozen recipe: raw -> whitened; trained: L2 normalisation only
  SoftmaxClassifier classifier;     // frozen: on the whitened vector; trained: on the raw GeM vector
  // A trained version's head networks. Shared with queries in flight, so a switch never frees a
  // network while a forward runs on it.
  std::shared_ptr<HeadPool> heads;
  nlohmann::json training = nlohmann::json::object();
  std::unique_ptr<VectorIndex> index;
  std::unordered_map<int64_t, Item> items;
  std::unordered_map<std::string, int64_t> keys_by_id;
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

  bool trained() const { return version != 0 || pca.has_value(); }
  Prediction predict(const QueryEmbedding& query, const std::vector<float>& projected) const;
  std::vector<float> project(const std::vector<float>& raw) const {
    if (pca) return pca->apply(1, raw.data());
    std::vector<float> v = raw;
    l2_normalise(v.data(), v.size());
    return v;
  }
  std::vector<float> project_all(size_t n, const float* raw) const {
    if (pca) return pca->apply(n, raw);
    std::vector<float> v(raw, raw + n * descriptor_dimension);
    for (size_t i = 0; i < n; ++i) l2_normalise(v.data() + i * descriptor_dimension, descriptor_dimension);
    return v;
  }
  std::vector<float> classifier_input(const std::vector<float>& raw,
                                      const std::vector<float>& projected) const {
    return version != 0 ? raw : projected;
  }
};

Catalog::Catalog(CatalogOptions options, bool load_model)
    : options_(std::move(options)),
      directory_(options_.data_dir),
      image_slots_(static_cast<std::ptrdiff_t>(options_.inference_slots + 2)) {
  if (options_.model_manifest.empty()) options_.model_manifest = default_model_manifest();
  if (options_.trunk_manifest.empty())
    options_.trunk_manifest = default_trunk_manifest(options_.model_manifest);
  store_ = open_sqlite_store(directory_.database());
  state_ = build_state(/*allow_rebuild=*/true);
  if (load_model) embedders();
}

Catalog::~Catalog() = default;

EmbedderPool& Catalog::embedders() {
  std::lock_guard lock(embedders_mutex_);
  if (!embedders_) {
    embedders_ = std::make_unique<EmbedderPool>(ModelManifest::load(options_.model_manifest),
                                                options_.inference_slots);
    check_model_id();
  }
  return *embedders_;
}

ExtractorPool& Catalog::extractors() {
  std::lock_guard lock(embedders_mutex_);
  if (!extractors_) {
    extractors_ = std::make_unique<ExtractorPool>(ModelManifest::load(options_.trunk_manifest),
                                                  options_.inference_slots);
  }
  return *extractors_;
}

FeatureCache Catalog::feature_cache(const std::array<int, 3>& shape) const {
  return FeatureCache(directory_.feature_directory(), shape);
}

void Catalog::check_model_id() {
  const auto stored = store_->get_blob(kModelIdBlob);
  const std::string current = embedders_->model_id();
  if (stored && *stored != current) {
    throw Error(ErrorCode::kCorruptStore, "the catalog in " + options_.data_dir + " was built with model '" +
                                              *stored + "', but the loaded model is '" + current +
                                              "'; import it again into a new data directory");
  }
  if (!stored) store_->put_blobs({{kModelIdBlob, current}});
}

std::unique_ptr<Catalog::State> Catalog::build_state(bool allow_rebuild) {
  auto state = std::make_unique<State>();
  state->version = options_.pinned_version.value_or(store_->active_version());
  std::optional<ModelVersion> version;
  if (state->version != 0) {
    version = store_->model_version(state->version);
    if (!version) throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(state->version));
    state->heads =
        std::make_shared<HeadPool>(make_networks<HeadNetwork>(options_.inference_slots, version->head_onnx));
    // Items added while this version was trained (or while another was active) get their
    // descriptor now, before the version serves anything.
    if (!options_.read_only) fill_missing_descriptors(state->version, *state->heads);
  }
  state->revision = store_->revision();
  for (auto& item : store_->all_items()) {
    state->keys_by_id[item.id] = item.key;
    state->items.emplace(item.key, std::move(item));
  }
  if (version) {
    load_trained(*state, *version);
  } else {
    load_frozen(*state);
  }
  if (state->trained()) load_index(*state, allow_rebuild);
  return state;
}

void Catalog::load_frozen(State& state) {
  const auto pca = store_->get_blob(kPcaBlob);
  if (!pca) return;  // imported but not trained yet
  state.pca = PcaWhitening::deserialize(*pca);
  state.projection = sha256_hex(*pca).substr(0, 12);
  state.descriptor_dimension = state.pca->input_dimension();
  if (auto c = store_->get_blob(kClassifierBlob)) state.classifier = SoftmaxClassifier::deserialize(*c);
  if (auto t = store_->get_blob(kTrainingBlob)) state.training = nlohmann::json::parse(*t, nullptr, false);
}

void Catalog::load_trained(State& state, const ModelVersion& version) {
  state.classifier = SoftmaxClassifier::deserialize(version.classifier);
  state.descriptor_dimension = state.classifier.dimension();
  state.training = version.info;
  state.min_confidence = version.info.value("auto_min_confidence", kDefaultMinConfidence);
  load_blend(state, version.info.value("frozen_blend_weight", 0.0f));
}

// The blend uses the frozen recipe as it is stored now: `train` relearns it before each new
// version, and a later frozen-only `train --no-head` keeps the same recipe on more photos.
void Catalog::load_blend(State& state, float weight) {
  if (weight <= 0 || !options_.blend_frozen) return;
  const auto pca = store_->get_blob(kPcaBlob);
  const auto probe = store_->get_blob(kClassifierBlob);
  if (!pca || !probe) return;
  State::FrozenBlend blend{
      PcaWhitening::deserialize(*pca), SoftmaxClassifier::deserialize(*probe), weight, {}};
  const auto& probe_classes = blend.probe.classes();
  for (const auto& name : state.classifier.classes()) {
    const auto it = std::find(probe_classes.begin(), probe_classes.end(), name);
    if (it == probe_classes.end()) {
      spdlog::warn("model version {}: the frozen probe lacks category '{}'; predicting with the head alone",
                   state.version, name);
      return;
    }
    blend.column.push_back(static_cast<size_t>(it - probe_classes.begin()));
  }
  state.blend = std::move(blend);
}

void Catalog::load_index(State& state, bool allow_rebuild) {
  if (const auto snapshot = directory_.latest_index_snapshot(state.version, state.projection)) {
    try {
      auto index = deserialize_flat_index(read_file(snapshot->path.string(), SIZE_MAX));
      if (catch_up(state, *index)) {
        state.index = std::move(index);
        state.snapshot_revision = snapshot->revision;
        return;
      }
    } catch (const Error& e) {
      spdlog::warn("{}; rebuilding it from the catalog database", e.what());
    }
  }
  if (!allow_rebuild) throw Error(ErrorCode::kCorruptStore, "vector index is missing");
  const auto started = Clock::now();
  std::vector<int64_t> keys;
  std::vector<float> raw;
  store_->for_each_descriptor(state.version, [&](int64_t key, const float* v, size_t d) {
    if (d != state.descriptor_dimension) {
      throw Error(ErrorCode::kCorruptStore, "item " + std::to_string(key) + " has a descriptor of " +
                                                std::to_string(d) + " values, expected " +
                                                std::to_string(state.descriptor_dimension));
    }
    if (!state.items.count(key)) return;
    keys.push_back(key);
    raw.insert(raw.end(), v, v + d);
  });
  const auto projected = state.project_all(keys.size(), raw.data());
  state.index = make_flat_index(keys.empty() ? state.descriptor_dimension : projected.size() / keys.size());
  state.index->add(keys.size(), keys.data(), projected.data());
  if (options_.read_only) return;
  const std::string file = directory_.index_snapshot_path(state.version, state.projection, state.revision);
  write_file_atomic(file, state.index->serialize());
  state.snapshot_revision = state.revision;
  // Index files of this version at older revisions are stale; other versions' stay for rollback.
  directory_.remove_index_snapshots(state.version, file);
  spdlog::info("rebuilt the vector index of version {} ({} items) in {:.0f} ms", state.version, keys.size(),
               ms_since(started));
}

// A snapshot plus the writes since: items removed since are dropped, items added since are
// added from their stored descriptors. Keys are never reused (AUTOINCREMENT), so a key in both
// is the same vector. False when so much changed that a rebuild is cheaper, or a snapshot does
// not fit the version.
bool Catalog::catch_up(State& state, VectorIndex& index) const {
  std::vector<int64_t> gone;
  std::unordered_set<int64_t> present;
  for (const int64_t key : index.ids()) {
    if (state.items.count(key)) {
      present.insert(key);
    } else {
      gone.push_back(key);
    }
  }
  std::vector<int64_t> missing;
  for (const auto& [key, item] : state.items) {
    if (!present.count(key)) missing.push_back(key);
  }
  if (missing.size() > 64 + state.items.size() / 8) return false;
  index.remove(gone);
  for (const int64_t key : missing) {
    const auto raw = store_->descriptor(state.version, key);
    if (raw.size() != state.descriptor_dimension) return false;
    const auto projected = state.project(raw);
    if (projected.size() != index.dimension()) return false;
    index.add(1, &key, projected.data());
  }
  if (!missing.empty() || !gone.empty()) {
    spdlog::info("index snapshot of version {} caught up: {} added, {} removed", state.version,
                 missing.size(), gone.size());
  }
  return true;
}

bool Catalog::snapshot_index_if_stale() {
  std::lock_guard write(write_mutex_);
  // Writers are excluded and searches only read, so the index is serialised without a state lock.
  State& state = *state_;
  if (!state.index || state.snapshot_revision == state.revision) return false;
  const std::string file = directory_.index_snapshot_path(state.version, state.projection, state.revision);
  write_file_atomic(file, state.index->serialize());
  directory_.remove_index_snapshots(state.version, file);
  std::unique_lock lock(state_mutex_);
  state.snapshot_revision = state.revision;
  return true;
}

std::vector<std::string> Catalog::index_problems(size_t* compared) const {
  std::shared_lock lock(state_mutex_);
  const State& state = *state_;
  std::vector<std::string> problems;
  if (!state.trained()) return problems;  // nothing is indexed before the first training
  if (!state.index) return {"version " + std::to_string(state.version) + " has no vector index"};
  const auto ids = state.index->ids();
  const std::unordered_set<int64_t> indexed(ids.begin(), ids.end());
  for (const int64_t id : ids) {
    if (!state.items.count(id))
      problems.push_back("the index holds key " + std::to_string(id) + ", no item has it");
  }
  for (const auto& [key, item] : state.items) {
    if (!indexed.count(key)) {
      problems.push_back("item '" + item.id + "' is not in the index");
      continue;
    }
    const auto raw = store_->descriptor(state.version, key);
    if (raw.size() != state.descriptor_dimension) continue;  // reported as a missing descriptor
    const auto expected = state.project(raw);
    const auto stored = state.index->vector(key);
    float worst = expected.size() == stored.size() ? 0.0f : 1.0f;
    for (size_t i = 0; i < stored.size() && worst <= 1e-4f; ++i)
      worst = std::max(worst, std::abs(expected[i] - stored[i]));
    if (worst > 1e-4f)
      problems.push_back("the index vector of item '" + item.id + "' is not its stored descriptor's");
    ++*compared;
  }
  return problems;
}

bool Catalog::ready() const {
  std::shared_lock lock(state_mutex_);
  return state_->index && state_->index->size() > 0;
}

bool Catalog::refresh_if_changed() {
  const int64_t revision = store_->revision();
  {
    std::shared_lock lock(state_mutex_);
    if (revision == state_->revision) return false;
    // A version switch is applied at once. Other changes (an import committing a batch every
    // second) wait until the store has stopped changing for one check, so a long import does
    // not make the server rebuild its state after every batch.
    const bool switched = !options_.pinned_version && store_->active_version() != state_->version;
    const bool settled = revision == unsettled_revision_.exchange(revision);
    if (!switched && !settled) return false;
  }
  refresh();
  return true;
}

double Catalog::frozen_cv_accuracy() const {
  const auto blob = store_->get_blob(kTrainingBlob);
  if (!blob) return 0;
  const auto doc = nlohmann::json::parse(*blob, nullptr, false);
  return doc.is_object() ? doc.value("classifier_cv_accuracy", 0.0) : 0.0;
}

std::optional<Catalog::FrozenProbeValidation> Catalog::frozen_probe_validation(
    const std::vector<LabelledKey>& train, const std::vector<LabelledKey>& validation,
    const std::vector<std::string>& classes) const {
  const auto pca_blob = store_->get_blob(kPcaBlob);
  if (!pca_blob || train.empty() || validation.empty()) return std::nullopt;
  // PCA-whitening was learned without labels on every item: no validation label leaks from it.
  const auto pca = PcaWhitening::deserialize(*pca_blob);
  // One pass over the frozen descriptors (a row-by-row lookup costs a statement per photo).
  std::unordered_map<int64_t, std::pair<bool, size_t>> wanted;  // key -> {validation?, index}
  for (size_t i = 0; i < train.size(); ++i) wanted[train[i].key] = {false, i};
  for (size_t i = 0; i < validation.size(); ++i) wanted[validation[i].key] = {true, i};
  const size_t d_in = pca.input_dimension();
  std::vector<float> training_raw, validation_raw(validation.size() * d_in);
  std::vector<int> training_labels;
  std::vector<bool> found(validation.size(), false);
  store_->for_each_descriptor(0, [&](int64_t key, const float* d, size_t n) {
    const auto it = wanted.find(key);
    if (it == wanted.end() || n != d_in) return;
    const auto [is_validation, index] = it->second;
    if (is_validation) {
      std::copy(d, d + n, validation_raw.begin() + static_cast<std::ptrdiff_t>(index * d_in));
      found[index] = true;
    } else {
      training_raw.insert(training_raw.end(), d, d + n);
      training_labels.push_back(train[index].label);
    }
  });
  if (training_labels.empty() || std::find(found.begin(), found.end(), false) != found.end())
    return std::nullopt;
  const auto x = pca.apply(training_labels.size(), training_raw.data());
  const auto v = pca.apply(validation.size(), validation_raw.data());
  const size_t d = pca.output_dimension();
  auto probe = SoftmaxClassifier::train(training_labels.size(), d, x.data(), training_labels, classes);
  // The served probe's temperature (fitted by cross-validation at `train`): blend weights are
  // chosen on these probabilities, so they must be as sharp as the ones served.
  if (auto served = store_->get_blob(kClassifierBlob))
    probe.set_temperature(SoftmaxClassifier::deserialize(*served).temperature());
  FrozenProbeValidation out;
  size_t correct = 0;
  for (size_t i = 0; i < validation.size(); ++i) {
    out.probabilities.push_back(probe.predict(v.data() + i * d));
    correct += predicts(out.probabilities.back(), validation[i].label);
  }
  out.accuracy = static_cast<double>(correct) / static_cast<double>(validation.size());
  return out;
}

void Catalog::record_evaluation(const nlohmann::json& figures) {
  int64_t version = 0;
  {
    std::shared_lock lock(state_mutex_);
    version = state_->version;
  }
  store_->set_evaluation(version, figures);
}

void Catalog::use_version(int64_t version) {
  store_->set_active_version(version);
  refresh();
}

void Catalog::remove_version(int64_t version) {
  store_->remove_model_version(version);
  directory_.remove_index_snapshots(version);
}

int64_t Catalog::active_version() const {
  std::shared_lock lock(state_mutex_);
  return state_->version;
}

CatalogStats Catalog::stats() const {
  std::shared_lock lock(state_mutex_);
  CatalogStats s;
  s.items = state_->items.size();
  s.categories = store_->categories();
  s.trained = state_->trained();
  s.descriptor_dimension = state_->descriptor_dimension;
  s.index_dimension = state_->index ? state_->index->dimension() : 0;
  s.classifier = !state_->classifier.empty();
  // Frozen recipe: 5-fold accuracy of the linear probe; trained head: its validation accuracy.
  s.classifier_cv_accuracy =
      state_->training.value("classifier_cv_accuracy", state_->training.value("validation_accuracy", 0.0));
  s.model_id = store_->get_blob(kModelIdBlob).value_or("");
  s.revision = state_->revision;
  s.model_version = state_->version;
  s.frozen_blend_weight = state_->blend ? state_->blend->weight : 0.0f;
  return s;
}

std::pair<int64_t, std::vector<std::vector<float>>> Catalog::active_version_descriptors(const cv::Mat& maps) {
  int64_t version = 0;
  std::shared_ptr<HeadPool> heads;
  {
    std::shared_lock lock(state_mutex_);
    version = state_->version;
    heads = state_->heads;
  }
  std::vector<std::vector<float>> rows;
  if (!heads || maps.empty()) return {version, rows};
  const cv::Mat gem = heads->lease()->forward(maps).gem;
  for (int r = 0; r < gem.rows; ++r) rows.emplace_back(gem.ptr<float>(r), gem.ptr<float>(r) + gem.cols);
  return {version, rows};
}

std::string Catalog::image_file(const Item& item) const {
  return directory_.photo_path(item.image_path);
}

namespace {

Prediction prediction_of(const std::vector<std::string>& classes, const std::vector<float>& probs) {
  Prediction p;
  for (size_t i = 0; i < probs.size(); ++i) p.probabilities.emplace_back(classes[i], probs[i]);
  std::sort(p.probabilities.begin(), p.probabilities.end(),
            [](auto& a, auto& b) { return a.second > b.second; });
  p.category = p.probabilities.front().first;
  p.confidence = p.probabilities.front().second;
  return p;
}

cv::Mat crop_image(const cv::Mat& rgb, const cv::Rect& crop) {
  const cv::Rect clipped = crop & cv::Rect(0, 0, rgb.cols, rgb.rows);
  if (clipped.width < 1 || clipped.height < 1) {
    throw Error(ErrorCode::kInvalidArgument, "crop {x,y,w,h} lies outside the " + std::to_string(rgb.cols) +
                                                 "x" + std::to_string(rgb.rows) + " image");
  }
  return rgb(clipped).clone();
}

}  // namespace

QueryEmbedding Catalog::embed_query(const cv::Mat& rgb) {
  QueryEmbedding e;
  std::shared_ptr<HeadPool> heads;
  bool blend = false;
  {
    std::shared_lock lock(state_mutex_);
    e.version = state_->version;
    heads = state_->heads;
    blend = state_->blend.has_value();
  }
  // Mirrored twin first in the batch when flip averaging is on; rows are averaged below.
  std::vector<cv::Mat> images{rgb};
  if (options_.flip_queries) {
    images.emplace_back();
    cv::flip(rgb, images.back(), 1);
  }
  const auto mean_row = [](cv::Mat rows) {
    if (rows.rows > 1) cv::reduce(rows, rows, 0, cv::REDUCE_AVG);
    return std::vector<float>(rows.ptr<float>(0), rows.ptr<float>(0) + rows.cols);
  };
  if (!heads) {
    e.raw = mean_row(embedders().lease()->embed(images));
    return e;
  }
  cv::Mat maps;
  if (blend) {
    e.frozen = mean_row(embedders().lease()->embed_keeping(images, kHeadInputBlock, &maps));
  } else {
    maps = extractors().lease()->extract(images, false);
  }
  e.raw = mean_row(heads->lease()->forward(maps).gem);
  return e;
}

QueryResult Catalog::search_image(std::string_view image_bytes, const QueryOptions& options) {
  const auto started = Clock::now();
  Timings timings;
  const ImageSlot slot(image_slots_);
  DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  if (options.crop) decoded.rgb = crop_image(decoded.rgb, *options.crop);
  timings.decode_ms = ms_since(started);
  return with_version_retries([&] {
    const auto model_started = Clock::now();
    const QueryEmbedding e = embed_query(decoded.rgb);
    timings.model_ms = ms_since(model_started);
    return run_query(e, options, std::nullopt, timings, started);
  });
}

QueryResult Catalog::search_embedding(const QueryEmbedding& embedding, const QueryOptions& options) {
  try {
    return run_query(embedding, options, std::nullopt, Timings{}, Clock::now());
  } catch (const VersionChanged&) {
    throw Error(ErrorCode::kConflict, "the embedding is of model version " +
                                          std::to_string(embedding.version) + ", which is no longer active");
  }
}

QueryResult Catalog::similar(const std::string& id, const QueryOptions& options) {
  const auto started = Clock::now();
  QueryOptions widened = options;
  widened.k = options.k + 1;  // the item itself is dropped below
  return with_version_retries([&] {
    std::optional<int64_t> key;
    QueryEmbedding e;
    bool blend = false;
    {
      std::shared_lock lock(state_mutex_);
      e.version = state_->version;
      blend = state_->blend.has_value();
      if (auto it = state_->keys_by_id.find(id); it != state_->keys_by_id.end()) key = it->second;
    }
    if (!key) throw Error(ErrorCode::kNotFound, "no catalog item with id '" + id + "'");
    e.raw = store_->descriptor(e.version, *key);
    if (blend) e.frozen = store_->descriptor(0, *key);
    return run_query(e, widened, key, Timings{}, started);
  });
}

Prediction Catalog::classify_image(std::string_view image_bytes, Timings* timings) {
  QueryOptions options;
  options.k = 0;
  options.category = "all";
  auto result = search_image(image_bytes, options);
  if (timings) *timings = result.timings;
  return result.prediction;
}

Prediction Catalog::State::predict(const QueryEmbedding& query, const std::vector<float>& projected) const {
  if (classifier.empty()) return {};
  auto probs = classifier.predict(classifier_input(query.raw, projected).data());
  if (blend && query.frozen.size() == blend->pca.input_dimension()) {
    const auto all = blend->probe.predict(blend->pca.apply(1, query.frozen.data()).data());
    std::vector<float> frozen;
    for (size_t column : blend->column) frozen.push_back(all[column]);
    probs = blend_probabilities(probs, frozen, blend->weight);
  }
  return prediction_of(classifier.classes(), probs);
}

QueryResult Catalog::run_query(const QueryEmbedding& embedding, const QueryOptions& options,
                               std::optional<int64_t> exclude, Timings timings, Clock::time_point started) {
  std::shared_lock lock(state_mutex_);
  const State& state = *state_;
  if (state.version != embedding.version) throw VersionChanged{};
  const std::vector<float>& raw = embedding.raw;
  if (!state.trained() || !state.index) {
    throw Error(ErrorCode::kNotReady,
                state.items.empty() ? "the catalog is empty; import photos first (lookalike import FOLDER)"
                                    : "the catalog is not trained yet; run `lookalike train`");
  }
  if (raw.size() != state.descriptor_dimension) {
    throw Error(ErrorCode::kInternal, "descriptor has " + std::to_string(raw.size()) +
                                          " values, the catalog expects " +
                                          std::to_string(state.descriptor_dimension));
  }
  auto classify_started = Clock::now();
  const auto query = state.project(raw);
  QueryResult result;
  result.prediction = state.predict(embedding, query);
  timings.classify_ms = ms_since(classify_started);

  const float threshold =
      options.min_confidence.value_or(options_.min_confidence.value_or(state.min_confidence));
  if (options.category == "all" || (options.category == "auto" && state.classifier.empty())) {
    result.searched = "all";
  } else if (options.category == "auto") {
    result.fallback_used = options.allow_fallback && result.prediction.confidence < threshold;
    result.searched = result.fallback_used ? "all" : result.prediction.category;
  } else {
    const auto& classes = state.classifier.classes();
    const auto cats = store_->categories();
    const bool known =
        std::any_of(cats.begin(), cats.end(), [&](auto& c) { return c.name == options.category; }) ||
        std::find(classes.begin(), classes.end(), options.category) != classes.end();
    if (!known) {
      std::string names;
      for (const auto& c : cats) names += (names.empty() ? "" : ", ") + c.name;
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown category '" + options.category + "'; use auto, all or one of: " + names);
    }
    result.searched = options.category;
  }

  const auto search_started = Clock::now();
  SearchParams params;
  params.k = options.k;
  const bool restrict = result.searched != "all";
  if (restrict || !options.filter.empty() || exclude) {
    params.accept = [&](int64_t key) {
      if (exclude && key == *exclude) return false;
      const auto it = state.items.find(key);
      if (it == state.items.end()) return false;
      if (restrict && it->second.category != result.searched) return false;
      return options.filter.empty() || options.filter.matches(it->second);
    };
  }
  if (params.k > 0) {
    const auto neighbours = state.index->search(1, query.data(), params);
    for (const auto& n : neighbours.front()) {
      if (result.hits.size() >= options.k - (exclude ? 1 : 0)) break;
      result.hits.push_back({state.items.at(n.id), n.score});
    }
  }
  timings.search_ms = ms_since(search_started);
  timings.total_ms = ms_since(started);
  result.timings = timings;
  result.embedding = embedding;
  return result;
}

Item Catalog::add(std::string_view image_bytes, Item item) {
  std::optional<ImageSlot> slot(image_slots_);
  const DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  {
    std::shared_lock lock(state_mutex_);  // the common conflict, refused before any work
    if (state_->keys_by_id.count(item.id)) throw id_conflict(item.id);
  }
  item.sha256 = sha256_hex(image_bytes);
  item.image_path = directory_.store_photo(image_bytes, item.sha256, decoded.format);
  // A refused or failed add leaves no photo or feature map behind (unless another item is the
  // same photo, which owns them).
  struct FilesGuard {
    Catalog& catalog;
    const Item& item;
    bool stored = false;
    ~FilesGuard() {
      if (!stored) catalog.remove_files_unless_shared(item.sha256, item.image_path);
    }
  } files{*this, item};
  item.width = decoded.rgb.cols;
  item.height = decoded.rgb.rows;
  item.added_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  cv::Mat descriptor, map;
  {
    auto embedder = embedders().lease();
    descriptor = embedder->embed_keeping({decoded.rgb}, kHeadInputBlock, &map);
  }
  slot.reset();
  const std::array<int, 3> shape{map.size[1], map.size[2], map.size[3]};
  NewItem n{
      item, std::vector<float>(descriptor.ptr<float>(0), descriptor.ptr<float>(0) + descriptor.cols), {}};
  // The cache is version-independent: the map is kept once, whatever version stores the item.
  size_t in_category = 0;
  {
    std::shared_lock lock(state_mutex_);
    for (const auto& [key, other] : state_->items) in_category += other.category == item.category;
  }
  if (!item.category.empty() && in_category < options_.max_per_category)
    feature_cache(shape).put(item.sha256, false, map.ptr<float>(0));
  return with_version_retries([&] {
    int64_t version = 0;
    std::shared_ptr<HeadPool> heads;
    {
      std::shared_lock lock(state_mutex_);
      version = state_->version;
      heads = state_->heads;
    }
    n.version_descriptors.clear();
    if (heads) {
      const cv::Mat gem = heads->lease()->forward(map).gem;
      n.version_descriptors.push_back(
          {version, std::vector<float>(gem.ptr<float>(0), gem.ptr<float>(0) + gem.cols)});
    }
    // The store commits (and fsyncs) under the write lock only: searches go on meanwhile and
    // wait just for the in-memory insert. The index file is not rewritten: a later snapshot
    // (snapshot_index_if_stale) or the next load (catch_up) covers this write.
    std::lock_guard write(write_mutex_);
    if (state_->version != version) throw VersionChanged{};
    if (state_->keys_by_id.count(item.id)) throw id_conflict(item.id);
    n.item.key = store_->insert({n}).front();
    files.stored = true;
    const int64_t revision = store_->revision();
    std::vector<float> projected;
    if (state_->trained() && state_->index)
      projected = state_->project(version == 0 ? n.descriptor : n.version_descriptors.front().second);
    std::unique_lock lock(state_mutex_);
    state_->items[n.item.key] = n.item;
    state_->keys_by_id[n.item.id] = n.item.key;
    state_->revision = revision;
    if (!projected.empty()) state_->index->add(1, &n.item.key, projected.data());
    return n.item;
  });
}

void Catalog::remove_files_unless_shared(const std::string& sha256, const std::string& image_path) {
  if (!store_->find_by_hash(sha256)) directory_.remove_photo(image_path, sha256);
}

bool Catalog::remove(const std::string& id) {
  Item removed;
  {
    std::lock_guard write(write_mutex_);
    const auto it = state_->keys_by_id.find(id);
    if (it == state_->keys_by_id.end() || !store_->remove(id)) return false;
    const int64_t key = it->second;
    const int64_t revision = store_->revision();
    std::unique_lock lock(state_mutex_);
    removed = state_->items.at(key);
    state_->keys_by_id.erase(it);
    state_->items.erase(key);
    state_->revision = revision;
    if (state_->index) state_->index->remove({key});
  }
  // Files go after the commit (a crash in between leaves an orphan file, never a dangling row),
  // and only when no other item is the same photo: images and maps are stored by content.
  remove_files_unless_shared(removed.sha256, removed.image_path);
  return true;
}

bool Catalog::update(const std::string& id, const ItemMetadata& metadata,
                     const std::optional<std::string>& category) {
  std::lock_guard write(write_mutex_);
  const auto it = state_->keys_by_id.find(id);
  if (it == state_->keys_by_id.end() || !store_->update_metadata(id, metadata, category)) return false;
  const int64_t revision = store_->revision();
  std::unique_lock lock(state_mutex_);
  Item& item = state_->items.at(it->second);
  item.metadata = metadata;
  if (category) item.category = *category;
  state_->revision = revision;
  // Vectors are unchanged: the index snapshot still holds, so it is marked current.
  if (state_->snapshot_revision == revision - 1) state_->snapshot_revision = revision;
  return true;
}

std::string Catalog::train() {
  std::vector<int64_t> keys;
  std::vector<float> raw;
  size_t dimension = 0;
  store_->for_each_descriptor(0, [&](int64_t key, const float* v, size_t d) {
    dimension = d;
    keys.push_back(key);
    raw.insert(raw.end(), v, v + d);
  });
  if (keys.size() < 8) {
    throw Error(ErrorCode::kNotReady,
                "training needs at least 8 catalog items, the catalog has " + std::to_string(keys.size()));
  }
  const auto started = Clock::now();
  auto pca = PcaWhitening::train(keys.size(), dimension, raw.data(), options_.pca_dimension);
  const auto projected = pca.apply(keys.size(), raw.data());
  spdlog::info("PCA-whitening of {} descriptors learned in {:.1f} s", keys.size(), ms_since(started) / 1000);
  nlohmann::json training{{"items", keys.size()}, {"pca_dimension", pca.output_dimension()}};
  std::vector<std::pair<std::string, std::string>> blobs{{kPcaBlob, pca.serialize()}};
  std::string summary =
      "PCA-whitening " + std::to_string(dimension) + " -> " + std::to_string(pca.output_dimension());

  // Category head: only over categories with enough photos to learn from.
  std::map<std::string, size_t> counts;
  const auto items = store_->all_items();
  std::unordered_map<int64_t, std::string> category_of;
  for (const auto& item : items) {
    category_of[item.key] = item.category;
    if (!item.category.empty()) ++counts[item.category];
  }
  std::vector<std::string> classes;
  for (const auto& [name, count] : counts) {
    if (count >= kMinPerCategory) classes.push_back(name);
  }
  if (classes.size() >= 2) {
    std::vector<float> x;
    std::vector<int> y;
    for (size_t i = 0; i < keys.size(); ++i) {
      const auto pos = std::find(classes.begin(), classes.end(), category_of[keys[i]]);
      if (pos == classes.end()) continue;
      x.insert(x.end(), projected.begin() + i * pca.output_dimension(),
               projected.begin() + (i + 1) * pca.output_dimension());
      y.push_back(static_cast<int>(pos - classes.begin()));
    }
    const auto classifier_started = Clock::now();
    const auto cv =
        SoftmaxClassifier::cross_validate(y.size(), pca.output_dimension(), x.data(), y, classes.size(), 5);
    auto classifier = SoftmaxClassifier::train(y.size(), pca.output_dimension(), x.data(), y, classes);
    classifier.set_temperature(cv.temperature);
    spdlog::info("classifier trained and cross-validated in {:.1f} s", ms_since(classifier_started) / 1000);
    blobs.emplace_back(kClassifierBlob, classifier.serialize());
    training["classifier_cv_accuracy"] = cv.accuracy;
    training["classifier_temperature"] = cv.temperature;
    training["classes"] = classes;
    summary += "; classifier over " + std::to_string(classes.size()) + " categories, 5-fold accuracy " +
               std::to_string(cv.accuracy).substr(0, 5) + ", temperature " +
               std::to_string(cv.temperature).substr(0, 4);
  } else {
    blobs.emplace_back(kClassifierBlob, SoftmaxClassifier().serialize());
    summary += "; no category classifier (needs >= 2 categories with >= " + std::to_string(kMinPerCategory) +
               " photos each)";
  }
  training["seconds"] = ms_since(started) / 1000;
  blobs.emplace_back(kTrainingBlob, training.dump());
  store_->put_blobs(blobs);
  refresh();
  return summary;
}

void Catalog::reindex() {
  std::lock_guard write(write_mutex_);
  directory_.remove_index_snapshots(state_->version);
  install(build_state(true));
}

void Catalog::refresh() {
  // Serialised with every other state change: two reloads (the watcher and a version switch)
  // must not install an older state last, and a reload must not drop a write made meanwhile.
  std::lock_guard write(write_mutex_);
  install(build_state(true));
}

void Catalog::install(std::unique_ptr<State> fresh) {
  std::unique_lock lock(state_mutex_);
  std::swap(state_, fresh);
  lock.unlock();
  // The old state (its index and item maps) is freed here, outside the lock.
}

}  // namespace lookalike

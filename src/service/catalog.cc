#include "service/catalog.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/files.h"
#include "index/pca_whitening.h"
#include "index/vector_index.h"
#include "model/softmax_classifier.h"

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
constexpr const char* kClassifierBlob = "classifier";
constexpr const char* kTrainingBlob = "training";
constexpr const char* kModelIdBlob = "model_id";
constexpr size_t kMinPerCategory = 5;

std::string index_file(const std::string& data_dir, int64_t revision) {
  return (fs::path(data_dir) / "index" / ("r" + std::to_string(revision) + ".faiss")).string();
}

}  // namespace

std::string default_model_manifest() {
  if (const char* env = std::getenv("LOOKALIKE_MODEL"); env && *env) return env;
  return (fs::path(LOOKALIKE_DEFAULT_MODEL_DIR) / "inception_v3_gem.json").string();
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

struct Catalog::State {
  std::optional<PcaWhitening> pca;
  SoftmaxClassifier classifier;
  nlohmann::json training = nlohmann::json::object();
  std::unique_ptr<VectorIndex> index;
  std::unordered_map<int64_t, Item> items;
  std::unordered_map<std::string, int64_t> keys_by_id;
  int64_t revision = 0;

  std::vector<float> project(const std::vector<float>& raw) const { return pca->apply(1, raw.data()); }
};

Catalog::Catalog(CatalogOptions options, bool load_model) : options_(std::move(options)) {
  if (options_.model_manifest.empty()) options_.model_manifest = default_model_manifest();
  std::error_code ec;
  fs::create_directories(fs::path(options_.data_dir) / "images", ec);
  fs::create_directories(fs::path(options_.data_dir) / "index", ec);
  if (ec)
    throw Error(ErrorCode::kInvalidArgument,
                "cannot create data directory " + options_.data_dir + ": " + ec.message());
  store_ = open_sqlite_store((fs::path(options_.data_dir) / "catalog.sqlite").string());
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

std::unique_ptr<Catalog::State> Catalog::build_state(bool allow_rebuild) const {
  auto state = std::make_unique<State>();
  state->revision = store_->revision();
  for (auto& item : store_->all_items()) {
    state->keys_by_id[item.id] = item.key;
    state->items.emplace(item.key, std::move(item));
  }
  const auto pca = store_->get_blob(kPcaBlob);
  if (!pca) return state;  // imported but not trained yet
  state->pca = PcaWhitening::deserialize(*pca);
  if (auto c = store_->get_blob(kClassifierBlob)) state->classifier = SoftmaxClassifier::deserialize(*c);
  if (auto t = store_->get_blob(kTrainingBlob)) state->training = nlohmann::json::parse(*t, nullptr, false);
  const std::string file = index_file(options_.data_dir, state->revision);
  if (fs::exists(file)) {
    try {
      state->index = deserialize_flat_index(read_file(file, SIZE_MAX));
      if (state->index->size() == state->items.size()) return state;
    } catch (const Error& e) {
      spdlog::warn("{}; rebuilding it from the catalog database", e.what());
    }
  }
  if (!allow_rebuild) throw Error(ErrorCode::kCorruptStore, "vector index is missing");
  const auto started = Clock::now();
  state->index = make_flat_index(state->pca->output_dimension());
  std::vector<int64_t> keys;
  std::vector<float> raw;
  store_->for_each_descriptor([&](int64_t key, const float* v, size_t d) {
    if (d != state->pca->input_dimension()) {
      throw Error(ErrorCode::kCorruptStore, "item " + std::to_string(key) + " has a descriptor of " +
                                                std::to_string(d) + " values, expected " +
                                                std::to_string(state->pca->input_dimension()));
    }
    keys.push_back(key);
    raw.insert(raw.end(), v, v + d);
  });
  const auto projected = state->pca->apply(keys.size(), raw.data());
  state->index->add(keys.size(), keys.data(), projected.data());
  write_file_atomic(file, state->index->serialize());
  for (const auto& entry : fs::directory_iterator(fs::path(options_.data_dir) / "index")) {
    if (entry.path() != fs::path(file)) fs::remove(entry.path());
  }
  spdlog::info("rebuilt vector index of {} items in {:.0f} ms", keys.size(), ms_since(started));
  return state;
}

bool Catalog::ready() const {
  std::shared_lock lock(state_mutex_);
  return state_->index && state_->index->size() > 0;
}

CatalogStats Catalog::stats() const {
  std::shared_lock lock(state_mutex_);
  CatalogStats s;
  s.items = state_->items.size();
  s.categories = store_->categories();
  s.trained = state_->pca.has_value();
  if (state_->pca) {
    s.descriptor_dimension = state_->pca->input_dimension();
    s.index_dimension = state_->pca->output_dimension();
  }
  s.classifier = !state_->classifier.empty();
  s.classifier_cv_accuracy = state_->training.value("classifier_cv_accuracy", 0.0);
  s.model_id = store_->get_blob(kModelIdBlob).value_or("");
  s.revision = state_->revision;
  return s;
}

std::string Catalog::store_image(std::string_view bytes, const std::string& sha256, ImageFormat format) {
  const fs::path relative =
      fs::path("images") / sha256.substr(0, 2) / (sha256 + image_format_extension(format));
  const fs::path absolute = fs::path(options_.data_dir) / relative;
  if (!fs::exists(absolute)) {
    fs::create_directories(absolute.parent_path());
    write_file_atomic(absolute.string(), bytes);
  }
  return relative.string();
}

std::string Catalog::image_file(const Item& item) const {
  return (fs::path(options_.data_dir) / item.image_path).string();
}

namespace {

Prediction predict(const SoftmaxClassifier& classifier, const std::vector<float>& projected) {
  Prediction p;
  if (classifier.empty()) return p;
  const auto probs = classifier.predict(projected.data());
  for (size_t i = 0; i < probs.size(); ++i) p.probabilities.emplace_back(classifier.classes()[i], probs[i]);
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

QueryResult Catalog::search_image(std::string_view image_bytes, const QueryOptions& options) {
  const auto started = Clock::now();
  Timings timings;
  DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  if (options.crop) decoded.rgb = crop_image(decoded.rgb, *options.crop);
  timings.decode_ms = ms_since(started);
  const auto model_started = Clock::now();
  cv::Mat descriptor;
  {
    auto embedder = embedders().lease();
    descriptor = embedder->embed({decoded.rgb});
  }
  timings.model_ms = ms_since(model_started);
  std::vector<float> raw(descriptor.ptr<float>(0), descriptor.ptr<float>(0) + descriptor.cols);
  return run_query(raw, options, std::nullopt, timings, started);
}

QueryResult Catalog::search_descriptor(const std::vector<float>& raw, const QueryOptions& options) {
  return run_query(raw, options, std::nullopt, Timings{}, Clock::now());
}

QueryResult Catalog::similar(const std::string& id, const QueryOptions& options) {
  const auto started = Clock::now();
  std::optional<int64_t> key;
  {
    std::shared_lock lock(state_mutex_);
    if (auto it = state_->keys_by_id.find(id); it != state_->keys_by_id.end()) key = it->second;
  }
  if (!key) throw Error(ErrorCode::kNotFound, "no catalog item with id '" + id + "'");
  const auto raw = store_->descriptor(*key);
  QueryOptions widened = options;
  widened.k = options.k + 1;  // the item itself is dropped below
  return run_query(raw, widened, key, Timings{}, started);
}

Prediction Catalog::classify_image(std::string_view image_bytes, Timings* timings) {
  QueryOptions options;
  options.k = 0;
  options.category = "all";
  auto result = search_image(image_bytes, options);
  if (timings) *timings = result.timings;
  return result.prediction;
}

QueryResult Catalog::run_query(const std::vector<float>& raw, const QueryOptions& options,
                               std::optional<int64_t> exclude, Timings timings, Clock::time_point started) {
  std::shared_lock lock(state_mutex_);
  const State& state = *state_;
  if (!state.pca || !state.index) {
    throw Error(ErrorCode::kNotReady,
                state.items.empty() ? "the catalog is empty; import photos first (lookalike import FOLDER)"
                                    : "the catalog is not trained yet; run `lookalike train`");
  }
  if (raw.size() != state.pca->input_dimension()) {
    throw Error(ErrorCode::kInternal, "descriptor has " + std::to_string(raw.size()) +
                                          " values, the catalog expects " +
                                          std::to_string(state.pca->input_dimension()));
  }
  auto classify_started = Clock::now();
  const auto query = state.project(raw);
  QueryResult result;
  result.prediction = predict(state.classifier, query);
  timings.classify_ms = ms_since(classify_started);

  const float threshold = options.min_confidence.value_or(options_.min_confidence);
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
  result.descriptor = raw;
  return result;
}

Item Catalog::add(std::string_view image_bytes, Item item) {
  const DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  cv::Mat descriptor;
  {
    auto embedder = embedders().lease();
    descriptor = embedder->embed({decoded.rgb});
  }
  item.sha256 = sha256_hex(image_bytes);
  item.image_path = store_image(image_bytes, item.sha256, decoded.format);
  item.width = decoded.rgb.cols;
  item.height = decoded.rgb.rows;
  item.added_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  NewItem n{item, std::vector<float>(descriptor.ptr<float>(0), descriptor.ptr<float>(0) + descriptor.cols)};
  std::unique_lock lock(state_mutex_);
  if (state_->keys_by_id.count(item.id))
    throw Error(ErrorCode::kConflict, "an item with id '" + item.id + "' exists");
  n.item.key = store_->insert({n}).front();
  state_->items[n.item.key] = n.item;
  state_->keys_by_id[n.item.id] = n.item.key;
  state_->revision = store_->revision();
  if (state_->pca && state_->index) {
    const auto projected = state_->project(n.descriptor);
    state_->index->add(1, &n.item.key, projected.data());
    write_file_atomic(index_file(options_.data_dir, state_->revision), state_->index->serialize());
  }
  return n.item;
}

bool Catalog::remove(const std::string& id) {
  std::unique_lock lock(state_mutex_);
  const auto it = state_->keys_by_id.find(id);
  if (it == state_->keys_by_id.end() || !store_->remove(id)) return false;
  const int64_t key = it->second;
  state_->keys_by_id.erase(it);
  state_->items.erase(key);
  state_->revision = store_->revision();
  if (state_->index) {
    state_->index->remove({key});
    write_file_atomic(index_file(options_.data_dir, state_->revision), state_->index->serialize());
  }
  return true;
}

bool Catalog::update(const std::string& id, const ItemMetadata& metadata,
                     const std::optional<std::string>& category) {
  std::unique_lock lock(state_mutex_);
  const auto it = state_->keys_by_id.find(id);
  if (it == state_->keys_by_id.end() || !store_->update_metadata(id, metadata, category)) return false;
  Item& item = state_->items.at(it->second);
  item.metadata = metadata;
  if (category) item.category = *category;
  state_->revision = store_->revision();
  if (state_->index)
    write_file_atomic(index_file(options_.data_dir, state_->revision), state_->index->serialize());
  return true;
}

std::string Catalog::train() {
  std::vector<int64_t> keys;
  std::vector<float> raw;
  size_t dimension = 0;
  store_->for_each_descriptor([&](int64_t key, const float* v, size_t d) {
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
  std::unique_lock lock(state_mutex_);
  std::error_code ec;
  fs::remove(index_file(options_.data_dir, store_->revision()), ec);
  state_ = build_state(true);
}

void Catalog::refresh() {
  auto fresh = build_state(true);
  std::unique_lock lock(state_mutex_);
  state_ = std::move(fresh);
}

}  // namespace lookalike

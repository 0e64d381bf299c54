#include "service/serving_state.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <future>
#include <limits>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/files.h"
#include "common/vectors.h"
#include "service/frozen_recipe.h"
#include "service/head_validation.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

constexpr float kIndexTolerance = 1e-4f;

Prediction prediction_of(const std::vector<std::string>& classes, const std::vector<float>& probs) {
  Prediction p;
  for (size_t i = 0; i < probs.size(); ++i) p.probabilities.emplace_back(classes[i], probs[i]);
  std::sort(p.probabilities.begin(), p.probabilities.end(),
            [](auto& a, auto& b) { return a.second > b.second; });
  p.category = p.probabilities.front().first;
  p.confidence = p.probabilities.front().second;
  return p;
}

}  // namespace

void ServingState::put_item(const Item& item) {
  const int64_t key = item.key;
  categories.set(key, item.category);
  items.put(item);
  if (index) {
    const CategoryTags::Tag tag = categories.of(key);
    index->set_tags(1, &key, &tag);
  }
}

void ServingState::tag_index() {
  if (!index) return;
  const std::vector<int64_t> keys = items.keys();
  std::vector<uint32_t> tags;
  tags.reserve(keys.size());
  for (const int64_t key : keys) tags.push_back(categories.of(key));
  index->set_tags(keys.size(), keys.data(), tags.data());
}

void ServingState::erase_item(int64_t key) {
  if (!items.erase(key)) return;
  categories.erase(key);
}

std::vector<float> ServingState::project(const std::vector<float>& raw) const {
  if (pca) return pca->apply(1, raw.data());
  std::vector<float> v = raw;
  l2_normalise(v.data(), v.size());
  return v;
}

std::vector<float> ServingState::project_all(size_t n, const float* raw) const {
  if (pca) return pca->apply(n, raw);
  std::vector<float> v(raw, raw + n * descriptor_dimension);
  for (size_t i = 0; i < n; ++i) l2_normalise(v.data() + i * descriptor_dimension, descriptor_dimension);
  return v;
}

std::vector<float> ServingState::combine(const float* head, const float* whitened) const {
  return weighted_query(head, whitened, 0.5f, 0.5f);
}

std::vector<float> ServingState::weighted_query(const float* head, const float* whitened, float head_weight,
                                                float frozen_weight) const {
  // Index parts are scaled by 1/sqrt(2); a query part scaled by weight * sqrt(2) gives
  // weight * cosine. combine() is the weights' 0.5 / 0.5 case: unit length.
  const size_t h = descriptor_dimension, f = frozen_pca->output_dimension();
  const float a = head_weight * std::sqrt(2.0f), b = frozen_weight * std::sqrt(2.0f);
  std::vector<float> v(h + f);
  for (size_t i = 0; i < h; ++i) v[i] = a * head[i];
  for (size_t i = 0; i < f; ++i) v[h + i] = b * whitened[i];
  return v;
}

std::vector<float> ServingState::ranking_query_of(const std::vector<float>& indexed) const {
  if (!searches_frozen() || indexed.size() != descriptor_dimension + frozen_pca->output_dimension())
    return indexed;
  std::vector<float> parts(indexed);  // back to unit-length parts
  for (float& x : parts) x *= std::sqrt(2.0f);
  return weighted_query(parts.data(), parts.data() + descriptor_dimension, 1 - frozen_search_weight,
                        frozen_search_weight);
}

std::vector<float> ServingState::index_vector(const std::vector<float>& raw,
                                              const std::vector<float>& frozen) const {
  if (raw.size() != descriptor_dimension) return {};
  if (searches_frozen() && frozen.size() != frozen_pca->input_dimension()) return {};
  return index_vectors(1, raw.data(), frozen.data());
}

std::vector<float> ServingState::index_vectors(size_t n, const float* raw, const float* frozen) const {
  auto projected = project_all(n, raw);
  if (!searches_frozen()) return projected;
  const auto whitened = frozen_pca->apply(n, frozen);
  const size_t h = descriptor_dimension, f = frozen_pca->output_dimension();
  std::vector<float> combined;
  combined.reserve(n * (h + f));
  for (size_t i = 0; i < n; ++i) {
    const auto v = combine(projected.data() + i * h, whitened.data() + i * f);
    combined.insert(combined.end(), v.begin(), v.end());
  }
  return combined;
}

Prediction ServingState::predict(const QueryEmbedding& query, const std::vector<float>& projected) const {
  if (classifier.empty()) return {};
  // Frozen recipe: the probe reads the whitened vector; a trained version's head the raw one.
  auto probs = classifier.predict(version != 0 ? query.raw.data() : projected.data());
  if (blend && query.frozen.size() == blend->pca.input_dimension()) {
    const auto all = blend->probe.predict(blend->pca.apply(1, query.frozen.data()).data());
    std::vector<float> frozen;
    for (size_t column : blend->column) frozen.push_back(all[column]);
    probs = blend_probabilities(probs, frozen, blend->weight);
  }
  return prediction_of(classifier.classes(), probs);
}

ServingStateLoader::ServingStateLoader(CatalogStore& store, const DataDirectory& directory,
                                       ServingStateOptions options, FillMissing fill_missing)
    : store_(store), directory_(directory), options_(options), fill_missing_(std::move(fill_missing)) {}

std::unique_ptr<ServingState> ServingStateLoader::load(bool allow_rebuild) const {
  const auto started = std::chrono::steady_clock::now();
  auto state = std::make_unique<ServingState>();
  const std::optional<ModelVersion> version = resolve_version(*state);
  // Used only where has_instance_tier(): the frozen recipe, or a version indexing the frozen part.
  state->instance_threshold = options_.instance_threshold;
  state->instance_margin = options_.instance_margin;
  if (version) {
    load_trained(*state, *version);
  } else {
    load_frozen(*state);
  }
  // The index snapshot is read while the items load: each takes seconds at 1M items (1.1 s and
  // 5.5 s on the 2-core VM), and neither needs the other until the writes since are replayed.
  std::future<SnapshotRead> snapshot;
  if (state->trained()) snapshot = std::async(std::launch::async, [&] { return read_snapshot(*state); });
  const size_t count = store_.count();
  state->items.reserve(count);
  store_.for_each_item([&](Item&& item) { state->put_item(std::move(item)); });
  state->copies = CopyGroups(store_.copy_pairs());
  const double items_ms = ms_since(started);
  if (state->trained()) {
    SnapshotRead read = snapshot.get();
    const double read_ms = read.read_ms, measured_ms = read.measured_ms;
    const bool scale_kept = read.scale_kept;
    load_index(*state, std::move(read), allow_rebuild);
    spdlog::info(
        "state of version {}: {} items read by {:.2f} s, its index and score scale ready by {:.2f} s "
        "(beside the items: snapshot read in {:.2f} s, scale {} in {:.2f} s)",
        state->version, state->items.size(), items_ms / 1e3, ms_since(started) / 1e3, read_ms / 1e3,
        scale_kept ? "read from beside it" : "measured", measured_ms / 1e3);
  }
  return state;
}

ScoreScale ServingStateLoader::measure_scores(const ServingState& state, const VectorIndex& index) {
  return ScoreScale::measure(index, [&](const std::vector<float>& v) { return state.ranking_query_of(v); });
}

std::optional<ModelVersion> ServingStateLoader::resolve_version(ServingState& state) const {
  for (;;) {
    state.version = options_.pinned_version.value_or(store_.active_version());
    std::optional<ModelVersion> version;
    if (state.version != 0) {
      version = store_.model_version(state.version);
      if (!version) throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(state.version));
      state.heads = std::make_shared<HeadPool>(
          make_networks<HeadNetwork>(options_.inference_slots, version->head_onnx));
      // Items added while this version was trained (or while another was active) get their
      // descriptor now, before the version serves anything.
      if (!options_.read_only && fill_missing_) fill_missing_(state.version, *state.heads);
    }
    // The revision after the descriptors just filled in, so that they are not a change to
    // catch up with; then the active version again: a training that activated its version
    // since the first read would otherwise be served as the old version under a revision that
    // claims it, until the next change. That version is loaded instead.
    state.revision = store_.revision();
    if (options_.pinned_version || store_.active_version() == state.version) return version;
    state.heads.reset();
  }
}

void ServingStateLoader::load_frozen(ServingState& state) const {
  const auto pca = store_.get_blob(kPcaBlob);
  if (!pca) return;  // imported but not trained yet
  state.pca = PcaWhitening::deserialize(*pca);
  state.projection = sha256_hex(*pca).substr(0, 12);
  state.descriptor_dimension = state.pca->input_dimension();
  if (auto c = store_.get_blob(kClassifierBlob)) state.classifier = SoftmaxClassifier::deserialize(*c);
  if (auto t = store_.get_blob(kTrainingBlob)) state.training = nlohmann::json::parse(*t, nullptr, false);
}

void ServingStateLoader::load_trained(ServingState& state, const ModelVersion& version) const {
  state.classifier = SoftmaxClassifier::deserialize(version.classifier);
  state.descriptor_dimension = state.classifier.dimension();
  state.training = version.info;
  state.min_confidence = version.info.value("auto_min_confidence", kDefaultMinConfidence);
  load_blend(state, version.info.value("frozen_blend_weight", 0.0f));
  const auto pca = store_.get_blob(kPcaBlob);
  // `--no-frozen-blend` runs queries through the trunk only: no frozen descriptor to search by.
  const bool frozen_wanted = options_.frozen_search_weight > 0 || options_.instance_threshold > 0;
  if (pca && options_.blend_frozen && frozen_wanted) {
    state.frozen_pca = PcaWhitening::deserialize(*pca);
    state.frozen_search_weight = options_.frozen_search_weight;
    // Snapshots of the combined index name the frozen PCA they were built with (the weights
    // apply to queries only).
    state.projection = "hf" + sha256_hex(*pca).substr(0, 8);
  }
}

// The blend uses the frozen recipe as it is stored now: `train` relearns it before each new
// version, and a later frozen-only `train --no-head` keeps the same recipe on more photos.
void ServingStateLoader::load_blend(ServingState& state, float weight) const {
  if (weight <= 0 || !options_.blend_frozen) return;
  const auto pca = store_.get_blob(kPcaBlob);
  const auto probe = store_.get_blob(kClassifierBlob);
  if (!pca || !probe) return;
  ServingState::FrozenBlend blend{
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

IndexOptions ServingStateLoader::index_options() const {
  IndexOptions options = options_.index;
  if (const auto kind = store_.get_blob(kIndexKindBlob)) options.kind = parse_index_kind(*kind);
  return options;
}

namespace {
// Whether an index of kind `have` may keep serving `items` items. Under `auto` a catalog near
// the threshold keeps the type it has until it is 20% past it, so that a few adds and removes
// around the threshold do not rebuild the index at every start.
bool index_kind_fits(IndexKind have, const IndexOptions& options, size_t items) {
  if (options.kind != IndexKind::kAuto) return have == resolve_index_kind(options, items);
  const auto threshold = static_cast<double>(options.exact_below);
  const auto n = static_cast<double>(items);
  if (have == IndexKind::kFlat) return n < 1.2 * threshold;
  return have == IndexKind::kIvfPq && n >= 0.8 * threshold;
}
}  // namespace

namespace {
// The score scale is kept beside the snapshot it was measured on, or that carried it on: a start
// that reads it skips 256 re-ranked searches (1.4-1.9 s at 1M items). It holds only for the same
// search (the index's parameters, the frozen part's weight) and while the index holds within 10%
// of the vectors measured; otherwise, and after a rebuild, the scale is measured afresh.
std::string scale_fingerprint(const ServingState& state, const VectorIndex& index) {
  return index.parameters() + "; frozen weight " +
         (state.searches_frozen() ? std::to_string(state.frozen_search_weight) : std::string("0"));
}

void keep_score_scale(const ServingState& state, const std::string& snapshot) {
  if (!state.score_scale.measured()) return;
  const nlohmann::json kept = {{"fingerprint", scale_fingerprint(state, *state.index)},
                               {"measured_on", state.score_scale.measured_on()},
                               {"values", state.score_scale.values()}};
  try {
    write_file_atomic(DataDirectory::score_scale_path(snapshot).string(), kept.dump(),
                      Durability::kRenameOnly);
  } catch (const Error& e) {
    spdlog::warn("the score scale is not kept beside {} (the next start measures it): {}", snapshot,
                 e.what());
  }
}

// nullopt, with the reason in `unfit` when a scale is kept but does not fit.
std::optional<ScoreScale> kept_score_scale(const ServingState& state, const VectorIndex& index,
                                           const std::string& snapshot, std::string* unfit) {
  std::string text;
  try {
    text = read_file(DataDirectory::score_scale_path(snapshot).string(), size_t{1} << 20);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) *unfit = e.what();
    return std::nullopt;  // none kept (an older snapshot), or unreadable: measured instead
  }
  const auto kept = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto field = [&](const char* name) { return kept.is_object() ? kept.find(name) : kept.end(); };
  const auto fingerprint = field("fingerprint"), measured_on = field("measured_on"), values = field("values");
  if (fingerprint == kept.end() || measured_on == kept.end() || values == kept.end() ||
      !fingerprint->is_string() || !measured_on->is_number_unsigned() || !values->is_array()) {
    *unfit = "it is damaged";
    return std::nullopt;
  }
  if (*fingerprint != scale_fingerprint(state, index)) {
    *unfit = "it was measured for another search (" + fingerprint->get<std::string>() + ")";
    return std::nullopt;
  }
  const auto measured = measured_on->get<size_t>();
  const double grown = static_cast<double>(index.size()) / static_cast<double>(std::max<size_t>(measured, 1));
  if (measured == 0 || grown < 0.9 || grown > 1.1) {
    *unfit = "it was measured on " + std::to_string(measured) + " vectors, the index holds " +
             std::to_string(index.size());
    return std::nullopt;
  }
  std::vector<float> sorted;
  sorted.reserve(values->size());
  for (const auto& v : *values) {
    if (!v.is_number()) break;
    sorted.push_back(v.get<float>());
  }
  auto scale =
      sorted.size() == values->size() ? ScoreScale::restore(std::move(sorted), measured) : std::nullopt;
  if (!scale) *unfit = "its values are damaged";
  return scale;
}
}  // namespace

ServingStateLoader::SnapshotRead ServingStateLoader::read_snapshot(const ServingState& state) const {
  SnapshotRead read;
  read.file = directory_.latest_index_snapshot(state.version, state.projection);
  if (!read.file) return read;
  const auto started = std::chrono::steady_clock::now();
  try {
    IndexFile opened = open_index_file(read.file->path.string());
    if (opened.unchecked && !options_.defer_copies_check && !opened.unchecked->intact())
      throw Error(ErrorCode::kCorruptStore,
                  "index file is damaged: its float16 copies' checksum does not match");
    read.index = std::move(opened.index);
    if (options_.defer_copies_check) read.unchecked = std::move(opened.unchecked);
    read.read_ms = ms_since(started);
    // Kept beside the snapshot, or measured on it beside the items' load (1.4-1.9 s at 1M
    // items): the writes that catch_up adds later are too few to move it (a rebuild measures
    // again).
    std::string unfit;
    if (auto kept = kept_score_scale(state, *read.index, read.file->path.string(), &unfit)) {
      read.score_scale = std::move(*kept);
      read.scale_kept = true;
    } else {
      if (!unfit.empty()) spdlog::info("measuring the score scale again, not the one kept: {}", unfit);
      read.score_scale = measure_scores(state, *read.index);
    }
    read.measured_ms = ms_since(started) - read.read_ms;
  } catch (const Error& e) {
    read.error = e.what();
  }
  return read;
}

void ServingStateLoader::load_index(ServingState& state, SnapshotRead read, bool allow_rebuild) const {
  if (const auto& snapshot = read.file) {
    try {
      if (!read.index) throw Error(ErrorCode::kCorruptStore, read.error);
      auto index = std::move(read.index);
      const IndexOptions options = index_options();
      if (!index_kind_fits(index->kind(), options, state.items.size())) {
        spdlog::info("the vector index is {}; {} items under index type '{}' want {}: rebuilding it",
                     index_kind_name(index->kind()), state.items.size(), index_kind_name(options.kind),
                     index_kind_name(resolve_index_kind(options, state.items.size())));
      } else if (catch_up(state, *index)) {
        state.index = std::move(index);
        state.unchecked_copies = std::move(read.unchecked);
        state.tag_index();
        state.snapshot_revision = snapshot->revision;
        state.score_scale = std::move(read.score_scale);
        // Measured on this very snapshot (before the catch-up): the next start reads it.
        if (!read.scale_kept && !options_.read_only) keep_score_scale(state, snapshot->path.string());
        return;
      }
    } catch (const Error& e) {
      spdlog::warn("{}; rebuilding it from the catalog database", e.what());
    }
  }
  if (!allow_rebuild) throw Error(ErrorCode::kCorruptStore, "vector index is missing");
  rebuild_index(state);
}

// The state's stored descriptors in pages of at most kRebuildPage items, in key order: fn(keys,
// raw, frozen) gets the version's raw descriptors (keys.size() x descriptor_dimension) and, when
// the index holds the frozen part, the items' raw frozen descriptors (keys.size() x the PCA's
// input; empty otherwise). A page at a time, so a rebuild at 1M items holds 2,048 raw frozen
// descriptors (46 MB), not all of them (22 GB).
void ServingStateLoader::for_each_descriptor_page(
    const ServingState& state,
    const std::function<void(const std::vector<int64_t>&, const std::vector<float>&,
                             const std::vector<float>&)>& fn) const {
  constexpr size_t kRebuildPage = 2048;
  const size_t frozen_d = state.searches_frozen() ? state.frozen_pca->input_dimension() : 0;
  for (int64_t next = std::numeric_limits<int64_t>::min();;) {
    const auto page =
        store_.descriptor_page(state.version, next, std::numeric_limits<int64_t>::max(), kRebuildPage);
    if (page.empty()) return;
    next = page.back().first + 1;
    std::unordered_map<int64_t, std::vector<float>> frozen;
    if (state.searches_frozen()) {
      for (auto& [key, v] : store_.descriptor_page(0, page.front().first, page.back().first, SIZE_MAX))
        frozen.emplace(key, std::move(v));
    }
    std::vector<int64_t> keys;
    std::vector<float> raw, frozen_raw;
    for (const auto& [key, v] : page) {
      if (v.size() != state.descriptor_dimension) {
        throw Error(ErrorCode::kCorruptStore, "item " + std::to_string(key) + " has a descriptor of " +
                                                  std::to_string(v.size()) + " values, expected " +
                                                  std::to_string(state.descriptor_dimension));
      }
      if (!state.items.contains(key)) continue;
      if (state.searches_frozen()) {
        const auto it = frozen.find(key);
        if (it == frozen.end() || it->second.size() != frozen_d) {
          throw Error(ErrorCode::kCorruptStore,
                      "item " + std::to_string(key) + " has no descriptor of the frozen recipe");
        }
        frozen_raw.insert(frozen_raw.end(), it->second.begin(), it->second.end());
      }
      keys.push_back(key);
      raw.insert(raw.end(), v.begin(), v.end());
    }
    if (!keys.empty()) fn(keys, raw, frozen_raw);
  }
}

// Streams the stored descriptors twice: once for the evenly spaced training sample of a
// compressed index (only those rows are projected), once to add every item page by page.
void ServingStateLoader::rebuild_index(ServingState& state) const {
  const auto started = Clock::now();
  IndexOptions options = index_options();
  // A blended version's queries weigh the head and the frozen halves separately (ranking by the
  // head, the instance tier by the frozen part): compressed indexes route each half on its own.
  if (state.searches_frozen())
    options.parts = {state.descriptor_dimension, state.frozen_pca->output_dimension()};
  const size_t n = state.items.size();
  const size_t frozen_d = state.searches_frozen() ? state.frozen_pca->input_dimension() : 0;
  std::vector<float> sample;
  size_t sampled = 0;
  if (resolve_index_kind(options, n) != IndexKind::kFlat) {
    const size_t rows = training_rows(options, n);
    size_t ordinal = 0;
    for_each_descriptor_page(state, [&](const auto& keys, const auto& raw, const auto& frozen_raw) {
      for (size_t i = 0; i < keys.size(); ++i, ++ordinal) {
        if (sampled == rows || ordinal != training_row(sampled, n, rows)) continue;
        const auto v = state.index_vectors(1, raw.data() + i * state.descriptor_dimension,
                                           frozen_raw.data() + i * frozen_d);
        sample.insert(sample.end(), v.begin(), v.end());
        ++sampled;
      }
    });
    spdlog::info("training the vector index ({}) on {} of {} items",
                 index_kind_name(resolve_index_kind(options, n)), sampled, n);
  }
  if (sampled == 0) options.kind = IndexKind::kFlat;  // nothing to train on: no items with descriptors
  std::unique_ptr<VectorIndex> index;
  size_t added = 0;
  for_each_descriptor_page(state, [&](const auto& keys, const auto& raw, const auto& frozen_raw) {
    const auto vectors = state.index_vectors(keys.size(), raw.data(), frozen_raw.data());
    if (!index) index = make_index(options, vectors.size() / keys.size(), n, sampled, sample.data());
    index->add(keys.size(), keys.data(), vectors.data());
    added += keys.size();
  });
  if (!index) {  // no items: an empty index of the dimension later adds will have
    index = make_flat_index(state.searches_frozen()
                                ? state.descriptor_dimension + state.frozen_pca->output_dimension()
                                : state.descriptor_dimension);
  }
  state.index = std::move(index);
  state.tag_index();
  state.score_scale = measure_scores(state, *state.index);  // before the snapshot, which keeps it
  if (options_.read_only) return;
  state.index->map_snapshot(write_index_snapshot(state, directory_));
  state.snapshot_revision = state.revision;
  spdlog::info("rebuilt the vector index of version {} ({} items, {}: {}) in {:.0f} ms", state.version, added,
               index_kind_name(state.index->kind()), state.index->parameters(), ms_since(started));
}

// A snapshot plus the writes since: items removed since are dropped, items added since are
// added from their stored descriptors. Keys are never reused (AUTOINCREMENT), so a key in both
// is the same vector. False when so much changed that a rebuild is cheaper, or a snapshot does
// not fit the version.
bool ServingStateLoader::catch_up(ServingState& state, VectorIndex& index) const {
  std::vector<int64_t> gone, present = index.ids();
  const auto removed = [&](int64_t key) { return !state.items.contains(key); };
  std::copy_if(present.begin(), present.end(), std::back_inserter(gone), removed);
  std::vector<int64_t> missing;
  // Index ids are distinct, so the items are all present when they are as many (the usual start
  // from a current snapshot, where a set of 1M keys would cost a quarter of a second).
  if (present.size() - gone.size() != state.items.size()) {
    present.erase(std::remove_if(present.begin(), present.end(), removed), present.end());
    std::sort(present.begin(), present.end());
    for (const int64_t key : state.items.keys()) {
      if (!std::binary_search(present.begin(), present.end(), key)) missing.push_back(key);
    }
  }
  if (missing.size() > 64 + state.items.size() / 8) return false;
  index.remove(gone);
  for (const int64_t key : missing) {
    const auto raw = store_.descriptor(state.version, key);
    const auto frozen = state.searches_frozen() ? store_.descriptor(0, key) : std::vector<float>{};
    const auto projected = state.index_vector(raw, frozen);
    if (projected.empty() || projected.size() != index.dimension()) return false;
    index.add(1, &key, projected.data());
  }
  if (!missing.empty() || !gone.empty()) {
    spdlog::info("index snapshot of version {} caught up: {} added, {} removed", state.version,
                 missing.size(), gone.size());
  }
  return true;
}

std::string write_index_snapshot(const ServingState& state, const DataDirectory& directory) {
  const std::string file = directory.index_snapshot_path(state.version, state.projection, state.revision);
  save_index_file(*state.index, file);
  keep_score_scale(state, file);
  directory.remove_index_snapshots(state.version, file);
  return file;
}

std::vector<std::string> index_problems(const ServingState& state, const CatalogStore& store,
                                        size_t* compared) {
  std::vector<std::string> problems;
  if (!state.trained()) return problems;  // nothing is indexed before the first training
  if (!state.index) return {"version " + std::to_string(state.version) + " has no vector index"};
  const auto ids = state.index->ids();
  const std::unordered_set<int64_t> indexed(ids.begin(), ids.end());
  for (const int64_t id : ids) {
    if (!state.items.contains(id))
      problems.push_back("the index holds key " + std::to_string(id) + ", no item has it");
  }
  for (const int64_t key : state.items.keys()) {
    const std::string id(state.items.id_of(key));
    if (!indexed.count(key)) {
      problems.push_back("item '" + id + "' is not in the index");
      continue;
    }
    const auto raw = store.descriptor(state.version, key);
    const auto frozen = state.searches_frozen() ? store.descriptor(0, key) : std::vector<float>{};
    const auto expected = state.index_vector(raw, frozen);
    if (expected.empty()) continue;  // reported as a missing descriptor
    const auto stored = state.index->vector(key);
    const float tolerance = std::max(kIndexTolerance, state.index->vector_tolerance());
    float worst = expected.size() == stored.size() ? 0.0f : 1.0f;
    for (size_t i = 0; i < stored.size() && worst <= tolerance; ++i)
      worst = std::max(worst, std::abs(expected[i] - stored[i]));
    if (worst > tolerance)
      problems.push_back("the index vector of item '" + id + "' is not its stored descriptor's");
    ++*compared;
  }
  return problems;
}

void LiveState::rebuild_items(const WriteLock& write) {
  ItemTable items = current(write).items.rebuilt();
  {
    std::unique_lock lock(mutex_);
    std::swap(state_->items, items);
  }
  // The old table is freed here, outside the lock.
}

void LiveState::install(const WriteLock& write, std::unique_ptr<ServingState> fresh) {
  assert(write.owns_lock() && write.mutex() == &write_mutex_);
  (void)write;
  std::unique_lock lock(mutex_);
  std::swap(state_, fresh);
  lock.unlock();
  // The old state (its index and item maps) is freed here, outside the lock.
}

}  // namespace lookalike

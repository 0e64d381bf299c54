#include "service/frozen_recipe.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "index/pca_whitening.h"
#include "model/softmax_classifier.h"
#include "service/head_validation.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr size_t kMinPerCategory = 5;
constexpr size_t kMinItems = 8;

// The categories with enough photos to learn from, and each descriptor row's label (-1: left out).
struct Labels {
  std::vector<std::string> classes;
  std::vector<int> of_row;
};

Labels label_rows(const CatalogStore& store, const std::vector<int64_t>& keys) {
  std::map<std::string, size_t> counts;
  std::unordered_map<int64_t, std::string> category_of;
  for (const auto& item : store.all_items()) {
    category_of[item.key] = item.category;
    if (!item.category.empty()) ++counts[item.category];
  }
  Labels labels;
  for (const auto& [name, count] : counts) {
    if (count >= kMinPerCategory) labels.classes.push_back(name);
  }
  for (const int64_t key : keys) {
    const auto pos = std::find(labels.classes.begin(), labels.classes.end(), category_of[key]);
    labels.of_row.push_back(pos == labels.classes.end() ? -1
                                                        : static_cast<int>(pos - labels.classes.begin()));
  }
  return labels;
}

}  // namespace

std::string train_frozen_recipe(CatalogStore& store, size_t pca_dimension,
                                const std::function<void(const std::string&)>& on_phase) {
  const auto phase = [&](const std::string& name) {
    if (on_phase) on_phase(name);
  };
  phase("reading the stored descriptors");
  std::vector<int64_t> keys;
  std::vector<float> raw;
  size_t dimension = 0;
  store.for_each_descriptor(0, [&](int64_t key, const float* v, size_t d) {
    dimension = d;
    keys.push_back(key);
    raw.insert(raw.end(), v, v + d);
  });
  if (keys.size() < kMinItems) {
    throw Error(ErrorCode::kNotReady, "training needs at least " + std::to_string(kMinItems) +
                                          " catalog items, the catalog has " + std::to_string(keys.size()));
  }
  const auto started = Clock::now();
  phase("learning the PCA-whitening of " + std::to_string(keys.size()) + " descriptors");
  spdlog::info(
      "learning the PCA-whitening of {} descriptors ({} -> {} dimensions; about 10 s for 5,000 items on "
      "2 cores)",
      keys.size(), dimension, pca_dimension);
  auto pca = PcaWhitening::train(keys.size(), dimension, raw.data(), pca_dimension);
  const auto projected = pca.apply(keys.size(), raw.data());
  const size_t d = pca.output_dimension();
  spdlog::info("PCA-whitening of {} descriptors learned in {:.1f} s", keys.size(), seconds_since(started));
  nlohmann::json training{{"items", keys.size()}, {"pca_dimension", d}};
  std::vector<std::pair<std::string, std::string>> blobs{{kPcaBlob, pca.serialize()}};
  std::string summary = "PCA-whitening " + std::to_string(dimension) + " -> " + std::to_string(d);

  const Labels labels = label_rows(store, keys);
  if (labels.classes.size() >= 2) {
    std::vector<float> x;
    std::vector<int> y;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (labels.of_row[i] < 0) continue;
      x.insert(x.end(), projected.begin() + static_cast<std::ptrdiff_t>(i * d),
               projected.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
      y.push_back(labels.of_row[i]);
    }
    const auto classifier_started = Clock::now();
    phase("cross-validating the category probe");
    spdlog::info("training the category probe with 5-fold cross-validation ({} photos, {} categories)",
                 y.size(), labels.classes.size());
    const auto cv = SoftmaxClassifier::cross_validate(y.size(), d, x.data(), y, labels.classes.size(), 5);
    auto classifier = SoftmaxClassifier::train(y.size(), d, x.data(), y, labels.classes);
    classifier.set_temperature(cv.temperature);
    spdlog::info("classifier trained and cross-validated in {:.1f} s", seconds_since(classifier_started));
    blobs.emplace_back(kClassifierBlob, classifier.serialize());
    training["classifier_cv_accuracy"] = cv.accuracy;
    training["classifier_temperature"] = cv.temperature;
    training["classes"] = labels.classes;
    summary += "; classifier over " + std::to_string(labels.classes.size()) +
               " categories, 5-fold accuracy " + std::to_string(cv.accuracy).substr(0, 5) + ", temperature " +
               std::to_string(cv.temperature).substr(0, 4);
  } else {
    blobs.emplace_back(kClassifierBlob, SoftmaxClassifier().serialize());
    summary += "; no category classifier (needs >= 2 categories with >= " + std::to_string(kMinPerCategory) +
               " photos each)";
  }
  training["seconds"] = seconds_since(started);
  blobs.emplace_back(kTrainingBlob, training.dump());
  store.put_blobs(blobs);
  return summary;
}

double frozen_cv_accuracy(const CatalogStore& store) {
  const auto blob = store.get_blob(kTrainingBlob);
  if (!blob) return 0;
  const auto doc = nlohmann::json::parse(*blob, nullptr, false);
  return doc.is_object() ? doc.value("classifier_cv_accuracy", 0.0) : 0.0;
}

std::optional<FrozenProbeValidation> frozen_probe_validation(const CatalogStore& store,
                                                             const std::vector<LabelledKey>& train,
                                                             const std::vector<LabelledKey>& validation,
                                                             const std::vector<std::string>& classes) {
  const auto pca_blob = store.get_blob(kPcaBlob);
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
  store.for_each_descriptor(0, [&](int64_t key, const float* d, size_t n) {
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
  if (auto served = store.get_blob(kClassifierBlob))
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

std::optional<std::pair<size_t, size_t>> compact_frozen_recipe(CatalogStore& store) {
  const auto stored = store.get_blob(kPcaBlob);
  if (!stored) return std::nullopt;
  std::string compact = PcaWhitening::deserialize(*stored).serialize();
  if (compact.size() >= stored->size()) return std::nullopt;
  const std::pair<size_t, size_t> sizes{stored->size(), compact.size()};
  store.put_blobs({{kPcaBlob, std::move(compact)}});
  return sizes;
}

}  // namespace lookalike

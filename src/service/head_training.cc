// Catalog::train_head and the descriptors of trained versions: the part of the catalog that
// runs the trunk (mixed7 cut), the feature-map cache and the libtorch trainer.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "model/softmax_classifier.h"
#include "service/catalog.h"
#include "service/head_validation.h"
#include "store/work_queue.h"

namespace lookalike {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kExtractBatch = 8;
constexpr size_t kHeadBatch = 32;
constexpr double kExportTolerance = 1e-3;  // |opencv - libtorch| / (1 + |libtorch|), float32 vs folded BN

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One training per data directory at a time (another process may hold it: the lock is flock).
class TrainingLock {
 public:
  explicit TrainingLock(const DataDirectory& directory) {
    const std::string path = directory.training_lock();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw io_error("cannot open " + path, errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error(ErrorCode::kConflict, "another training of " + directory.root() + " is running");
    }
  }
  ~TrainingLock() { ::close(fd_); }
  TrainingLock(const TrainingLock&) = delete;
  TrainingLock& operator=(const TrainingLock&) = delete;

 private:
  int fd_ = -1;
};

void check_cancel(const HeadTrainingRequest& request) {
  if (request.cancel && request.cancel->load()) {
    throw Error(ErrorCode::kCancelled, "training interrupted; the previous model version stays active");
  }
}

cv::Mat decode_stored(const Catalog& catalog, const Item& item) {
  return decode_image_or_throw(read_file(catalog.image_file(item), SIZE_MAX), catalog.options().decode).rgb;
}

// |a - b| / (1 + |b|), maximum over both vectors.
double max_difference(const float* a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < b.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / (1 + std::abs(b[i])));
  return worst;
}

// The exported ONNX, run by OpenCV DNN, must reproduce the libtorch module it came from.
double verify_export(const std::string& onnx, const HeadReference& reference,
                     const std::array<int, 3>& shape) {
  HeadNetwork net(onnx);
  const int dims[] = {static_cast<int>(reference.n), shape[0], shape[1], shape[2]};
  const cv::Mat maps(4, dims, CV_32F, const_cast<float*>(reference.maps.data()));
  const auto out = net.forward(maps);
  const double worst = std::max(max_difference(out.gem.ptr<float>(0), reference.gem),
                                max_difference(out.logits.ptr<float>(0), reference.logits));
  if (!(worst <= kExportTolerance)) {
    throw Error(ErrorCode::kInternal,
                "the exported head differs from the trained one by " + std::to_string(worst));
  }
  return worst;
}

nlohmann::json epochs_json(const std::vector<EpochReport>& epochs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : epochs) {
    out.push_back({{"epoch", e.epoch},
                   {"train_loss", e.train_loss},
                   {"train_accuracy", e.train_accuracy},
                   {"validation_loss", e.val_loss},
                   {"validation_accuracy", e.val_accuracy},
                   {"seconds", e.seconds}});
  }
  return out;
}

}  // namespace

KeyedDescriptors Catalog::head_descriptors(const std::vector<Item>& items, HeadPool& heads,
                                           const std::function<void(size_t)>& on_done) {
  const auto shape = extractors().map_shape();
  const FeatureCache cache = feature_cache(shape);
  KeyedDescriptors out;
  out.reserve(items.size());
  for (size_t begin = 0; begin < items.size(); begin += kHeadBatch) {
    const size_t end = std::min(items.size(), begin + kHeadBatch);
    const int dims[] = {static_cast<int>(end - begin), shape[0], shape[1], shape[2]};
    cv::Mat maps(4, dims, CV_32F);
    for (size_t i = begin; i < end; ++i) {
      float* slot = maps.ptr<float>(static_cast<int>(i - begin));
      if (cache.get(items[i].sha256, false, slot)) continue;
      const cv::Mat map = extractors().lease()->extract({decode_stored(*this, items[i])}, false);
      std::memcpy(slot, map.ptr<float>(0), cache.values() * sizeof(float));
    }
    const cv::Mat gem = heads.lease()->forward(maps).gem;
    for (size_t i = begin; i < end; ++i) {
      const float* row = gem.ptr<float>(static_cast<int>(i - begin));
      out.emplace_back(items[i].key, std::vector<float>(row, row + gem.cols));
    }
    if (on_done) on_done(end);
  }
  return out;
}

void Catalog::store_version_descriptors(int64_t version, const std::vector<Item>& items) {
  HeadPool* heads = nullptr;
  {
    std::lock_guard lock(version_heads_mutex_);
    auto& pool = version_heads_[version];
    if (!pool) {
      const auto stored = store_->model_version(version);
      if (!stored) {
        version_heads_.erase(version);
        throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(version));
      }
      pool = std::make_unique<HeadPool>(make_networks<HeadNetwork>(1, stored->head_onnx));
    }
    heads = pool.get();
  }
  // A job done twice (a lease expired; or the trainer filled it in at activation) writes
  // nothing the second time.
  std::vector<Item> missing;
  for (const auto& item : items)
    if (store_->descriptor(version, item.key).empty()) missing.push_back(item);
  if (!missing.empty()) store_->put_descriptors(version, head_descriptors(missing, *heads, {}));
}

void Catalog::fill_missing_descriptors(int64_t version, HeadPool& heads) {
  const auto keys = store_->keys_missing_descriptor(version);
  if (keys.empty()) return;
  std::vector<Item> items;
  for (int64_t key : keys) {
    if (auto item = store_->find_by_key(key)) items.push_back(std::move(*item));
  }
  const auto started = Clock::now();
  store_->put_descriptors(version, head_descriptors(items, heads, {}));
  spdlog::info("computed descriptors of model version {} for {} new items in {:.1f} s", version, items.size(),
               seconds_since(started));
}

namespace {

// Extracts the maps (original and mirrored) the cache lacks for these photos. The next batch is
// decoded on another thread while the CNN runs on this one.
size_t extract_missing_maps(Catalog& catalog, const std::vector<const Item*>& photos,
                            const FeatureCache& cache, const HeadTrainingRequest& request) {
  // Batches never mix orientations: originals first, then mirror images.
  std::vector<std::vector<const Item*>> batches;
  std::vector<bool> flipped;
  size_t total = 0;
  for (bool flip : {false, true}) {
    for (const Item* item : photos) {
      if (cache.contains(item->sha256, flip)) continue;
      if (batches.empty() || flipped.back() != flip || batches.back().size() == kExtractBatch) {
        batches.emplace_back();
        flipped.push_back(flip);
      }
      batches.back().push_back(item);
      ++total;
    }
  }
  const auto decode = [&catalog](const std::vector<const Item*>& batch) {
    std::vector<cv::Mat> images;
    for (const Item* item : batch) images.push_back(decode_stored(catalog, *item));
    return images;
  };
  std::future<std::vector<cv::Mat>> next;
  if (!batches.empty()) next = std::async(std::launch::async, decode, std::cref(batches.front()));
  size_t done = 0;
  // Announced before the first batch, so that its time counts in the rate and the ETA.
  if (request.on_stage && total > 0) request.on_stage("extracting feature maps", 0, total);
  for (size_t b = 0; b < batches.size(); ++b) {
    check_cancel(request);
    const std::vector<cv::Mat> images = next.get();
    if (b + 1 < batches.size()) next = std::async(std::launch::async, decode, std::cref(batches[b + 1]));
    const cv::Mat maps = catalog.extractors().lease()->extract(images, flipped[b]);
    for (size_t i = 0; i < batches[b].size(); ++i) {
      cache.put(batches[b][i]->sha256, flipped[b], maps.ptr<float>(static_cast<int>(i)));
    }
    done += batches[b].size();
    if (request.on_stage) request.on_stage("extracting feature maps", done, total);
  }
  return total;
}

// Queues the descriptors of `version` for these items and waits until the workers are done, or
// until no job has moved for request.worker_idle_seconds (no worker running).
void wait_for_workers(WorkQueue& queue, int64_t version, const std::vector<Item>& items,
                      const HeadTrainingRequest& request) {
  const std::string batch = "version-" + std::to_string(version) + "-" + std::to_string(unix_seconds());
  queue.enqueue_descriptors(version, items, batch);
  spdlog::info("model version {}: {} descriptors queued for the workers (batch {})", version, items.size(),
               batch);
  size_t last_left = items.size();
  auto moved = Clock::now();
  for (;;) {
    const QueueCounts c = queue.counts(batch);
    const size_t left = c.queued + c.running;
    if (request.on_stage) request.on_stage("descriptors on the workers", items.size() - left, items.size());
    if (left == 0) return;
    if (left != last_left) {
      last_left = left;
      moved = Clock::now();
    } else if (seconds_since(moved) > request.worker_idle_seconds) {
      spdlog::warn("model version {}: no worker took a job for {:.0f} s; the {} descriptors left are computed "
                   "here",
                   version, request.worker_idle_seconds, left);
      return;
    }
    check_cancel(request);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

std::vector<LabelledKey> keyed(const std::vector<TrainSample>& samples,
                               const std::unordered_map<std::string, int64_t>& key_of) {
  std::vector<LabelledKey> out;
  for (const auto& s : samples) out.push_back({key_of.at(s.sha256), s.label});
  return out;
}

// L2-normalised descriptor rows of these samples, CV_32F.
cv::Mat normalised_rows(const std::vector<TrainSample>& samples,
                        const std::unordered_map<std::string, const std::vector<float>*>& descriptor_of) {
  cv::Mat rows;
  for (const auto& s : samples) {
    cv::Mat row = cv::Mat(*descriptor_of.at(s.sha256)).reshape(1, 1).clone();
    cv::normalize(row, row);
    rows.push_back(row);
  }
  return rows;
}

// The new version's validation photos as `auto` search sees them: the head's probabilities, the
// frozen probe's (when there is one) and the category precision of the 12 nearest training photos.
std::vector<ValidationPhoto> validation_photos(
    const std::vector<TrainSample>& train, const std::vector<TrainSample>& validation,
    const std::unordered_map<std::string, const std::vector<float>*>& descriptor_of,
    const SoftmaxClassifier& classifier, const std::optional<FrozenProbeValidation>& frozen) {
  const auto labels = [](const std::vector<TrainSample>& samples) {
    std::vector<int> out;
    for (const auto& s : samples) out.push_back(s.label);
    return out;
  };
  const auto precision = neighbour_precision(normalised_rows(validation, descriptor_of), labels(validation),
                                             normalised_rows(train, descriptor_of), labels(train), 12);
  std::vector<ValidationPhoto> photos;
  for (size_t i = 0; i < validation.size(); ++i) {
    photos.push_back({validation[i].label, classifier.predict(descriptor_of.at(validation[i].sha256)->data()),
                      frozen ? frozen->probabilities[i] : std::vector<float>{}, precision[i]});
  }
  return photos;
}

// The same photos with the served (blended) probabilities in place of the head's.
std::vector<ValidationPhoto> blended(std::vector<ValidationPhoto> photos, float weight) {
  for (auto& p : photos) {
    if (!p.frozen.empty()) p.probabilities = blend_probabilities(p.probabilities, p.frozen, weight);
  }
  return photos;
}

// The new version's descriptor of each training photo, by the photo's hash.
std::unordered_map<std::string, const std::vector<float>*> descriptors_by_hash(
    const std::vector<const Item*>& photos, const KeyedDescriptors& descriptors) {
  std::unordered_map<int64_t, const std::vector<float>*> by_key;
  for (const auto& [key, d] : descriptors) by_key[key] = &d;
  std::unordered_map<std::string, const std::vector<float>*> out;
  for (const Item* photo : photos) out[photo->sha256] = by_key.at(photo->key);
  return out;
}

}  // namespace

HeadTrainingOutcome Catalog::train_head(const HeadTrainingRequest& request) {
  TrainingLock lock(directory_);
  const auto started = Clock::now();
  HeadTrainingOutcome outcome;
  const auto items = store_->all_items();
  std::map<std::string, std::vector<const Item*>> by_category;
  for (const auto& item : items) {
    if (!item.category.empty()) by_category[item.category].push_back(&item);
  }
  std::vector<std::string> classes;
  for (const auto& [name, photos] : by_category) {
    if (photos.size() >= request.min_per_category) classes.push_back(name);
  }
  if (classes.size() < 2) {
    outcome.summary = "kept the frozen recipe: a trained head needs >= 2 categories with >= " +
                      std::to_string(request.min_per_category) + " photos each, this catalog has " +
                      std::to_string(classes.size());
    return outcome;
  }
  // Training photos: the first max_per_category of each category, each distinct image once
  // (a byte-identical twin in both splits would inflate the validation accuracy).
  std::vector<const Item*> photos;
  std::vector<TrainSample> samples;
  std::unordered_set<std::string> seen;
  for (size_t c = 0; c < classes.size(); ++c) {
    size_t taken = 0;
    for (const Item* item : by_category[classes[c]]) {
      if (taken == options_.max_per_category) break;
      if (!seen.insert(item->sha256).second) continue;
      photos.push_back(item);
      samples.push_back({item->sha256, static_cast<int>(c)});
      ++taken;
    }
  }
  const auto shape = extractors().map_shape();
  const FeatureCache cache = feature_cache(shape);
  const auto extract_started = Clock::now();
  const size_t extracted = extract_missing_maps(*this, photos, cache, request);
  const double extract_seconds = seconds_since(extract_started);

  auto [train, validation] = split_validation(samples, request.validation_fraction, request.head.seed);
  HeadTrainCallbacks callbacks = request.callbacks;
  callbacks.on_batch = [&](const BatchProgress& p) {
    check_cancel(request);
    if (request.callbacks.on_batch) request.callbacks.on_batch(p);
  };
  const auto train_started = Clock::now();
  const HeadTrainResult result =
      lookalike::train_head(cache, train, validation, classes, request.head, callbacks);
  const double train_seconds = seconds_since(train_started);

  ModelVersion version;
  version.created_at = unix_seconds();
  version.head_onnx = export_head_onnx(result.weights);
  const double export_difference = verify_export(version.head_onnx, result.reference, shape);
  auto classifier = SoftmaxClassifier::from_linear(classes, result.weights.channels,
                                                   result.weights.linear_weight, result.weights.linear_bias);
  classifier.set_temperature(result.temperature);
  version.classifier = classifier.serialize();

  check_cancel(request);
  const auto descriptors_started = Clock::now();
  HeadPool heads(make_networks<HeadNetwork>(1, version.head_onnx));
  // On workers, only the items whose maps are cached here are done here (a head forward each);
  // the others need the CNN, and go to the queue once the version is stored.
  WorkQueue* workers = request.on_workers ? queue() : nullptr;
  if (request.on_workers && !workers)
    spdlog::warn("--on-workers needs a catalog in PostgreSQL (workers take jobs from its queue): computing "
                 "every descriptor here");
  std::vector<Item> cached, spread;  // split only on workers: no copy of a large catalog otherwise
  if (workers) {
    for (const auto& item : items) (cache.contains(item.sha256, false) ? cached : spread).push_back(item);
  }
  const std::vector<Item>& here = workers ? cached : items;
  if (request.on_stage) request.on_stage("computing descriptors", 0, here.size());
  const auto descriptors = head_descriptors(here, heads, [&](size_t done) {
    check_cancel(request);
    if (request.on_stage) request.on_stage("computing descriptors", done, here.size());
  });
  const double descriptor_seconds = seconds_since(descriptors_started);

  // The new version is judged on its validation photos: it serves only if its head alone
  // classifies them at least as well as the frozen recipe's probe trained on the same training
  // photos (the head's GeM output is also the search descriptor, so a blend that rescues its
  // predictions would not rescue its neighbours). Its predictions then blend in that probe with
  // the weight that fits the validation photos best.
  std::unordered_map<std::string, int64_t> key_of;
  for (const Item* photo : photos) key_of[photo->sha256] = photo->key;
  const auto frozen =
      frozen_probe_validation(*store_, keyed(train, key_of), keyed(validation, key_of), classes);
  const auto head_photos =
      validation_photos(train, validation, descriptors_by_hash(photos, descriptors), classifier, frozen);
  const BlendWeight blend = !frozen ? BlendWeight{}
                            : request.frozen_blend_weight
                                ? score_blend(head_photos, *request.frozen_blend_weight)
                                : choose_blend_weight(head_photos);
  const auto served_photos = blended(head_photos, blend.weight);
  const double served_accuracy = accuracy(served_photos);
  const bool activate = request.always_activate || !frozen || result.val_accuracy >= frozen->accuracy;
  const AutoThreshold threshold = choose_min_confidence(served_photos);

  version.info = {{"recipe", "head on mixed7 maps"},
                  {"classes", classes},
                  {"train_photos", train.size()},
                  {"catalog_items", items.size()},
                  {"validation_photos", validation.size()},
                  {"max_per_category", options_.max_per_category},
                  {"seed", request.head.seed},
                  {"epochs", epochs_json(result.epochs)},
                  {"best_epoch", result.best_epoch},
                  {"validation_accuracy", result.val_accuracy},
                  {"validation_loss", result.val_loss},
                  {"frozen_validation_accuracy", frozen ? nlohmann::json(frozen->accuracy) : nullptr},
                  {"frozen_blend_weight", blend.weight},
                  {"blended_validation_accuracy", served_accuracy},
                  {"auto_min_confidence", threshold.min_confidence},
                  {"validation_auto_precision_at_12", threshold.precision_at_12},
                  {"temperature", result.temperature},
                  {"gem_p", result.weights.gem_p},
                  {"export_max_difference", export_difference},
                  {"maps_extracted", extracted},
                  {"extract_seconds", extract_seconds},
                  {"train_seconds", train_seconds},
                  {"descriptor_seconds", descriptor_seconds},
                  {"seconds", seconds_since(started)}};
  check_cancel(request);
  outcome.version = store_->add_model_version(version, descriptors, activate && spread.empty());
  outcome.trained = true;
  outcome.activated = activate;
  outcome.info = version.info;
  if (!spread.empty()) {
    const auto spread_started = Clock::now();
    wait_for_workers(*workers, outcome.version, spread, request);
    outcome.info["descriptors_on_workers"] = spread.size();
    outcome.info["workers_seconds"] = seconds_since(spread_started);
    fill_missing_descriptors(outcome.version, heads);  // what the workers did not do
    if (activate) use_version(outcome.version);
  }
  char summary[512];
  std::snprintf(summary, sizeof summary,
                "model version %lld: head over %zu categories, validation accuracy %.3f (epoch %d of %zu), "
                "%.3f with the frozen probe blended in at weight %.2f, %.0f s in all",
                static_cast<long long>(outcome.version), classes.size(), result.val_accuracy,
                result.best_epoch, result.epochs.size(), served_accuracy, blend.weight,
                seconds_since(started));
  outcome.summary = summary;
  if (!activate) {  // (frozen is set: see `activate`)
    std::snprintf(summary, sizeof summary,
                  "; not activated: the frozen recipe classifies the same %zu validation photos better "
                  "(%.3f); `lookalike model use %lld` activates it anyway",
                  validation.size(), frozen->accuracy, static_cast<long long>(outcome.version));
    outcome.summary += summary;
  }
  refresh();
  return outcome;
}

}  // namespace lookalike

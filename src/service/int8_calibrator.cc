#include "service/int8_calibrator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/error.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "model/dnnl_network.h"

namespace lookalike {

namespace {
constexpr size_t kBatch = 8;
constexpr size_t kMaxPhotoBytes = 64 << 20;
}  // namespace

std::string int8_calibration_blob(const std::string& model_name) {
  return "int8_calibration:" + model_name;
}

std::optional<Int8Calibration> stored_int8_calibration(const CatalogStore& store,
                                                       const std::string& model_name) {
  const auto blob = store.get_blob(int8_calibration_blob(model_name));
  if (!blob) return std::nullopt;
  try {
    return Int8Calibration::from_json(nlohmann::json::parse(*blob));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "the stored int8 calibration is not JSON: " + std::string(e.what()));
  }
}

std::vector<std::string> spread_evenly(const std::vector<std::string>& paths, size_t count) {
  if (paths.size() <= count) return paths;
  std::vector<std::string> chosen;
  chosen.reserve(count);
  for (size_t i = 0; i < count; ++i) chosen.push_back(paths[spread_position(i, paths.size(), count)]);
  return chosen;
}

std::optional<Int8Calibration> measure_int8_calibration(const ModelManifest& manifest,
                                                        const std::vector<std::string>& photo_paths) {
  const auto start = std::chrono::steady_clock::now();
  ModelManifest fp32 = manifest;
  fp32.engine = InferenceEngine::kDnnl;
  DnnlNetwork network(fp32);
  spdlog::info("measuring the int8 calibration on {} photos (once per catalog)", photo_paths.size());
  // One batch at a time, maxima merged: 256 photos as blobs would hold 270 MB at once.
  Int8Calibration calibration;
  std::vector<cv::Mat> batch;
  const auto measure = [&] {
    const Int8Calibration part = network.calibrate({network.make_blob(std::exchange(batch, {}))});
    calibration.model = part.model;
    calibration.images += part.images;
    for (const auto& [name, value] : part.max) calibration.max[name] = std::max(calibration.max[name], value);
  };
  for (const auto& path : photo_paths) {
    try {
      batch.push_back(preprocess_image(decode_image_or_throw(read_file(path, kMaxPhotoBytes)).rgb, fp32));
    } catch (const Error& e) {
      spdlog::warn("int8 calibration skips {}: {}", path, e.what());
      continue;
    }
    if (batch.size() == kBatch) measure();
  }
  if (!batch.empty()) measure();
  if (calibration.images < kMinCalibrationPhotos) return std::nullopt;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("int8 calibration measured on {} photos in {:.1f} s", calibration.images, seconds);
  return calibration;
}

}  // namespace lookalike

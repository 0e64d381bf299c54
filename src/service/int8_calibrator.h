// Where a catalog's int8 calibration (model/int8_calibration.h) comes from: measured once with
// fp32 forwards on up to kCalibrationPhotos of the shop's own photos, spread evenly over the
// catalog (or, for a first import, over the photos being imported), and kept in the catalog
// store so that every later run and every process quantizes the CNN the same way.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/int8_calibration.h"
#include "model/model_manifest.h"
#include "store/catalog_store.h"

namespace lookalike {

constexpr size_t kCalibrationPhotos = 256;
// Below this many photos the maxima would be a poor guess of the catalog's: stay fp32.
constexpr size_t kMinCalibrationPhotos = 32;

// The store's blob name for a model's calibration.
std::string int8_calibration_blob(const std::string& model_name);

std::optional<Int8Calibration> stored_int8_calibration(const CatalogStore& store,
                                                       const std::string& model_name);

// At most `count` of `paths`, evenly spaced (the first included), in order.
std::vector<std::string> spread_evenly(const std::vector<std::string>& paths, size_t count);
// Where spread_evenly takes its pick `i` of `count` from `n` paths (count <= n): for a caller
// that walks the paths rather than holding them.
inline size_t spread_position(size_t i, size_t n, size_t count) {
  return i * n / count;
}

// Runs `manifest`'s CNN in fp32 on oneDNN over the photos (files; undecodable ones are skipped)
// and records every tensor's largest value. nullopt when fewer than kMinCalibrationPhotos decode.
std::optional<Int8Calibration> measure_int8_calibration(const ModelManifest& manifest,
                                                        const std::vector<std::string>& photo_paths);

}  // namespace lookalike

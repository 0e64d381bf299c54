// On-disk cache of CNN feature maps (the mixed7 block), float16, one file per photo and
// orientation, keyed by the photo's SHA-256. Training reads it memory-mapped, a batch at a
// time, so resident memory stays at one batch however large the catalog is; files are written
// atomically (temp + rename), so a killed import or training never leaves a torn map behind.
#pragma once

#include <array>
#include <cstddef>
#include <string>

namespace lookalike {

class FeatureCache {
 public:
  // shape: channels, height, width of one map.
  FeatureCache(std::string directory, std::array<int, 3> shape);

  const std::array<int, 3>& shape() const { return shape_; }
  size_t values() const { return static_cast<size_t>(shape_[0]) * shape_[1] * shape_[2]; }
  size_t bytes_per_map() const;

  bool contains(const std::string& sha256, bool flipped) const;
  // map: values() floats, CHW (caller-owned). Stored as float16.
  void put(const std::string& sha256, bool flipped, const float* map) const;
  // Fills out (values() floats). False when the map is absent or has the wrong shape.
  bool get(const std::string& sha256, bool flipped, float* out) const;
  size_t count() const;  // maps on disk
  // Deletes both maps of a photo (a removed catalog item); absent files are fine.
  static void erase(const std::string& directory, const std::string& sha256);

 private:
  std::string path(const std::string& sha256, bool flipped) const;
  std::string directory_;
  std::array<int, 3> shape_;
};

}  // namespace lookalike

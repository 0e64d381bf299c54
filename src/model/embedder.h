// Image -> global descriptor. The interface every model-backed descriptor implements.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "model/inference_network.h"
#include "model/network_pool.h"

namespace lookalike {

class ImageEmbedder {
 public:
  virtual ~ImageEmbedder() = default;
  virtual size_t dimension() const = 0;
  // Identifies model + descriptor recipe; stored with the catalog so descriptors of different
  // recipes are never mixed.
  virtual std::string model_id() const = 0;
  // n RGB images (CV_8UC3, any size) -> n x dimension() CV_32F, row-major, caller owns it.
  virtual cv::Mat embed(const std::vector<cv::Mat>& rgb) = 0;
};

// GeM pooling of each manifest output block, each block L2-normalised, concatenated.
// For InceptionV3 mixed5..mixed9: 768 + 768 + 768 + 1280 + 2048 = 5632 values.
// The forward runs on the engine the manifest names (ModelManifest::engine).
class GemEmbedder final : public ImageEmbedder {
 public:
  explicit GemEmbedder(const ModelManifest& manifest, const NetworkOptions& options = {});
  // On a network built by the caller.
  explicit GemEmbedder(std::unique_ptr<InferenceNetwork> network);
  size_t dimension() const override { return dimension_; }
  std::string model_id() const override;
  cv::Mat embed(const std::vector<cv::Mat>& rgb) override;
  // Also returns, in *map, the NCHW output of `block` (one of the manifest's outputs), so an
  // import gets the trained head's input from the same forward.
  cv::Mat embed_keeping(const std::vector<cv::Mat>& rgb, const std::string& block, cv::Mat* map);
  // Descriptor from an already preprocessed NCHW blob (used by the conversion test).
  cv::Mat embed_blob(const cv::Mat& blob, const std::string& keep_block = {}, cv::Mat* kept = nullptr);
  InferenceEngine engine() const { return network_->engine(); }

 private:
  std::unique_ptr<InferenceNetwork> network_;
  size_t dimension_ = 0;
};

// Pools of networks: at most `size` forwards of each kind at once.
class EmbedderPool : public NetworkPool<GemEmbedder> {
 public:
  EmbedderPool(const ModelManifest& manifest, size_t size, const NetworkOptions& options = {});
  size_t dimension() const { return front().dimension(); }
  std::string model_id() const { return front().model_id(); }
};

// The CNN cut after one block (the trained head's input): RGB images -> NCHW CV_32F maps,
// on the engine the manifest names.
class FeatureMapExtractor {
 public:
  // `manifest` has exactly one output.
  explicit FeatureMapExtractor(const ModelManifest& manifest, const NetworkOptions& options = {});
  // n RGB images (CV_8UC3, any size), mirrored left-right first when `flip`.
  cv::Mat extract(const std::vector<cv::Mat>& rgb, bool flip);
  // Shape of one map: channels, height, width.
  std::array<int, 3> map_shape() const { return shape_; }
  InferenceEngine engine() const { return network_->engine(); }

 private:
  std::unique_ptr<InferenceNetwork> network_;
  std::array<int, 3> shape_{};
};

class ExtractorPool : public NetworkPool<FeatureMapExtractor> {
 public:
  ExtractorPool(const ModelManifest& manifest, size_t size, const NetworkOptions& options = {});
  std::array<int, 3> map_shape() const { return front().map_shape(); }
};

}  // namespace lookalike

// Image -> global descriptor. The interface every model-backed descriptor implements.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "model/onnx_network.h"

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
class GemEmbedder final : public ImageEmbedder {
 public:
  explicit GemEmbedder(const ModelManifest& manifest);
  size_t dimension() const override { return dimension_; }
  std::string model_id() const override;
  cv::Mat embed(const std::vector<cv::Mat>& rgb) override;
  // Descriptor from an already preprocessed NCHW blob (used by the conversion test).
  cv::Mat embed_blob(const cv::Mat& blob);

 private:
  OnnxNetwork network_;
  size_t dimension_ = 0;
};

// A fixed set of embedders so that at most `size` forwards run at once (bounded memory),
// each on its own cv::dnn::Net. lease() blocks until one is free.
class EmbedderPool {
 public:
  EmbedderPool(const ModelManifest& manifest, size_t size);
  ~EmbedderPool();

  class Lease {
   public:
    Lease(EmbedderPool* pool, ImageEmbedder* embedder) : pool_(pool), embedder_(embedder) {}
    Lease(Lease&& other) noexcept : pool_(other.pool_), embedder_(other.embedder_) { other.pool_ = nullptr; }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    ImageEmbedder* operator->() const { return embedder_; }
    ImageEmbedder& operator*() const { return *embedder_; }

   private:
    EmbedderPool* pool_;
    ImageEmbedder* embedder_;
  };

  Lease lease();
  size_t dimension() const;
  std::string model_id() const;
  size_t size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace lookalike

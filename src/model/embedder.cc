#include "model/embedder.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/core.hpp>

#include "common/error.h"

#include "common/vectors.h"
#include "model/gem.h"

namespace lookalike {

GemEmbedder::GemEmbedder(const ModelManifest& manifest, const NetworkOptions& options)
    : GemEmbedder(make_inference_network(manifest, options)) {}

GemEmbedder::GemEmbedder(std::unique_ptr<InferenceNetwork> network) : network_(std::move(network)) {
  const ModelManifest& manifest = network_->manifest();
  // One forward on a blank image tells the descriptor size and warms the network up, so the
  // first real request does not pay for lazy allocation.
  const cv::Mat blank(manifest.height, manifest.width, CV_8UC3, cv::Scalar(128, 128, 128));
  dimension_ = static_cast<size_t>(embed({blank}).cols);
}

std::string GemEmbedder::model_id() const {
  const auto& m = network_->manifest();
  // %g keeps whole powers as before ("gem3"), so stored catalogs still match, and tells 3.5
  // from 3 (a cast to int made them one model).
  char power[32];
  std::snprintf(power, sizeof power, "%g", static_cast<double>(m.gem_p));
  std::string id = m.name + ":gem" + power;
  for (const auto& out : m.outputs) id += ":" + out;
  return id;
}

cv::Mat GemEmbedder::embed(const std::vector<cv::Mat>& rgb) {
  return embed_keeping(rgb, {}, nullptr);
}

cv::Mat GemEmbedder::embed_keeping(const std::vector<cv::Mat>& rgb, const std::string& block, cv::Mat* map) {
  std::vector<cv::Mat> inputs;
  inputs.reserve(rgb.size());
  for (const auto& image : rgb) inputs.push_back(preprocess_image(image, network_->manifest()));
  return embed_blob(network_->make_blob(inputs), block, map);
}

cv::Mat GemEmbedder::embed_blob(const cv::Mat& blob, const std::string& keep_block, cv::Mat* kept) {
  const auto& m = network_->manifest();
  const std::vector<cv::Mat> maps = network_->forward(blob, m.outputs);
  if (kept) {
    const auto it = std::find(m.outputs.begin(), m.outputs.end(), keep_block);
    if (it == m.outputs.end())
      throw Error(ErrorCode::kInvalidArgument, m.name + " has no output named " + keep_block);
    *kept = maps[static_cast<size_t>(it - m.outputs.begin())];
  }
  const int n = blob.size[0];
  int total = 0;
  for (const auto& map : maps) total += map.size[1];
  cv::Mat descriptors(n, total, CV_32F);
  for (int i = 0; i < n; ++i) {
    float* row = descriptors.ptr<float>(i);
    for (const auto& map : maps) {
      const size_t channels = static_cast<size_t>(map.size[1]);
      const size_t spatial = map.total() / (static_cast<size_t>(n) * channels);
      gem_pool(map.ptr<float>(i), channels, spatial, m.gem_p, row);
      l2_normalise(row, channels);
      row += channels;
    }
  }
  return descriptors;
}

EmbedderPool::EmbedderPool(const ModelManifest& manifest, size_t size, const NetworkOptions& options)
    : NetworkPool(make_networks<GemEmbedder>(size, manifest, options)) {}

FeatureMapExtractor::FeatureMapExtractor(const ModelManifest& manifest, const NetworkOptions& options)
    : network_(make_inference_network(manifest, options)) {
  if (manifest.outputs.size() != 1) {
    throw Error(ErrorCode::kInvalidArgument, manifest.name + ": a feature-map model has exactly one output");
  }
  const cv::Mat blank(manifest.height, manifest.width, CV_8UC3, cv::Scalar(128, 128, 128));
  const cv::Mat map = extract({blank}, false);
  shape_ = {map.size[1], map.size[2], map.size[3]};
}

cv::Mat FeatureMapExtractor::extract(const std::vector<cv::Mat>& rgb, bool flip) {
  std::vector<cv::Mat> inputs;
  inputs.reserve(rgb.size());
  for (const auto& image : rgb) {
    // A fresh Mat for the mirror: `source = image` would share the caller's pixels and flip them
    // in place, so the caller's next use of its images would see them mirrored.
    cv::Mat source;
    if (flip) {
      cv::flip(image, source, 1);
    } else {
      source = image;
    }
    inputs.push_back(preprocess_image(source, network_->manifest()));
  }
  return network_->forward(network_->make_blob(inputs), network_->manifest().outputs).front();
}

ExtractorPool::ExtractorPool(const ModelManifest& manifest, size_t size, const NetworkOptions& options)
    : NetworkPool(make_networks<FeatureMapExtractor>(size, manifest, options)) {}

}  // namespace lookalike

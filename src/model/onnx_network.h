// One ONNX CNN loaded once into OpenCV DNN, fed according to its manifest.
// Not thread-safe: cv::dnn::Net keeps per-forward state. Use one OnnxNetwork per thread
// (see EmbedderPool) rather than a lock around a shared one.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "model/model_manifest.h"

namespace lookalike {

// RGB CV_8UC3 image -> CV_32FC3 network input of the manifest's size, colour order and scaling.
cv::Mat preprocess_image(const cv::Mat& rgb, const ModelManifest& manifest);

class OnnxNetwork {
 public:
  explicit OnnxNetwork(ModelManifest manifest);  // throws Error(kNotFound / kInternal)

  const ModelManifest& manifest() const { return manifest_; }

  // Preprocessed CV_32FC3 inputs -> one NCHW blob.
  cv::Mat make_blob(const std::vector<cv::Mat>& inputs) const;

  // Runs the graph on an NCHW blob; returns one blob per name, in order. The returned Mats
  // own their data (copies), so the next forward cannot overwrite them.
  std::vector<cv::Mat> forward(const cv::Mat& blob, const std::vector<std::string>& names);

 private:
  ModelManifest manifest_;
  cv::dnn::Net net_;
};

}  // namespace lookalike

// The OpenCV DNN engine (fp32, NCHW): the reference the other engines are tested against.
// Not thread-safe: cv::dnn::Net keeps per-forward state (see InferenceNetwork).
// Threads: OpenCV's parallel backend, set process-wide by cv::setNumThreads (`--threads`).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "model/inference_network.h"

namespace lookalike {

class OpenCvNetwork final : public InferenceNetwork {
 public:
  explicit OpenCvNetwork(ModelManifest manifest);  // throws Error(kNotFound / kInternal)

  const ModelManifest& manifest() const override { return manifest_; }
  InferenceEngine engine() const override { return InferenceEngine::kOpenCv; }
  std::vector<cv::Mat> forward(const cv::Mat& blob, const std::vector<std::string>& names) override;

 private:
  ModelManifest manifest_;
  cv::dnn::Net net_;
};

}  // namespace lookalike

// The trained category head in its inference form, and its exchange format (ONNX).
//
//   mixed7 map [N, in_channels, H, W]
//     -> 1x1 conv (BatchNorm folded in) -> ReLU
//     -> GeM pooling (x + eps)^p, spatial mean, ^(1/p)  -> "gem"    [N, channels, 1, 1]
//     -> linear (BatchNorm1d folded in)                 -> "logits" [N, classes]
//
// "gem" is the search descriptor (the catalog L2-normalises it), "logits" the classifier.
// Training (dropout, batch statistics) lives in train/head_trainer.h; this is what ships.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

namespace lookalike {

struct HeadWeights {
  size_t in_channels = 0;
  size_t channels = 0;
  std::vector<float> conv_weight;  // channels x in_channels, row-major
  std::vector<float> conv_bias;    // channels
  float gem_p = 3.f;
  float gem_eps = 1e-6f;
  std::vector<std::string> classes;
  std::vector<float> linear_weight;  // classes x channels, row-major
  std::vector<float> linear_bias;    // classes

  // Throws Error(kInvalidArgument) when the sizes disagree.
  void validate() const;
};

// Serialises the head as an ONNX model (opset 11) with input "mixed7" and outputs "gem" and
// "logits". Uses the ONNX project's own protobuf classes (Debian libonnx-dev).
std::string export_head_onnx(const HeadWeights& head);

// The exported head loaded into OpenCV DNN. Not thread-safe (one per inference slot).
class HeadNetwork {
 public:
  explicit HeadNetwork(const std::string& onnx_bytes);  // throws Error(kCorruptStore)

  struct Output {
    cv::Mat gem;     // N x channels CV_32F, not normalised
    cv::Mat logits;  // N x classes CV_32F
  };
  // maps: NCHW CV_32F blob of mixed7 maps.
  Output forward(const cv::Mat& maps);

 private:
  cv::dnn::Net net_;
};

}  // namespace lookalike

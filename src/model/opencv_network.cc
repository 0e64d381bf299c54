#include "model/opencv_network.h"

#include <filesystem>

#include "common/error.h"

namespace lookalike {

OpenCvNetwork::OpenCvNetwork(ModelManifest manifest) : manifest_(std::move(manifest)) {
  if (!std::filesystem::is_regular_file(manifest_.onnx_path)) {
    throw Error(ErrorCode::kNotFound, "model file " + manifest_.onnx_path +
                                          " is missing; run scripts/prepare-model.sh to convert it");
  }
  try {
    net_ = cv::dnn::readNetFromONNX(manifest_.onnx_path);
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kInternal, "cannot load " + manifest_.onnx_path + ": " + e.what());
  }
  net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
}

std::vector<cv::Mat> OpenCvNetwork::forward(const cv::Mat& blob, const std::vector<std::string>& names) {
  std::vector<cv::Mat> outputs;
  try {
    net_.setInput(blob, manifest_.input_name);
    net_.forward(outputs, names);
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kInternal, "model forward failed: " + std::string(e.what()));
  }
  for (auto& out : outputs) out = out.clone();
  return outputs;
}

}  // namespace lookalike

#include "model/onnx_network.h"

#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "image/preprocess.h"

namespace lookalike {

cv::Mat preprocess_image(const cv::Mat& rgb, const ModelManifest& m) {
  CV_Assert(rgb.type() == CV_8UC3);
  cv::Mat image;
  rgb.convertTo(image, CV_32FC3, m.scale);
  if (m.bgr) cv::cvtColor(image, image, cv::COLOR_RGB2BGR);
  image = m.resize == ResizePolicy::kStretchBilinearAlignCorners
              ? resize_bilinear_align_corners(image, m.width, m.height)
              : resize_bilinear(image, m.width, m.height);
  const bool identity = m.mean == std::array<float, 3>{0, 0, 0} && m.std == std::array<float, 3>{1, 1, 1};
  if (!identity) {
    cv::subtract(image, cv::Scalar(m.mean[0], m.mean[1], m.mean[2]), image);
    cv::divide(image, cv::Scalar(m.std[0], m.std[1], m.std[2]), image);
  }
  return image;
}

OnnxNetwork::OnnxNetwork(ModelManifest manifest) : manifest_(std::move(manifest)) {
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

cv::Mat OnnxNetwork::make_blob(const std::vector<cv::Mat>& inputs) const {
  return cv::dnn::blobFromImages(inputs, 1.0, cv::Size(), cv::Scalar(), /*swapRB=*/false, /*crop=*/false,
                                 CV_32F);
}

std::vector<cv::Mat> OnnxNetwork::forward(const cv::Mat& blob, const std::vector<std::string>& names) {
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

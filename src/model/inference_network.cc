#include "model/inference_network.h"

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "image/preprocess.h"
#include "model/dnnl_network.h"
#include "model/opencv_network.h"

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

cv::Mat make_nchw_blob(const std::vector<cv::Mat>& inputs) {
  return cv::dnn::blobFromImages(inputs, 1.0, cv::Size(), cv::Scalar(), /*swapRB=*/false, /*crop=*/false,
                                 CV_32F);
}

std::string_view precision_name(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kInt8:
      return "int8";
    case Precision::kAuto:
      break;
  }
  return "auto";
}

Precision parse_precision(std::string_view name) {
  if (name == "auto") return Precision::kAuto;
  if (name == "fp32") return Precision::kFp32;
  if (name == "int8") return Precision::kInt8;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown precision '" + std::string(name) + "' (auto, fp32 or int8)");
}

Precision resolve_precision(Precision asked, InferenceEngine engine) {
  if (asked == Precision::kInt8 && engine != InferenceEngine::kDnnl)
    throw Error(ErrorCode::kInvalidArgument, "int8 runs only on the dnnl engine (--engine dnnl)");
  if (asked != Precision::kAuto) return asked;
  return engine == InferenceEngine::kDnnl && DnnlNetwork::cpu_has_vnni() ? Precision::kInt8
                                                                         : Precision::kFp32;
}

std::unique_ptr<InferenceNetwork> make_inference_network(const ModelManifest& manifest,
                                                         const NetworkOptions& options) {
  if (manifest.engine == InferenceEngine::kDnnl) {
    DnnlOptions dnnl;
    dnnl.int8 = options.int8;
    return std::make_unique<DnnlNetwork>(manifest, std::move(dnnl));
  }
  if (options.int8)
    throw Error(ErrorCode::kInvalidArgument, "int8 runs only on the dnnl engine (--engine dnnl)");
  return std::make_unique<OpenCvNetwork>(manifest);
}

}  // namespace lookalike

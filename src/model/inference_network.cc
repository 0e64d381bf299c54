#include "model/inference_network.h"

#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

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

std::unique_ptr<InferenceNetwork> make_inference_network(const ModelManifest& manifest) {
  if (manifest.engine == InferenceEngine::kDnnl) return std::make_unique<DnnlNetwork>(manifest);
  return std::make_unique<OpenCvNetwork>(manifest);
}

}  // namespace lookalike

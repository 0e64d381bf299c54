// Image -> network input, reproducing the preprocessing the weights were trained with.
#pragma once

#include <opencv2/core.hpp>

namespace lookalike {

// Bilinear resize with TensorFlow's align_corners=true semantics (corner pixels map onto corner
// pixels; source coordinate = dst * (src - 1) / (dst - 1)). OpenCV's resize and remap use
// half-pixel centres and 1/32-pixel fixed-point weights, which miss tfjs by up to 1e-2.
// Input: CV_32FC(n) image. Output: CV_32FC(n), width x height, newly allocated.
cv::Mat resize_bilinear_align_corners(const cv::Mat& src, int width, int height);

// Bilinear resize with half-pixel centres, used by the `stretch_bilinear` resize policy.
cv::Mat resize_bilinear(const cv::Mat& src, int width, int height);

}  // namespace lookalike

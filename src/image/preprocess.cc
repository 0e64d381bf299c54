#include "image/preprocess.h"

#include <cassert>
#include <vector>

#include <opencv2/imgproc.hpp>

namespace lookalike {
namespace {

struct Tap {
  int low, high;
  float weight;  // of `high`
};

std::vector<Tap> align_corner_taps(int src, int dst) {
  std::vector<Tap> taps(static_cast<size_t>(dst));
  const float ratio = dst > 1 ? static_cast<float>(src - 1) / static_cast<float>(dst - 1) : 0.f;
  for (int i = 0; i < dst; ++i) {
    const float pos = static_cast<float>(i) * ratio;
    const int low = static_cast<int>(pos);
    taps[static_cast<size_t>(i)] = {low, std::min(low + 1, src - 1), pos - static_cast<float>(low)};
  }
  return taps;
}

}  // namespace

cv::Mat resize_bilinear_align_corners(const cv::Mat& src, int width, int height) {
  assert(src.depth() == CV_32F && width > 0 && height > 0);
  const int channels = src.channels();
  const auto xs = align_corner_taps(src.cols, width);
  const auto ys = align_corner_taps(src.rows, height);
  cv::Mat dst(height, width, src.type());
  for (int y = 0; y < height; ++y) {
    const Tap ty = ys[static_cast<size_t>(y)];
    const float* top = src.ptr<float>(ty.low);
    const float* bottom = src.ptr<float>(ty.high);
    float* out = dst.ptr<float>(y);
    for (int x = 0; x < width; ++x) {
      const Tap tx = xs[static_cast<size_t>(x)];
      for (int c = 0; c < channels; ++c) {
        // Same operation order as tfjs: lerp along x on both rows, then along y.
        const float tl = top[tx.low * channels + c], tr = top[tx.high * channels + c];
        const float bl = bottom[tx.low * channels + c], br = bottom[tx.high * channels + c];
        const float t = tl + (tr - tl) * tx.weight;
        const float b = bl + (br - bl) * tx.weight;
        out[x * channels + c] = t + (b - t) * ty.weight;
      }
    }
  }
  return dst;
}

cv::Mat resize_bilinear(const cv::Mat& src, int width, int height) {
  cv::Mat dst;
  cv::resize(src, dst, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  return dst;
}

}  // namespace lookalike

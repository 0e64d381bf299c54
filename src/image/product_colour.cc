#include "image/product_colour.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

constexpr int kMaxSide = 128;

cv::Mat lab_thumbnail(const cv::Mat& rgb) {
  const double scale = std::min(1.0, static_cast<double>(kMaxSide) / std::max(rgb.cols, rgb.rows));
  cv::Mat small;
  cv::resize(rgb, small, cv::Size(), scale, scale, cv::INTER_AREA);
  if (small.empty()) small = rgb;
  small.convertTo(small, CV_32FC3, 1.0 / 255);
  cv::Mat lab;
  cv::cvtColor(small, lab, cv::COLOR_RGB2Lab);
  return lab;
}

float median(std::vector<float> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Per-channel median of the outermost rows and columns.
LabColour border_median(const cv::Mat& lab) {
  std::vector<float> channel[3];
  const auto take = [&](int r, int c) {
    const auto& p = lab.at<cv::Vec3f>(r, c);
    for (int k = 0; k < 3; ++k) channel[k].push_back(p[k]);
  };
  for (int c = 0; c < lab.cols; ++c) {
    take(0, c);
    take(lab.rows - 1, c);
  }
  for (int r = 1; r + 1 < lab.rows; ++r) {
    take(r, 0);
    take(r, lab.cols - 1);
  }
  return {median(channel[0]), median(channel[1]), median(channel[2])};
}

}  // namespace

float delta_e76(const LabColour& x, const LabColour& y) {
  return std::sqrt((x.l - y.l) * (x.l - y.l) + (x.a - y.a) * (x.a - y.a) + (x.b - y.b) * (x.b - y.b));
}

LabColour product_colour(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3 || rgb.empty())
    throw Error(ErrorCode::kInvalidArgument, "product_colour needs a non-empty RGB image");
  const cv::Mat lab = lab_thumbnail(rgb);
  const LabColour backdrop = border_median(lab);
  double sum[3] = {0, 0, 0}, all[3] = {0, 0, 0};
  size_t kept = 0;
  for (int r = 0; r < lab.rows; ++r) {
    for (int c = 0; c < lab.cols; ++c) {
      const auto& p = lab.at<cv::Vec3f>(r, c);
      for (int k = 0; k < 3; ++k) all[k] += p[k];
      if (delta_e76({p[0], p[1], p[2]}, backdrop) < kBackdropDeltaE) continue;
      for (int k = 0; k < 3; ++k) sum[k] += p[k];
      ++kept;
    }
  }
  const size_t total = lab.total();
  if (static_cast<double>(kept) < kMinProductFraction * static_cast<double>(total)) {
    return {static_cast<float>(all[0] / total), static_cast<float>(all[1] / total),
            static_cast<float>(all[2] / total)};
  }
  return {static_cast<float>(sum[0] / kept), static_cast<float>(sum[1] / kept),
          static_cast<float>(sum[2] / kept)};
}

}  // namespace lookalike

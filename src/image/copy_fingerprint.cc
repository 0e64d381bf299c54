#include "image/copy_fingerprint.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

namespace lookalike {
namespace {

// Zooms of the whole-pixel search: a copy cropped to 90-100% of the original's sides shows its
// content up to 1/0.9 larger. Steps of 3%; the refinement finds the zoom in between.
constexpr std::array<double, 4> kCopyZooms = {1.0, 1 / 0.97, 1 / 0.94, 1 / 0.91};
// Pairs whose whole-pixel alignment correlates less are not refined.
constexpr float kCoarseMinCorrelation = 0.85f;
// Refinements that move a corner this many pixels from the whole-pixel alignment wandered off.
constexpr double kMaxRefinement = 2.0;
// Pixels at the edge left out of the difference: after a crop they hold what the copy lost.
constexpr int kEdgeMargin = 2;
constexpr double kStructureSigma = 1.5;

// One side of a comparison: a thumbnail and its lightness.
struct View {
  const cv::Mat* lab;
  const cv::Mat* lightness;
};

// Where `moving` lies in `fixed`'s frame: fixed(p) ~ moving(warp p).
struct Alignment {
  float correlation = -2;
  View moving{}, fixed{};
  bool mirrored = false;
  cv::Mat warp;  // 2 x 3 CV_32F, fixed pixel -> moving pixel
};

// Best whole-pixel shift of `fixed` inside `moving` zoomed by `zoom`.
void align_zoomed(const View& moving, const View& fixed, double zoom, bool mirrored, Alignment& best) {
  const int side = static_cast<int>(std::lround(kCopyThumbnailSide * zoom));
  cv::Mat zoomed = *moving.lightness;
  if (side != zoomed.cols)
    cv::resize(*moving.lightness, zoomed, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
  cv::Mat scores;
  cv::matchTemplate(zoomed, *fixed.lightness, scores, cv::TM_CCOEFF_NORMED);
  double max_score = 0;
  cv::Point at;
  cv::minMaxLoc(scores, nullptr, &max_score, nullptr, &at);
  if (!std::isfinite(max_score) || max_score <= best.correlation) return;
  const float scale = static_cast<float>(kCopyThumbnailSide) / static_cast<float>(side);
  const auto offset = [scale](int shift) { return (static_cast<float>(shift) + 0.5f) * scale - 0.5f; };
  best = {static_cast<float>(max_score), moving, fixed, mirrored,
          (cv::Mat_<float>(2, 3) << scale, 0, offset(at.x), 0, scale, offset(at.y))};
}

Alignment coarse_alignment(const CopyFingerprint& a, const CopyFingerprint& b) {
  Alignment best;
  const View plain_a{&a.lab, &a.lightness};
  for (const bool mirrored : {false, true}) {
    const View other = mirrored ? View{&b.mirrored, &b.mirrored_lightness} : View{&b.lab, &b.lightness};
    for (const double zoom : kCopyZooms) {
      align_zoomed(plain_a, other, zoom, mirrored, best);
      if (zoom != 1.0) align_zoomed(other, plain_a, zoom, mirrored, best);
    }
  }
  return best;
}

void refine(Alignment& a) {
  cv::Mat warp = a.warp.clone();
  try {
    cv::findTransformECC(*a.fixed.lightness, *a.moving.lightness, warp, cv::MOTION_AFFINE,
                         cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 30, 1e-4),
                         cv::noArray(), 3);
  } catch (const cv::Exception&) {
    return;  // did not converge (a flat photo): keep the whole-pixel alignment
  }
  if (cv::norm(warp - a.warp, cv::NORM_INF) < kMaxRefinement) a.warp = warp;
}

// The fixed thumbnail and the moving one resampled into its frame, both without kEdgeMargin.
std::pair<cv::Mat, cv::Mat> aligned_pair(const Alignment& a) {
  cv::Mat warped;
  cv::warpAffine(*a.moving.lab, warped, a.warp, a.fixed.lab->size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                 cv::BORDER_REPLICATE);
  const cv::Rect inner(kEdgeMargin, kEdgeMargin, kCopyThumbnailSide - 2 * kEdgeMargin,
                       kCopyThumbnailSide - 2 * kEdgeMargin);
  return {(*a.fixed.lab)(inner), warped(inner)};
}

// Normalised cross-correlation over all channels, each channel's mean removed.
float correlation(const cv::Mat& x, const cv::Mat& y) {
  const cv::Mat cx = x - cv::mean(x), cy = y - cv::mean(y);
  const double denominator = cv::norm(cx) * cv::norm(cy);
  return denominator > 0 ? static_cast<float>(cx.dot(cy) / denominator) : 0.0f;
}

float largest_delta_e(const cv::Mat& lab_difference) {
  float largest = 0;
  for (int r = 0; r < lab_difference.rows; ++r) {
    for (int c = 0; c < lab_difference.cols; ++c) {
      const auto& d = lab_difference.at<cv::Vec3f>(r, c);
      largest = std::max(largest, std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]));
    }
  }
  return largest;
}

}  // namespace

CopyFingerprint copy_fingerprint(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3 || rgb.cols < 8 || rgb.rows < 8)
    throw std::invalid_argument("copy_fingerprint: an RGB image of at least 8 x 8 pixels is required");
  cv::Mat small;
  cv::resize(rgb, small, cv::Size(kCopyThumbnailSide, kCopyThumbnailSide), 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32FC3, 1.0 / 255);
  CopyFingerprint out;
  cv::cvtColor(small, out.lab, cv::COLOR_RGB2Lab);
  cv::flip(out.lab, out.mirrored, 1);
  cv::extractChannel(out.lab, out.lightness, 0);
  cv::extractChannel(out.mirrored, out.mirrored_lightness, 0);
  return out;
}

CopyComparison compare_copies(const CopyFingerprint& a, const CopyFingerprint& b) {
  Alignment best = coarse_alignment(a, b);
  CopyComparison out;
  out.correlation = best.correlation;
  out.mirrored = best.mirrored;
  if (!best.moving.lab || best.correlation < kCoarseMinCorrelation) return out;
  refine(best);
  const auto [fixed, warped] = aligned_pair(best);
  out.correlation = correlation(fixed, warped);
  // No mean difference is removed: the same shot in navy instead of black is another product.
  const cv::Mat difference = fixed - warped;
  cv::Mat blurred;
  cv::GaussianBlur(difference, blurred, cv::Size(0, 0), kStructureSigma);
  out.structure = largest_delta_e(blurred);
  return out;
}

}  // namespace lookalike

#include "image/product_colour.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

constexpr int kMaxSide = 128;
constexpr int kMaxClusteredPixels = 4096;

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

// The product region: the convex hull of the pixels that differ from the backdrop. Backdrop-
// coloured pixels inside it belong to the product: a white shirt on a white backdrop is mostly
// such pixels, outlined by its seams and shadows, the model's hair, hands and trousers. Taking
// only the differing pixels would describe a white shirt by the trousers under it.
cv::Mat product_region(const cv::Mat& lab, const LabColour& backdrop) {
  cv::Mat differs(lab.size(), CV_8U);
  for (int r = 0; r < lab.rows; ++r) {
    for (int c = 0; c < lab.cols; ++c) {
      const auto& p = lab.at<cv::Vec3f>(r, c);
      differs.at<uchar>(r, c) = delta_e76({p[0], p[1], p[2]}, backdrop) >= kBackdropDeltaE ? 255 : 0;
    }
  }
  // Lone pixels (JPEG ringing, a speck of dust) must not stretch the hull.
  cv::morphologyEx(differs, differs, cv::MORPH_OPEN, cv::getStructuringElement(cv::MORPH_RECT, {3, 3}));
  cv::Mat region = cv::Mat::zeros(lab.size(), CV_8U);
  std::vector<cv::Point> points, hull;
  cv::findNonZero(differs, points);
  if (points.size() < 3) return region;
  cv::convexHull(points, hull);
  cv::fillConvexPoly(region, hull, 255);
  return region;
}

// The product's pixels as an N x 3 CV_32F matrix of L*a*b* rows: those of product_region, or
// every pixel when that is under kMinProductFraction of the image.
cv::Mat product_pixels(const cv::Mat& rgb) {
  if (rgb.type() != CV_8UC3 || rgb.empty())
    throw Error(ErrorCode::kInvalidArgument, "product colours need a non-empty RGB image");
  const cv::Mat lab = lab_thumbnail(rgb);
  const cv::Mat region = product_region(lab, border_median(lab));
  const cv::Mat all = lab.reshape(1, static_cast<int>(lab.total()));
  if (static_cast<double>(cv::countNonZero(region)) < kMinProductFraction * static_cast<double>(all.rows))
    return all;
  std::vector<cv::Vec3f> kept;
  kept.reserve(lab.total());
  for (int r = 0; r < lab.rows; ++r) {
    for (int c = 0; c < lab.cols; ++c)
      if (region.at<uchar>(r, c)) kept.push_back(lab.at<cv::Vec3f>(r, c));
  }
  return cv::Mat(kept, true).reshape(1);
}

// cv::kmeans draws its initial centres from the calling thread's cv::theRNG(); a fixed seed,
// restored afterwards, makes the clustering repeatable without touching anyone else's draws.
class SeededRng {
 public:
  explicit SeededRng(uint64_t seed) : saved_(cv::theRNG()) { cv::theRNG() = cv::RNG(seed); }
  ~SeededRng() { cv::theRNG() = saved_; }
  SeededRng(const SeededRng&) = delete;
  SeededRng& operator=(const SeededRng&) = delete;

 private:
  cv::RNG saved_;
};

cv::Mat signature_matrix(const std::vector<float>& signature) {
  if (!valid_colour_signature(signature))
    throw Error(ErrorCode::kInvalidArgument, "not a colour signature of 1-3 {share, L, a, b} rows");
  return cv::Mat(static_cast<int>(signature.size() / kColourRowValues), static_cast<int>(kColourRowValues),
                 CV_32F, const_cast<float*>(signature.data()));
}

}  // namespace

float delta_e76(const LabColour& x, const LabColour& y) {
  return std::sqrt((x.l - y.l) * (x.l - y.l) + (x.a - y.a) * (x.a - y.a) + (x.b - y.b) * (x.b - y.b));
}

LabColour product_colour(const cv::Mat& rgb) {
  const cv::Mat pixels = product_pixels(rgb);
  cv::Mat mean;
  cv::reduce(pixels, mean, 0, cv::REDUCE_AVG, CV_64F);
  const double* m = mean.ptr<double>(0);
  return {static_cast<float>(m[0]), static_cast<float>(m[1]), static_cast<float>(m[2])};
}

std::vector<float> dominant_colours(const cv::Mat& rgb) {
  cv::Mat pixels = product_pixels(rgb);
  // Every step-th pixel: shares to within a percent at a quarter of the clustering time.
  if (const int step = pixels.rows / kMaxClusteredPixels + 1; step > 1) {
    cv::Mat sampled(0, 3, CV_32F);
    for (int r = 0; r < pixels.rows; r += step) sampled.push_back(pixels.row(r));
    pixels = sampled;
  }
  const int k = std::min(static_cast<int>(kDominantColours), pixels.rows);
  cv::Mat labels, centres;
  {
    const SeededRng seeded(0x5eed);
    cv::kmeans(pixels, k, labels, cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS, 20, 0.5),
               2, cv::KMEANS_PP_CENTERS, centres);
  }
  std::vector<int> members(static_cast<size_t>(k), 0);
  for (int r = 0; r < labels.rows; ++r) ++members[static_cast<size_t>(labels.at<int>(r))];
  std::vector<int> order(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return members[static_cast<size_t>(a)] > members[static_cast<size_t>(b)];
  });
  std::vector<float> signature;
  for (const int c : order) {
    if (members[static_cast<size_t>(c)] == 0) continue;  // an empty cluster says nothing
    const float* centre = centres.ptr<float>(c);
    signature.insert(signature.end(), {static_cast<float>(members[static_cast<size_t>(c)]) / labels.rows,
                                       centre[0], centre[1], centre[2]});
  }
  return signature;
}

bool valid_colour_signature(const std::vector<float>& signature) {
  const size_t rows = signature.size() / kColourRowValues;
  if (rows == 0 || rows > kDominantColours || signature.size() % kColourRowValues != 0) return false;
  double shares = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = &signature[r * kColourRowValues];
    for (size_t i = 0; i < kColourRowValues; ++i)
      if (!std::isfinite(row[i])) return false;
    if (row[0] <= 0 || row[0] > 1 || row[1] < 0 || row[1] > 100) return false;
    shares += row[0];
  }
  return std::abs(shares - 1) < 1e-3;
}

float colour_distance(const std::vector<float>& x, const std::vector<float>& y) {
  return cv::EMD(signature_matrix(x), signature_matrix(y), cv::DIST_L2);
}

std::string srgb_hex(const LabColour& colour) {
  const cv::Mat lab(1, 1, CV_32FC3, cv::Scalar(colour.l, colour.a, colour.b));
  cv::Mat rgb;
  cv::cvtColor(lab, rgb, cv::COLOR_Lab2RGB);
  const auto& p = rgb.at<cv::Vec3f>(0, 0);
  char hex[8];
  std::snprintf(hex, sizeof hex, "#%02x%02x%02x",
                static_cast<unsigned>(std::lround(std::clamp(p[0], 0.0f, 1.0f) * 255)),
                static_cast<unsigned>(std::lround(std::clamp(p[1], 0.0f, 1.0f) * 255)),
                static_cast<unsigned>(std::lround(std::clamp(p[2], 0.0f, 1.0f) * 255)));
  return hex;
}

float colour_similarity(float distance) {
  return std::clamp(1.0f - distance / kColourDistanceRange, 0.0f, 1.0f);
}

}  // namespace lookalike

#include "service/head_validation.h"

#include <gtest/gtest.h>

namespace lookalike {
namespace {

// Three classes: `predicted` at `confidence`, the rest shared by the other two.
ValidationPhoto photo(int label, float confidence, int predicted, double unrestricted) {
  ValidationPhoto p;
  p.label = label;
  p.probabilities.assign(3, (1 - confidence) / 2);
  p.probabilities[static_cast<size_t>(predicted)] = confidence;
  p.unrestricted_precision = unrestricted;
  return p;
}

TEST(ChooseMinConfidence, NoPhotosKeepsTheDefault) {
  const auto t = choose_min_confidence({});
  EXPECT_FLOAT_EQ(t.min_confidence, 0.5f);
}

TEST(ChooseMinConfidence, UnsureButRightPredictionsLowerTheThreshold) {
  // Predictions at confidence 0.4 are right, and their unrestricted neighbours mostly are not:
  // searching the predicted category pays even below 0.5.
  std::vector<ValidationPhoto> photos;
  for (int i = 0; i < 8; ++i) photos.push_back(photo(0, 0.9f, 0, 0.8));
  for (int i = 0; i < 4; ++i) photos.push_back(photo(1, 0.4f, 1, 0.3));
  const auto t = choose_min_confidence(photos);
  EXPECT_LE(t.min_confidence, 0.4f);
  EXPECT_GT(t.min_confidence, 0.f);  // ties (0.05 .. 0.4) go to the value nearest 0.5
  EXPECT_DOUBLE_EQ(t.precision_at_12, 1.0);
}

TEST(ChooseMinConfidence, UnsureWrongPredictionsRaiseIt) {
  // At confidence 0.6 the prediction is wrong and the unrestricted search is half right.
  std::vector<ValidationPhoto> photos;
  for (int i = 0; i < 8; ++i) photos.push_back(photo(0, 0.95f, 0, 0.7));
  for (int i = 0; i < 4; ++i) photos.push_back(photo(2, 0.6f, 1, 0.5));
  const auto t = choose_min_confidence(photos);
  EXPECT_GT(t.min_confidence, 0.6f);
  EXPECT_LE(t.min_confidence, 0.95f);
  EXPECT_DOUBLE_EQ(t.precision_at_12, (8 + 4 * 0.5) / 12);
}

TEST(NeighbourPrecision, CountsTheNearestRowsOfTheSameLabel) {
  // Pool: four unit vectors along x (label 0) and four along y (label 1), slightly spread.
  cv::Mat pool(8, 2, CV_32F);
  std::vector<int> pool_labels;
  for (int i = 0; i < 8; ++i) {
    const float a = 0.05f * static_cast<float>(i % 4);
    pool.at<float>(i, 0) = i < 4 ? 1 : a;
    pool.at<float>(i, 1) = i < 4 ? a : 1;
    cv::normalize(pool.row(i), pool.row(i));
    pool_labels.push_back(i < 4 ? 0 : 1);
  }
  const cv::Mat queries = (cv::Mat_<float>(2, 2) << 1, 0, 0, 1);
  const auto p4 = neighbour_precision(queries, {0, 0}, pool, pool_labels, 4);
  EXPECT_DOUBLE_EQ(p4[0], 1.0);  // the four x rows
  EXPECT_DOUBLE_EQ(p4[1], 0.0);  // the four y rows, but the query claims label 0
  // k beyond the pool counts the missing neighbours as misses.
  const auto p12 = neighbour_precision(queries, {0, 1}, pool, pool_labels, 12);
  EXPECT_DOUBLE_EQ(p12[0], 4.0 / 12);
  EXPECT_DOUBLE_EQ(p12[1], 4.0 / 12);
  EXPECT_TRUE(neighbour_precision(queries, {0, 1}, cv::Mat(), {}, 12) == std::vector<double>(2, 0.0));
}

}  // namespace
}  // namespace lookalike

#include "service/head_validation.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(BlendProbabilities, WeightZeroIsTheHeadAndTheResultIsADistribution) {
  const std::vector<float> head{0.7f, 0.2f, 0.1f}, frozen{0.1f, 0.1f, 0.8f};
  EXPECT_EQ(blend_probabilities(head, frozen, 0), head);
  const auto half = blend_probabilities(head, frozen, 0.5f);
  float sum = 0;
  for (float p : half) sum += p;
  EXPECT_NEAR(sum, 1.0f, 1e-6f);
  // Geometric mean, renormalised: sqrt(.7 * .1) : sqrt(.2 * .1) : sqrt(.1 * .8).
  const double a = std::sqrt(0.07), b = std::sqrt(0.02), c = std::sqrt(0.08);
  EXPECT_NEAR(half[0], a / (a + b + c), 1e-6);
  EXPECT_NEAR(half[2], c / (a + b + c), 1e-6);
  // A zero probability lowers its class without turning the blend into NaN.
  const auto vetoed = blend_probabilities({0.f, 1.f}, {1.f, 0.f}, 0.3f);
  EXPECT_FALSE(std::isnan(vetoed[0]));
  EXPECT_GT(vetoed[1], vetoed[0]);
}

ValidationPhoto pair(int label, std::vector<float> head, std::vector<float> frozen) {
  ValidationPhoto p;
  p.label = label;
  p.probabilities = std::move(head);
  p.frozen = std::move(frozen);
  return p;
}

TEST(ChooseBlendWeight, AUselessProbeGetsNoWeight) {
  // The probe is confidently wrong wherever the head is right.
  std::vector<ValidationPhoto> photos;
  for (int i = 0; i < 10; ++i)
    photos.push_back(pair(i % 2, i % 2 ? std::vector<float>{0.2f, 0.8f} : std::vector<float>{0.8f, 0.2f},
                          i % 2 ? std::vector<float>{0.9f, 0.1f} : std::vector<float>{0.1f, 0.9f}));
  const auto w = choose_blend_weight(photos);
  EXPECT_FLOAT_EQ(w.weight, 0.f);
  EXPECT_DOUBLE_EQ(w.accuracy, 1.0);
}

TEST(ChooseBlendWeight, AProbeThatFixesTheHeadsMistakesGetsWeight) {
  // The head is unsure and wrong on a third of the photos, where the probe is sure and right;
  // elsewhere both are right.
  std::vector<ValidationPhoto> photos;
  for (int i = 0; i < 12; ++i) {
    const bool hard = i % 3 == 0;
    photos.push_back(pair(0, hard ? std::vector<float>{0.45f, 0.55f} : std::vector<float>{0.9f, 0.1f},
                          hard ? std::vector<float>{0.9f, 0.1f} : std::vector<float>{0.6f, 0.4f}));
  }
  const auto w = choose_blend_weight(photos);
  EXPECT_GT(w.weight, 0.f);
  EXPECT_LE(w.weight, 0.7f);
  EXPECT_DOUBLE_EQ(w.accuracy, 1.0);
  EXPECT_LT(w.log_loss, -std::log(0.55) / 3 - 2 * std::log(0.9) / 3);  // better than the head alone
}

TEST(ChooseBlendWeight, PhotosWithoutAProbeGiveWeightZero) {
  EXPECT_FLOAT_EQ(choose_blend_weight({pair(0, {0.6f, 0.4f}, {})}).weight, 0.f);
  EXPECT_FLOAT_EQ(choose_blend_weight({}).weight, 0.f);
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

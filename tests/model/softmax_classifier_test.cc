#include "model/softmax_classifier.h"

#include <gtest/gtest.h>

#include <random>

#include "common/error.h"

namespace lookalike {
namespace {

struct Blobs {
  std::vector<float> x;
  std::vector<int> y;
};

// Three Gaussian clusters in 8 dimensions, well separated.
Blobs make_blobs(size_t per_class, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0, 0.3f);
  Blobs b;
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < per_class; ++i) {
      for (int d = 0; d < 8; ++d) b.x.push_back((d == c ? 2.f : 0.f) + noise(rng));
      b.y.push_back(c);
    }
  }
  return b;
}

TEST(SoftmaxClassifier, LearnsSeparableClasses) {
  const Blobs train = make_blobs(40, 1), test = make_blobs(20, 2);
  const auto model = SoftmaxClassifier::train(train.y.size(), 8, train.x.data(), train.y, {"a", "b", "c"});
  size_t correct = 0;
  for (size_t i = 0; i < test.y.size(); ++i) {
    const auto p = model.predict(test.x.data() + i * 8);
    EXPECT_NEAR(p[0] + p[1] + p[2], 1.f, 1e-5);
    correct += static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin()) == test.y[i];
  }
  EXPECT_GE(correct, test.y.size() * 95 / 100);
  EXPECT_GT(SoftmaxClassifier::cross_validate(train.y.size(), 8, train.x.data(), train.y, 3, 5).accuracy,
            0.9);
}

TEST(SoftmaxClassifier, RandomLabelsStayNearChance) {
  Blobs b = make_blobs(40, 3);
  std::mt19937 rng(9);
  for (auto& y : b.y) y = static_cast<int>(rng() % 3);
  const auto cv = SoftmaxClassifier::cross_validate(b.y.size(), 8, b.x.data(), b.y, 3, 5);
  EXPECT_LT(cv.accuracy, 0.6);
  // Calibration: with labels carrying no signal the fitted temperature flattens the softmax.
  auto model = SoftmaxClassifier::train(b.y.size(), 8, b.x.data(), b.y, {"a", "b", "c"});
  model.set_temperature(cv.temperature);
  double top = 0;
  for (size_t i = 0; i < b.y.size(); ++i) {
    const auto p = model.predict(b.x.data() + i * 8);
    top += *std::max_element(p.begin(), p.end());
  }
  EXPECT_LT(top / double(b.y.size()), 0.5);
}

TEST(SoftmaxClassifier, SerialisationRoundTrips) {
  const Blobs b = make_blobs(10, 4);
  const auto model = SoftmaxClassifier::train(b.y.size(), 8, b.x.data(), b.y, {"a", "b", "c"});
  const auto copy = SoftmaxClassifier::deserialize(model.serialize());
  EXPECT_EQ(copy.classes(), model.classes());
  EXPECT_EQ(copy.predict(b.x.data()), model.predict(b.x.data()));
  auto hot = model;
  hot.set_temperature(0.5f);
  const auto sharp = SoftmaxClassifier::deserialize(hot.serialize()).predict(b.x.data());
  const auto soft = copy.predict(b.x.data());
  EXPECT_GT(*std::max_element(sharp.begin(), sharp.end()), *std::max_element(soft.begin(), soft.end()));
}

TEST(SoftmaxClassifier, RefusesCorruptOrInconsistentState) {
  EXPECT_THROW(SoftmaxClassifier::deserialize("{not json"), Error);
  EXPECT_THROW(
      SoftmaxClassifier::deserialize(R"({"dimension":2,"classes":["a","b"],"weights":[1],"bias":[0,0]})"),
      Error);
}

TEST(SoftmaxClassifier, RefusesSingleClass) {
  const std::vector<float> x{1, 2};
  EXPECT_THROW(SoftmaxClassifier::train(2, 1, x.data(), {0, 0}, {"only"}), Error);
}

}  // namespace
}  // namespace lookalike

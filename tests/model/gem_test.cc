#include "model/gem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/vectors.h"

namespace lookalike {
namespace {

TEST(Gem, PowerOneIsAveragePooling) {
  const std::vector<float> map{1, 2, 3, 4, /*channel 2*/ 10, 10, 10, 10};
  float out[2];
  gem_pool(map.data(), 2, 4, 1.f, out);
  EXPECT_NEAR(out[0], 2.5f, 1e-6);
  EXPECT_NEAR(out[1], 10.f, 1e-6);
}

TEST(Gem, PowerThreeIsCubicMean) {
  const std::vector<float> map{1, 2, 3, 4};
  float out;
  gem_pool(map.data(), 1, 4, 3.f, &out);
  EXPECT_NEAR(out, std::cbrt((1 + 8 + 27 + 64) / 4.0), 1e-5);
}

TEST(Gem, LargePowerApproachesMaxAndClampsNegatives) {
  const std::vector<float> map{-5, 0.5f, 2, 0.1f};
  float out;
  gem_pool(map.data(), 1, 4, 16.f, &out);
  EXPECT_NEAR(out, 2 * std::pow(0.25, 1 / 16.0), 1e-4);
  EXPECT_GT(out, 1.7f);
}

TEST(Vectors, L2NormaliseMakesUnitLengthAndKeepsZero) {
  std::vector<float> v{3, 4};
  EXPECT_FLOAT_EQ(l2_normalise(v.data(), 2), 5);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(dot(v.data(), v.data(), 2), 1);
  std::vector<float> zero{0, 0};
  EXPECT_EQ(l2_normalise(zero.data(), 2), 0);
  EXPECT_EQ(zero[0], 0);
}

}  // namespace
}  // namespace lookalike

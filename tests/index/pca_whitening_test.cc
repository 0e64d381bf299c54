#include "index/pca_whitening.h"

#include <faiss/VectorTransform.h>
#include <gtest/gtest.h>

#include <cmath>

#include <random>

#include "common/error.h"
#include "common/vectors.h"

namespace lookalike {
namespace {

// 400 samples in 32 dimensions with very unequal variances along the axes.
std::vector<float> anisotropic(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) x[i * d + j] = g(rng) * (j < 4 ? 10.f : 0.5f) + 3.f;
  }
  return x;
}

TEST(PcaWhitening, ProjectsToUnitVectorsOfRequestedSize) {
  const auto x = anisotropic(400, 32, 1);
  const auto pca = PcaWhitening::train(400, 32, x.data(), 8);
  EXPECT_EQ(pca.input_dimension(), 32u);
  EXPECT_EQ(pca.output_dimension(), 8u);
  const auto y = pca.apply(400, x.data());
  for (size_t i = 0; i < 400; ++i) EXPECT_NEAR(dot(y.data() + i * 8, y.data() + i * 8, 8), 1.f, 1e-4);
}

TEST(PcaWhitening, WhitenedComponentsHaveEqualSpread) {
  const auto x = anisotropic(400, 32, 2);
  const auto pca = PcaWhitening::train(400, 32, x.data(), 8);
  const auto y = pca.apply(400, x.data());
  // Before L2 normalisation every whitened component has unit variance, so after it the
  // per-component variances stay within a small factor of each other (unwhitened: ~400x).
  std::vector<double> var(8, 0);
  for (size_t i = 0; i < 400; ++i)
    for (size_t j = 0; j < 8; ++j) var[j] += double(y[i * 8 + j]) * y[i * 8 + j];
  const auto [lo, hi] = std::minmax_element(var.begin(), var.end());
  EXPECT_LT(*hi / *lo, 3.0);
}

TEST(PcaWhitening, CapsDimensionForSmallSamples) {
  const auto x = anisotropic(40, 32, 3);
  EXPECT_EQ(PcaWhitening::train(40, 32, x.data(), 512).output_dimension(), 10u);
  EXPECT_THROW(PcaWhitening::train(5, 32, x.data(), 4), Error);
}

TEST(PcaWhitening, SerialisationRoundTrips) {
  const auto x = anisotropic(100, 32, 4);
  const auto pca = PcaWhitening::train(100, 32, x.data(), 6);
  const auto copy = PcaWhitening::deserialize(pca.serialize());
  EXPECT_EQ(copy.apply(3, x.data()), pca.apply(3, x.data()));
  EXPECT_THROW(PcaWhitening::deserialize("garbage"), Error);
}

// Every process that serves loads the recipe at start-up: it must hold the projection only
// (d_in x d_out), not the d_in x d_in eigenvector matrix PCA training computes.
TEST(PcaWhitening, StoresTheProjectionOnly) {
  const size_t d_in = 256, d_out = 8;
  const auto x = anisotropic(400, d_in, 4);
  const auto bytes = PcaWhitening::train(400, d_in, x.data(), d_out).serialize();
  EXPECT_LT(bytes.size(), 2 * d_in * d_out * sizeof(float) + 4 * d_in * sizeof(float));
  EXPECT_EQ(PcaWhitening::deserialize(bytes).output_dimension(), d_out);
}

// Variances that fall geometrically along the axes, so every component is well separated from
// the next and both ways of learning it must find the same one (up to its sign).
std::vector<float> graded(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] = g(rng) * std::pow(0.85f, float(j)) + 1.f;
  return x;
}

// Only the kept components are computed (LAPACK dsyevr), where FAISS's PCAMatrix::train computes
// them all; the projections must agree, through the covariance (n >= d) and the Gram matrix (n < d).
void expect_same_projection_as_faiss(size_t n, size_t d, size_t d_out) {
  const auto x = graded(n, d, 7);
  const auto ours = PcaWhitening::train(n, d, x.data(), d_out);
  ASSERT_EQ(ours.output_dimension(), d_out);
  faiss::PCAMatrix reference(int(d), int(d_out), -0.5f, false);
  reference.epsilon = 1e-6f;
  reference.train(faiss::Index::idx_t(n), x.data());
  std::vector<float> expected(n * d_out);
  reference.apply_noalloc(faiss::Index::idx_t(n), x.data(), expected.data());
  for (size_t i = 0; i < n; ++i) l2_normalise(expected.data() + i * d_out, d_out);
  const auto got = ours.apply(n, x.data());
  // Per component, the sign is LAPACK's choice; the inner products between items are not.
  for (size_t j = 0; j < d_out; ++j) {
    double agreement = 0;
    for (size_t i = 0; i < n; ++i) agreement += double(got[i * d_out + j]) * expected[i * d_out + j];
    const float sign = agreement < 0 ? -1.f : 1.f;
    for (size_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[i * d_out + j], sign * expected[i * d_out + j], 2e-3)
          << "item " << i << " component " << j;
  }
}

TEST(PcaWhitening, MatchesFaissThroughTheCovariance) {
  expect_same_projection_as_faiss(600, 40, 12);
}

TEST(PcaWhitening, MatchesFaissThroughTheGramMatrix) {
  expect_same_projection_as_faiss(48, 64, 12);
}

}  // namespace
}  // namespace lookalike

#include "index/pq_scan.h"

#include <faiss/impl/ProductQuantizer.h>
#include <faiss/utils/distances.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace lookalike {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// A product quantizer of the compressed index's shape (8-bit codes, 64 of them) whose code words
// are random vectors: k-means would only make the test slow, the layout is what it checks.
struct Quantized {
  static constexpr size_t kD = 128, kM = 64, kN = 1000;
  faiss::ProductQuantizer pq{kD, kM, 8};
  std::vector<float> rows = gaussian(kN * kD, 1);
  std::vector<uint8_t> codes = std::vector<uint8_t>(kN * kM);
  Quantized() {
    pq.centroids = gaussian(pq.centroids.size(), 4);
    pq.compute_codes(rows.data(), codes.data(), kN);
  }
  std::vector<float> distance_table(const std::vector<float>& query) const {
    std::vector<float> table(kM * 256);
    pq.compute_distance_table(query.data(), table.data());
    return table;
  }
  std::vector<float> scan_all(const std::vector<float>& table) const {
    std::vector<float> out(kN);
    pq8_distances(table.data(), kM, codes.data(), nullptr, kN, out.data());
    return out;
  }
};

// The distance of a code is the L2 distance to the vector its code decodes to, which is what
// the sum of the query's table entries stands for.
TEST(PqScan, DistancesAreTheL2DistancesToTheDecodedVectors) {
  Quantized q;
  const auto query = gaussian(Quantized::kD, 2);
  const auto table = q.distance_table(query);
  const auto got = q.scan_all(table);
  std::vector<float> decoded(Quantized::kD);
  for (size_t i = 0; i < Quantized::kN; ++i) {
    q.pq.decode(q.codes.data() + i * Quantized::kM, decoded.data());
    const float want = faiss::fvec_L2sqr(query.data(), decoded.data(), Quantized::kD);
    ASSERT_NEAR(got[i], want, 1e-3f * want) << "code " << i;
  }
}

// Chosen rows, in any order and any count (not only multiples of the four codes in flight),
// get the distances their codes get in a full scan.
TEST(PqScan, ChosenRowsGetTheDistancesOfTheFullScan) {
  Quantized q;
  const auto table = q.distance_table(gaussian(Quantized::kD, 3));
  const auto all = q.scan_all(table);
  for (const std::vector<uint32_t>& rows :
       {std::vector<uint32_t>{}, {7}, {999, 0, 500}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}}) {
    std::vector<float> got(rows.size(), -1.0f);
    pq8_distances(table.data(), Quantized::kM, q.codes.data(), rows.data(), rows.size(), got.data());
    for (size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(got[i], all[rows[i]]) << "row " << rows[i];
  }
}

}  // namespace
}  // namespace lookalike

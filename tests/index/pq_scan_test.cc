#include "index/pq_scan.h"

#include <faiss/impl/ProductQuantizer.h>
#include <faiss/impl/pq4_fast_scan.h>
#include <faiss/utils/distances.h>
#include <gtest/gtest.h>

#include <algorithm>
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

// 4-bit codes of the compressed index's fast-scan shape (128 sub-quantizers), packed into blocks
// of 32 by FAISS itself; 100 rows make three full blocks and a partial one.
struct Packed4 {
  static constexpr size_t kD = 256, kM = 128, kN = 100, kBlocks = 4;
  faiss::ProductQuantizer pq{kD, kM, 4};
  std::vector<float> rows = gaussian(kN * kD, 5);
  std::vector<uint8_t> flat = std::vector<uint8_t>(kN * kM / 2);
  std::vector<uint8_t> blocks = std::vector<uint8_t>(kBlocks * kPq4BlockRows * kM / 2);
  Packed4() {
    pq.centroids = gaussian(pq.centroids.size(), 6);
    pq.compute_codes(rows.data(), flat.data(), kN);
    faiss::pq4_pack_codes(flat.data(), kN, kM, kBlocks * kPq4BlockRows, kPq4BlockRows, kM, blocks.data());
  }
  // Row `row`'s code of sub-quantizer `sq` as the quantizer wrote it (two per byte, low nibble
  // first). Not read back from the blocks with FAISS's pq4_get_packed_element: in 1.7.3 it
  // computes the byte's address in 8 bits and reads the wrong byte past the 16th sub-quantizer.
  uint8_t code(size_t row, size_t sq) const { return (flat[row * kM / 2 + sq / 2] >> (4 * (sq % 2))) & 15; }
  std::vector<float> distance_table(const std::vector<float>& query) const {
    std::vector<float> table(kM * 16);
    pq.compute_distance_table(query.data(), table.data());
    return table;
  }
};

// Each row's sum is the byte table's entries at the codes the quantizer gave the row, read from
// FAISS's packing of them, with AVX2 (where the CPU has it) and without.
TEST(Pq4Scan, SumsAreTheByteTableEntriesAtEachRowsCodes) {
  Packed4 q;
  std::vector<uint8_t> packed(Packed4::kM * 16);
  pq4_quantize_table(q.distance_table(gaussian(Packed4::kD, 7)).data(), Packed4::kM, packed.data());
  std::vector<uint16_t> got(Packed4::kBlocks * kPq4BlockRows), portable(got.size());
  pq4_distances(packed.data(), Packed4::kM, q.blocks.data(), Packed4::kBlocks, got.data());
  pq4_distances_portable(packed.data(), Packed4::kM, q.blocks.data(), Packed4::kBlocks, portable.data());
  for (size_t i = 0; i < Packed4::kN; ++i) {
    uint32_t want = 0;
    for (size_t sq = 0; sq < Packed4::kM; ++sq) {
      want += packed[(sq / 2) * 32 + (sq % 2) * 16 + q.code(i, sq)];
    }
    EXPECT_EQ(got[i], want) << "row " << i;
    EXPECT_EQ(portable[i], want) << "row " << i;
  }
}

// The byte sums estimate the L2 distance to each row's decoded vector within the rounding of
// the table (half a step per sub-quantizer) once scaled back and the row minima added.
TEST(Pq4Scan, ByteSumsEstimateTheL2DistancesToTheDecodedVectorsWithinRounding) {
  Packed4 q;
  const auto query = gaussian(Packed4::kD, 8);
  const auto table = q.distance_table(query);
  std::vector<uint8_t> packed(Packed4::kM * 16);
  pq4_quantize_table(table.data(), Packed4::kM, packed.data());
  std::vector<uint16_t> got(Packed4::kBlocks * kPq4BlockRows);
  pq4_distances(packed.data(), Packed4::kM, q.blocks.data(), Packed4::kBlocks, got.data());
  float minima = 0.0f, widest = 0.0f;
  for (size_t sq = 0; sq < Packed4::kM; ++sq) {
    const auto [low, high] = std::minmax_element(table.begin() + sq * 16, table.begin() + sq * 16 + 16);
    minima += *low;
    widest = std::max(widest, *high - *low);
  }
  const float step = widest / 255.0f;
  std::vector<float> decoded(Packed4::kD);
  for (size_t i = 0; i < Packed4::kN; ++i) {
    q.pq.decode(q.flat.data() + i * Packed4::kM / 2, decoded.data());
    const float want = faiss::fvec_L2sqr(query.data(), decoded.data(), Packed4::kD);
    EXPECT_NEAR(minima + got[i] * step, want, 0.5f * step * Packed4::kM + 1e-3f * want) << "row " << i;
  }
}

}  // namespace
}  // namespace lookalike

// Readable similarity: measured on the index's own neighbours, monotone, spread over 0..1.
#include "index/score_scale.h"

#include <gtest/gtest.h>

#include <random>

#include "support/test_support.h"

namespace lookalike {
namespace {

std::unique_ptr<VectorIndex> random_index(size_t n, size_t d, uint32_t seed) {
  const auto v = testing::random_unit_vectors(n, d, seed);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(100 + i);
  auto index = make_flat_index(d);
  index->add(n, ids.data(), v.data());
  return index;
}

TEST(ScoreScale, AnEmptyOrSingleItemIndexClampsTheCosine) {
  const auto index = random_index(1, 8, 1);
  const auto scale = ScoreScale::measure(*index);
  EXPECT_FALSE(scale.measured());
  EXPECT_FLOAT_EQ(scale.similarity(0.4f), 0.4f);
  EXPECT_FLOAT_EQ(scale.similarity(-0.2f), 0.0f);
  EXPECT_FLOAT_EQ(scale.similarity(1.3f), 1.0f);
}

TEST(ScoreScale, SimilarityIsTheShareOfTypicalNeighboursBeaten) {
  const auto index = random_index(600, 16, 2);
  const auto scale = ScoreScale::measure(*index);
  ASSERT_TRUE(scale.measured());
  EXPECT_EQ(scale.samples(), ScoreScale::kSample * ScoreScale::kNeighbours);
  EXPECT_FLOAT_EQ(scale.similarity(1.0f), 1.0f);   // an exact copy beats every neighbour
  EXPECT_FLOAT_EQ(scale.similarity(-1.0f), 0.0f);  // the opposite beats none
  // Random 16-d unit vectors: nearest-neighbour cosines lie well inside (0, 1), so the scale
  // spreads them; monotone and without jumps.
  float previous = 0;
  size_t distinct = 0;
  for (float c = -0.2f; c <= 1.0f; c += 0.01f) {
    const float s = scale.similarity(c);
    EXPECT_GE(s, previous);
    EXPECT_LE(s - previous, 0.2f);
    distinct += s > previous;
    previous = s;
  }
  EXPECT_GT(distinct, 10u);
}

TEST(ScoreScale, TheMedianNeighbourScoresAboutOneHalf) {
  const auto index = random_index(400, 12, 3);
  const auto scale = ScoreScale::measure(*index);
  // The 6th of 12 neighbours of the first item: about the middle of the distribution.
  SearchParams p;
  p.k = 13;
  std::vector<float> scores;
  for (int64_t id : {100, 150, 220, 390}) {
    const auto v = index->vector(id);
    const auto neighbours = index->search(1, v.data(), p);
    for (const auto& n : neighbours.front())
      if (n.id != id) scores.push_back(scale.similarity(n.score));
  }
  std::sort(scores.begin(), scores.end());
  EXPECT_NEAR(scores[scores.size() / 2], 0.5f, 0.2f);
}

// Searches that send a transformed query (a trained version's ranking weights) are measured
// with the same transform: scaled queries give scaled scores, and the scale follows.
TEST(ScoreScale, TheScaleMeasuresTheScoresTheSearchesRankBy) {
  const auto index = random_index(300, 16, 4);
  const auto plain = ScoreScale::measure(*index);
  const auto halved = ScoreScale::measure(*index, [](const std::vector<float>& v) {
    std::vector<float> q(v);
    for (float& x : q) x *= 0.5f;
    return q;
  });
  ASSERT_TRUE(halved.measured());
  for (float c : {0.1f, 0.2f, 0.3f, 0.4f})
    EXPECT_NEAR(halved.similarity(c * 0.5f), plain.similarity(c), 1e-4) << c;
}

}  // namespace
}  // namespace lookalike

#include "index/score_scale.h"

#include <algorithm>
#include <cmath>

namespace lookalike {

ScoreScale ScoreScale::measure(const VectorIndex& index, const QueryOf& query_of) {
  ScoreScale scale;
  const auto ids = index.ids();
  if (ids.size() < 2) return scale;
  const size_t sample = std::min(kSample, ids.size());
  SearchParams params;
  params.k = kNeighbours + 1;  // the item itself comes back too
  // One batched search: FAISS answers many queries with one matrix product, which at start-up
  // is ten times faster than one search per sampled item.
  std::vector<int64_t> sampled(sample);
  std::vector<float> queries;
  for (size_t i = 0; i < sample; ++i) {
    sampled[i] = ids[i * ids.size() / sample];
    const auto vector = query_of ? query_of(index.vector(sampled[i])) : index.vector(sampled[i]);
    queries.insert(queries.end(), vector.begin(), vector.end());
  }
  const auto neighbours = index.search(sample, queries.data(), params);
  for (size_t i = 0; i < sample; ++i) {
    for (const auto& n : neighbours[i]) {
      if (n.id != sampled[i]) scale.sorted_.push_back(n.score);
    }
  }
  std::sort(scale.sorted_.begin(), scale.sorted_.end());
  scale.measured_on_ = ids.size();
  return scale;
}

std::optional<ScoreScale> ScoreScale::restore(std::vector<float> values, size_t measured_on) {
  const bool finite = std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
  if (values.empty() || values.size() > kSample * kNeighbours || !finite ||
      !std::is_sorted(values.begin(), values.end()))
    return std::nullopt;
  ScoreScale scale;
  scale.sorted_ = std::move(values);
  scale.measured_on_ = measured_on;
  return scale;
}

float ScoreScale::similarity(float cosine) const {
  if (sorted_.empty()) return std::clamp(cosine, 0.0f, 1.0f);
  const auto above = std::upper_bound(sorted_.begin(), sorted_.end(), cosine);
  const size_t below = static_cast<size_t>(above - sorted_.begin());
  const auto n = static_cast<float>(sorted_.size());
  if (below == 0 || below == sorted_.size()) return static_cast<float>(below) / n;
  // The empirical CDF, linear between the measured values around `cosine` (they differ: one is
  // <= cosine, the next > cosine), so close cosines get close similarities.
  const float lo = *(above - 1), hi = *above;
  return (static_cast<float>(below) + (cosine - lo) / (hi - lo)) / n;
}

}  // namespace lookalike

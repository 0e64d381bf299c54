// Readable similarity: a raw cosine mapped through the catalog's own distribution of
// nearest-neighbour similarities. 0.95 means the hit is closer to the query than 95% of the
// 12 nearest neighbours of a typical catalog item are to it, so scores spread over the useful
// range instead of every good result reading "97%".
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "index/vector_index.h"

namespace lookalike {

class ScoreScale {
 public:
  static constexpr size_t kSample = 256;     // catalog items whose neighbours are measured
  static constexpr size_t kNeighbours = 12;  // neighbours per sampled item

  ScoreScale() = default;  // identity-like: a cosine clamped to 0..1
  // The query vector a search sends for a stored vector (when queries weigh parts of the index
  // vectors differently from how they are stored).
  using QueryOf = std::function<std::vector<float>(const std::vector<float>&)>;

  // Measures on up to kSample items spread evenly over the index (deterministic). Costs
  // kSample searches; needs at least two vectors, else the identity-like scale. `query_of`
  // (default: the stored vector itself) makes the scores those the searches will rank by.
  static ScoreScale measure(const VectorIndex& index, const QueryOf& query_of = {});

  // A scale measured before (values(), measured_on()), kept beside an index snapshot so that a
  // start need not measure again; nullopt unless the values are finite, ascending and as many
  // as a measure gives at most.
  static std::optional<ScoreScale> restore(std::vector<float> values, size_t measured_on);

  // The share (0..1) of typical neighbour similarities below `cosine`, interpolated.
  float similarity(float cosine) const;
  bool measured() const { return !sorted_.empty(); }
  size_t samples() const { return sorted_.size(); }
  const std::vector<float>& values() const { return sorted_; }
  size_t measured_on() const { return measured_on_; }  // vectors in the index measured

 private:
  std::vector<float> sorted_;  // every measured neighbour similarity, ascending
  size_t measured_on_ = 0;
};

}  // namespace lookalike

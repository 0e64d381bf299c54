// The p-quantile of a sample by nearest rank (p in [0, 1]; 0 for an empty sample), as the
// benchmarks and timing tests report medians and tails.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace lookalike {

inline double percentile(std::vector<double> sample, double p) {
  if (sample.empty()) return 0;
  std::sort(sample.begin(), sample.end());
  return sample[std::min(sample.size() - 1, static_cast<size_t>(p * static_cast<double>(sample.size())))];
}

}  // namespace lookalike

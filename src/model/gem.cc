#include "model/gem.h"

#include <algorithm>
#include <cmath>

namespace lookalike {

void gem_pool(const float* map, size_t channels, size_t spatial, float p, float* out) {
  constexpr float kEps = 1e-6f;
  const bool cube = p == 3.f;  // the default; avoids std::pow in the hot loop
  for (size_t c = 0; c < channels; ++c) {
    const float* x = map + c * spatial;
    double sum = 0;
    for (size_t i = 0; i < spatial; ++i) {
      const float v = std::max(x[i], kEps);
      sum += cube ? double(v) * v * v : std::pow(double(v), double(p));
    }
    out[c] = static_cast<float>(std::pow(sum / double(spatial), 1.0 / double(p)));
  }
}

}  // namespace lookalike

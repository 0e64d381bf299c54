#pragma once

#include <cstddef>

namespace lookalike {

// Generalised-mean pooling of one CHW feature map (row-major, channels outermost):
//   out[c] = (mean over h,w of max(x, eps)^p)^(1/p).
// p = 1 is average pooling; larger p moves towards max pooling. `out` holds `channels` floats.
void gem_pool(const float* map, size_t channels, size_t spatial, float p, float* out);

}  // namespace lookalike

#pragma once

#include <cstddef>

namespace lookalike {

// Scales v[0..n) to unit L2 norm (left as is when the norm is 0). Returns the original norm.
float l2_normalise(float* v, size_t n);

// Inner product of two n-float vectors.
float dot(const float* a, const float* b, size_t n);

}  // namespace lookalike

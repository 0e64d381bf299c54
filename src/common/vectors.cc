#include "common/vectors.h"

#include <cmath>

namespace lookalike {

float l2_normalise(float* v, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += double(v[i]) * v[i];
  const float norm = static_cast<float>(std::sqrt(sum));
  if (norm > 0) {
    for (size_t i = 0; i < n; ++i) v[i] /= norm;
  }
  return norm;
}

float dot(const float* a, const float* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += double(a[i]) * b[i];
  return static_cast<float>(sum);
}

}  // namespace lookalike

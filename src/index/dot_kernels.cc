#include "index/dot_kernels.h"

#include "common/vectors.h"

#include <faiss/utils/fp16.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace lookalike {
namespace {

float dot_portable(const float* query, const uint16_t* row, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += query[i] * faiss::decode_fp16(row[i]);
  return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) float horizontal_sum(__m256 v) {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)));
}

__attribute__((target("avx2,fma,f16c"))) float dot_f16c(const float* query, const uint16_t* row, size_t n) {
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();  // two chains hide the FMA latency
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 r0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256 r1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i + 8)));
    a = _mm256_fmadd_ps(_mm256_loadu_ps(query + i), r0, a);
    b = _mm256_fmadd_ps(_mm256_loadu_ps(query + i + 8), r1, b);
  }
  return horizontal_sum(_mm256_add_ps(a, b)) + dot_portable(query + i, row + i, n - i);
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* x, const float* y, size_t n) {
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a);
    b = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), b);
  }
  return horizontal_sum(_mm256_add_ps(a, b)) + dot(x + i, y + i, n - i);
}

bool cpu_has_f16c() {
  __builtin_cpu_init();  // may run before libgcc's own constructor has filled in the CPU model
  // F16C from CPUID itself: clang (the fuzz build) does not know __builtin_cpu_supports("f16c").
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}
#else
bool cpu_has_f16c() {
  return false;
}
float dot_f16c(const float* query, const uint16_t* row, size_t n) {
  return dot_portable(query, row, n);
}
float dot_avx2(const float* x, const float* y, size_t n) {
  return dot(x, y, n);
}
#endif

}  // namespace

bool dot_kernels_vectorised() {
  static const bool vectorised = cpu_has_f16c();
  return vectorised;
}

float dot_float16(const float* query, const uint16_t* row, size_t n) {
  return dot_kernels_vectorised() ? dot_f16c(query, row, n) : dot_portable(query, row, n);
}

float dot_float32(const float* a, const float* b, size_t n) {
  return dot_kernels_vectorised() ? dot_avx2(a, b, n) : dot(a, b, n);
}

}  // namespace lookalike

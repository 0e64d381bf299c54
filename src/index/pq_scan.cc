#include "index/pq_scan.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace lookalike {
namespace {

constexpr size_t kCodesInFlight = 4;
// How many codes ahead of the ones being scored are fetched into the cache. A code is one cache
// line (64 bytes at 64 sub-quantizers); the lists of a 1M-item index live in DRAM, and a perf
// profile without this put half of the scan's samples on the loads of the codes themselves.
constexpr size_t kPrefetchCodes = 16;

// The 8 table entries of one code word (sub-quantizers j..j+7, byte b of the little-endian word
// is sub-quantizer j + b; t points at row j), summed as a tree so that they do not wait on each
// other.
inline float word_distance(const float* t, uint64_t w) {
  const float a = t[w & 0xff] + t[256 + ((w >> 8) & 0xff)];
  const float b = t[512 + ((w >> 16) & 0xff)] + t[768 + ((w >> 24) & 0xff)];
  const float c = t[1024 + ((w >> 32) & 0xff)] + t[1280 + ((w >> 40) & 0xff)];
  const float d = t[1536 + ((w >> 48) & 0xff)] + t[1792 + (w >> 56)];
  return (a + b) + (c + d);
}

template <size_t kCodes>
inline void code_distances(const float* table, size_t m, const uint8_t* const* code, float* out) {
  float sum[kCodes] = {};
  for (size_t j = 0; j < m; j += 8) {
    const float* t = table + j * 256;
    for (size_t c = 0; c < kCodes; ++c) {
      uint64_t w;
      std::memcpy(&w, code[c] + j, sizeof w);
      sum[c] += word_distance(t, w);
    }
  }
  for (size_t c = 0; c < kCodes; ++c) out[c] = sum[c];
}

void pq4_block_portable(const uint8_t* table, size_t m, const uint8_t* block, uint16_t* out) {
  for (size_t r = 0; r < kPq4BlockRows; ++r) {
    uint32_t sum = 0;
    for (size_t sq = 0; sq < m; ++sq)
      sum += table[(sq / 2) * 32 + (sq & 1) * 16 + pq4_packed_code(block, m, r, sq)];
    out[r] = static_cast<uint16_t>(sum);
  }
}

#if defined(__x86_64__)
// One 32-byte load holds a pair of sub-quantizers' codes for 32 rows; one shuffle of the pair's
// tables (even sub-quantizer in the low 128-bit lane, odd in the high one) looks up 16 rows per
// lane for the low nibbles and one more for the high nibbles. The looked-up bytes are summed as
// 16-bit lanes: each lane holds rows t (low byte) and t + 8 (high byte), so one accumulator
// adds both (the low byte's sum plus 256 times the high byte's, modulo 2^16) and a second adds
// the high bytes alone, from which the low sum is recovered at the end. Sums stay below 2^16: a
// lane adds one byte per pair, at most 128 pairs of 255, and the two lanes' sums at most 65,280.
__attribute__((target("avx2"))) void pq4_block_avx2(const uint8_t* table, size_t m, const uint8_t* block,
                                                    uint16_t* out) {
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  __m256i low_both = _mm256_setzero_si256(), low_high = _mm256_setzero_si256();
  __m256i high_both = _mm256_setzero_si256(), high_high = _mm256_setzero_si256();
  for (size_t pair = 0; pair < m / 2; ++pair) {
    const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + pair * 32));
    const __m256i lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + pair * 32));
    const __m256i low = _mm256_shuffle_epi8(lut, _mm256_and_si256(codes, nibble));
    const __m256i high = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(codes, 4), nibble));
    low_both = _mm256_add_epi16(low_both, low);
    low_high = _mm256_add_epi16(low_high, _mm256_srli_epi16(low, 8));
    high_both = _mm256_add_epi16(high_both, high);
    high_high = _mm256_add_epi16(high_high, _mm256_srli_epi16(high, 8));
  }
  const __m256i rows[4] = {_mm256_sub_epi16(low_both, _mm256_slli_epi16(low_high, 8)), low_high,
                           _mm256_sub_epi16(high_both, _mm256_slli_epi16(high_high, 8)), high_high};
  for (size_t i = 0; i < 4; ++i) {  // rows 8i..8i+7: the even sub-quantizers' lane plus the odd's
    const __m128i sum = _mm_add_epi16(_mm256_castsi256_si128(rows[i]), _mm256_extracti128_si256(rows[i], 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8 * i), sum);
  }
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#else
void pq4_block_avx2(const uint8_t* table, size_t m, const uint8_t* block, uint16_t* out) {
  pq4_block_portable(table, m, block, out);
}
bool cpu_has_avx2() {
  return false;
}
#endif

}  // namespace

bool pq4_vectorised() {
  static const bool vectorised = cpu_has_avx2();
  return vectorised;
}

void pq4_quantize_table(const float* table, size_t m, uint8_t* packed) {
  assert(m % 2 == 0);
  constexpr size_t kCodes = 16;
  std::vector<float> minimum(m);
  float widest = 0.0f;
  for (size_t sq = 0; sq < m; ++sq) {
    const float* row = table + sq * kCodes;
    minimum[sq] = *std::min_element(row, row + kCodes);
    widest = std::max(widest, *std::max_element(row, row + kCodes) - minimum[sq]);
  }
  const float scale = widest > 0.0f ? 255.0f / widest : 0.0f;
  for (size_t sq = 0; sq < m; ++sq) {
    uint8_t* into = packed + (sq / 2) * 32 + (sq & 1) * 16;
    for (size_t k = 0; k < kCodes; ++k) {
      const float step = std::round((table[sq * kCodes + k] - minimum[sq]) * scale);
      into[k] = static_cast<uint8_t>(std::clamp(step, 0.0f, 255.0f));
    }
  }
}

void pq4_distances(const uint8_t* packed, size_t m, const uint8_t* codes, size_t blocks, uint16_t* out) {
  assert(m % 2 == 0 && m <= 256);
  const size_t block_bytes = m * 16;
  const bool vectorised = pq4_vectorised();
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = codes + b * block_bytes;
    if (b + 1 < blocks) {
      for (size_t line = 0; line < block_bytes; line += 64) __builtin_prefetch(block + block_bytes + line);
    }
    if (vectorised) {
      pq4_block_avx2(packed, m, block, out + b * kPq4BlockRows);
    } else {
      pq4_block_portable(packed, m, block, out + b * kPq4BlockRows);
    }
  }
}

void pq4_distances_portable(const uint8_t* packed, size_t m, const uint8_t* codes, size_t blocks,
                            uint16_t* out) {
  for (size_t b = 0; b < blocks; ++b)
    pq4_block_portable(packed, m, codes + b * m * 16, out + b * kPq4BlockRows);
}

void pq8_distances(const float* table, size_t m, const uint8_t* codes, const uint32_t* rows, size_t n,
                   float* out) {
  assert(m % 8 == 0);
  const uint8_t* code[kCodesInFlight];
  size_t i = 0;
  for (; i + kCodesInFlight <= n; i += kCodesInFlight) {
    for (size_t c = 0; c < kCodesInFlight; ++c) {
      code[c] = codes + (rows ? rows[i + c] : i + c) * m;
      const size_t ahead = i + c + kPrefetchCodes;
      if (ahead < n) __builtin_prefetch(codes + (rows ? rows[ahead] : ahead) * m);
    }
    code_distances<kCodesInFlight>(table, m, code, out + i);
  }
  for (; i < n; ++i) {
    code[0] = codes + (rows ? rows[i] : i) * m;
    code_distances<1>(table, m, code, out + i);
  }
}

}  // namespace lookalike

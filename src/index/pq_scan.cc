#include "index/pq_scan.h"

#include <cassert>
#include <cstring>

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

}  // namespace

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

// Wall-clock time as the catalog records it: unix seconds, whole (items, model versions) or
// fractional (activity reports, which other processes compare with their own clock); and
// elapsed time on the monotonic clock, for timings.
#pragma once

#include <chrono>
#include <cstdint>

namespace lookalike {

inline double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Milliseconds since `start` on the steady clock (timings in logs, answers and benchmarks).
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace lookalike

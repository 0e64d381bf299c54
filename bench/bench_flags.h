// Command-line checks shared by the benchmarks that read "--flag value" pairs by hand.
#pragma once

#include <cstdio>

namespace lookalike::bench {

// False, after saying so on stderr, when the last flag has no value: the pairwise loops would
// otherwise ignore it silently (`bench_engine --help` ran the whole bench).
inline bool every_flag_has_a_value(int argc, char** argv) {
  if (argc % 2 == 1) return true;
  std::fprintf(stderr, "%s: every flag takes a value; %s has none\n", argv[0], argv[argc - 1]);
  return false;
}

}  // namespace lookalike::bench

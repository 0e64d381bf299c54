// Running a shell command from a benchmark (scripts/postgres.sh, scripts/cluster.sh, lookalike).
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>

namespace lookalike::bench {

// Runs `command` with /bin/sh and returns its standard output; throws, with that output, when
// it exits non-zero.
inline std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  if (::pclose(pipe) != 0) throw std::runtime_error(command + " failed:\n" + out);
  return out;
}

}  // namespace lookalike::bench

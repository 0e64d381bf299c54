#pragma once

#include <string>

namespace CLI {
class App;
}

namespace lookalike {

struct GlobalOptions {
  std::string data_dir = "lookalike-data";
  std::string model_manifest;
  int threads = 0;
  std::string engine;              // "dnnl" / "opencv"; empty = the model manifest's (dnnl)
  std::string precision = "auto";  // "auto" / "fp32" / "int8"
  bool verbose = false;
};

// Adds every subcommand to `app`; each runs from its callback and exits the process with its
// status (0 ok, 1 error, 2 usage, 130 interrupted).
void register_commands(CLI::App& app, const GlobalOptions& global);

}  // namespace lookalike

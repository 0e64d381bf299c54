#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace lookalike {

struct CatalogOptions;

struct GlobalOptions {
  std::string data_dir = "lookalike-data";
  std::string store;  // catalog store: a postgresql:// URL, else DATA/catalog.sqlite
  std::string model_manifest;
  int threads = 0;
  std::string engine;              // "dnnl" / "opencv"; empty = the model manifest's (dnnl)
  std::string precision = "auto";  // "auto" / "fp32" / "int8"
  bool verbose = false;
};

// Adds every subcommand to `app`; each runs from its callback and exits the process with its
// status (0 ok, 1 error, 2 usage, 130 interrupted).
void register_commands(CLI::App& app, const GlobalOptions& global);

// For the commands' own files (cli/*_command.cc):
// The catalog options the global flags give.
CatalogOptions catalog_options(const GlobalOptions& g);
// Runs a command body, turning errors into a message and an exit status; never returns.
[[noreturn]] void run(const GlobalOptions& g, const std::function<int()>& body);
// Set by the first Ctrl-C or SIGTERM once catch_interrupts() ran; long commands stop after
// their current step and keep what they finished.
extern std::atomic<bool> g_interrupted;
void catch_interrupts();

void add_recommend(CLI::App& app, const GlobalOptions& g);   // cli/recommend_command.cc
void add_duplicates(CLI::App& app, const GlobalOptions& g);  // cli/duplicates_command.cc
void add_worker(CLI::App& app, const GlobalOptions& g);      // cli/worker_command.cc
void add_status(CLI::App& app, const GlobalOptions& g);      // cli/worker_command.cc

}  // namespace lookalike

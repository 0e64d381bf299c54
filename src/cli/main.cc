// lookalike [--data DIR] COMMAND ...  — the command-line front end of the engine.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <opencv2/core/utility.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "common/allocator.h"
#include "common/error.h"

namespace {

// CLI11 reports an unknown command only as "A subcommand is required"; name it instead.
std::optional<std::string> unknown_command(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--data" || arg == "--store" || arg == "--model" || arg == "--threads" || arg == "--engine" ||
        arg == "--precision") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    for (const auto* sub : app.get_subcommands({})) {
      if (sub->get_name() == arg) return std::nullopt;
    }
    return arg;
  }
  return std::nullopt;
}

// libgomp (oneDNN's thread runtime) reads its wait policy once, when it is loaded, before
// main. Its default spins idle threads for up to 300,000 rounds after every parallel region,
// which made two-thread forwards 4x slower whenever another process or forward wanted the
// cores; the passive policy (no spin) pays a thread wake-up between a forward's layers. A short
// spin measured best (docs/benchmarks.md: the int8 import of 300 photos 63-67 -> 73-75
// images/s against passive; beside a busy process, the server faster than with either). So the
// process starts itself again with that spin, unless the caller chose a policy or a spin count.
void use_short_openmp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  // The binary's real path, not /proc/self/exe: the process name comes from the path's last
  // part, and `ps`, `top` and `pkill lookalike` should keep seeing "lookalike".
  std::error_code error;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) return;  // no /proc: carry on with libgomp's default policy
  ::setenv("GOMP_SPINCOUNT", "20000", 1);
  ::execv(self.c_str(), argv);
  ::unsetenv("GOMP_SPINCOUNT");  // exec failed: carry on with libgomp's default policy
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lookalike;
  use_short_openmp_spin(argv);
  tune_allocator_for_large_batches();
  CLI::App app{"Lookalike: visually similar product search over a catalog of photos"};
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--data", global.data_dir, "Data directory (catalog database, index, stored photos)")
      ->capture_default_str();
  app.add_option("--store", global.store,
                 "Catalog store: postgresql://USER[:PASSWORD]@HOST:PORT/DB (a PostgreSQL database) "
                 "instead of DATA/catalog.sqlite; photos, feature maps and index snapshots stay in "
                 "--data")
      ->envname("LOOKALIKE_STORE")
      // Child processes (the background training) find it in their environment, not in their
      // argv, which `ps` shows to every user (the URL may hold a password). Set while parsing,
      // before any thread is started.
      ->each([](const std::string& store) { ::setenv("LOOKALIKE_STORE", store.c_str(), 1); });
  app.add_option("--model", global.model_manifest,
                 "Model manifest JSON (default: $LOOKALIKE_MODEL or the build's)");
  app.add_option("--threads", global.threads, "CPU threads for the CNN (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--engine", global.engine,
                 "Inference engine: dnnl (oneDNN, the default) or opencv (OpenCV DNN)")
      ->check(CLI::IsMember({"dnnl", "opencv"}));
  app.add_option("--precision", global.precision,
                 "CNN arithmetic: int8 (calibrated once on the catalog's own photos), fp32, or auto "
                 "(int8 where the CPU has VNNI, else fp32)")
      ->check(CLI::IsMember({"auto", "fp32", "int8"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Log more");
  register_commands(app, global);
  if (const auto unknown = unknown_command(app, argc, argv)) {
    std::fprintf(stderr, "lookalike: error: unknown command '%s'; run `lookalike --help` for the list\n",
                 unknown->c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}

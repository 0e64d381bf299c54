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

// Two runtime settings are read once, when the process starts, before main, so the process
// starts itself again with them set (unless the caller set them):
// - libgomp (oneDNN's thread runtime) spins idle threads for up to 300,000 rounds after every
//   parallel region by default, which made two-thread forwards 4x slower whenever another process
//   or forward wanted the cores; the passive policy (no spin) pays a thread wake-up between a
//   forward's layers. A short spin measured best (docs/benchmarks.md: the int8 import of 300
//   photos 63-67 -> 73-75 images/s against passive; beside a busy process, the server faster
//   than with either). Skipped when OMP_WAIT_POLICY or GOMP_SPINCOUNT is set.
// - glibc's malloc asks for transparent huge pages (glibc.malloc.hugetlb=1) where the machine
//   leaves them to madvise, Debian's default: a 1M-item index snapshot (2.2 GB) then loaded in
//   2.7-3.4 s instead of 23-29 s of 4 KB page faults (docs/benchmarks.md; searches were not
//   faster). Skipped when GLIBC_TUNABLES is set.
void restart_with_runtime_settings(char** argv) {
  const bool spin = std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr;
  const bool huge_pages = std::getenv("GLIBC_TUNABLES") == nullptr;
  if (!spin && !huge_pages) return;
  // The binary's real path, not /proc/self/exe: the process name comes from the path's last
  // part, and `ps`, `top` and `pkill lookalike` should keep seeing "lookalike".
  std::error_code error;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", error).string();
  if (error) return;  // no /proc: carry on with the runtimes' defaults
  if (spin) ::setenv("GOMP_SPINCOUNT", "20000", 1);
  if (huge_pages) ::setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1);
  ::execv(self.c_str(), argv);
  // exec failed: carry on with the runtimes' defaults
  if (spin) ::unsetenv("GOMP_SPINCOUNT");
  if (huge_pages) ::unsetenv("GLIBC_TUNABLES");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lookalike;
  restart_with_runtime_settings(argv);
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

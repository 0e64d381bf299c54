// lookalike [--data DIR] COMMAND ...  — the command-line front end of the engine.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <opencv2/core/utility.hpp>

#include "cli/commands.h"
#include "common/error.h"

int main(int argc, char** argv) {
  using namespace lookalike;
  CLI::App app{"Lookalike: visually similar product search over a catalog of photos"};
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--data", global.data_dir, "Data directory (catalog database, index, stored photos)")
      ->capture_default_str();
  app.add_option("--model", global.model_manifest, "Model manifest JSON (default: $LOOKALIKE_MODEL or the build's)");
  app.add_option("--threads", global.threads, "CPU threads for the CNN (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "Log more");
  register_commands(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}

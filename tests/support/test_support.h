// Shared helpers for the test suite: where the sample catalog and the converted model are,
// temporary directories, and running the real `lookalike` binary.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

namespace lookalike::testing {

// ../shared/datasets/fashion6-dev next to the repository (or $LOOKALIKE_DATASET); empty if absent.
std::string dataset_dir();

// True under CI=true, where a missing sample catalog must fail the run rather than skip.
bool dataset_required();

// Skips the current test with a clear message when the sample catalog is absent (CTest marks
// such a test "Not Run" through SKIP_REGULAR_EXPRESSION on that message); under CI=true the
// absence fails the test instead.
#define LOOKALIKE_REQUIRE_DATASET()                                                                    \
  do {                                                                                                 \
    if (::lookalike::testing::dataset_dir().empty()) {                                                 \
      if (::lookalike::testing::dataset_required())                                                    \
        FAIL() << "sample catalog ../shared/datasets/fashion6-dev is absent, and CI=true requires it"; \
      GTEST_SKIP() << "sample catalog ../shared/datasets/fashion6-dev is absent; skipping this test";  \
    }                                                                                                  \
  } while (0)

// The converted model manifest (models/inception_v3_gem.json); tests fail if it is missing,
// because the test command converts it first.
std::string model_manifest();
std::string full_model_manifest();

// Path of the built `lookalike` binary.
std::string lookalike_binary();

// A fresh directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Makes a folder of category sub-folders with symlinks to the first `per_category` photos
// of each sample category (sorted by number), skipping `skip` photos first.
void make_subset(const std::filesystem::path& into, size_t per_category, size_t skip = 0);

struct ProcessResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};
// Runs the binary with arguments, waits, captures output.
ProcessResult run_lookalike(const std::vector<std::string>& args);
// Starts the binary without waiting; stdout/stderr go to the given files. Returns the pid.
int start_lookalike(const std::vector<std::string>& args, const std::string& out_path,
                    const std::string& err_path, const std::vector<std::string>& extra_env = {});
// Waits for a started process; returns its exit status (128 + signal when killed).
int wait_process(int pid);

// A search's results as (id, score), best first: from `search --json` output or an API answer
// (empty when it holds none).
using Ranking = std::vector<std::pair<std::string, double>>;
Ranking ranking_of(const std::string& search_json);
// `lookalike CATALOG... search IMAGE --k 8 --category all --json`, where CATALOG are the global
// options naming the catalog (--data DIR, --store URL).
Ranking ranked(const std::vector<std::string>& catalog, const std::string& image);

// n x d row-major Gaussian vectors, each L2-normalised, from `seed`.
std::vector<float> random_unit_vectors(size_t n, size_t d, uint32_t seed);

void write_bytes(const std::filesystem::path& path, const std::string& bytes);
std::string read_bytes(const std::filesystem::path& path);

}  // namespace lookalike::testing

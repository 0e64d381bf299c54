#include "support/test_support.h"

#include "common/vectors.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

extern char** environ;

namespace lookalike::testing {
namespace fs = std::filesystem;

std::string dataset_dir() {
  if (const char* env = std::getenv("LOOKALIKE_DATASET"); env && *env)
    return fs::is_directory(env) ? env : "";
  const fs::path p = fs::path(LOOKALIKE_SOURCE_DIR) / ".." / "shared" / "datasets" / "fashion6-dev";
  return fs::is_directory(p) ? fs::canonical(p).string() : "";
}

bool dataset_required() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string model_manifest() {
  if (const char* env = std::getenv("LOOKALIKE_MODEL"); env && *env) return env;
  return (fs::path(LOOKALIKE_SOURCE_DIR) / "models" / "inception_v3_gem.json").string();
}

std::string full_model_manifest() {
  return (fs::path(model_manifest()).parent_path() / "inception_v3_full.json").string();
}

std::string lookalike_binary() {
  return LOOKALIKE_BINARY;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("lookalike-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void make_subset(const fs::path& into, size_t per_category, size_t skip) {
  const fs::path root = dataset_dir();
  for (const auto& dir : fs::directory_iterator(root)) {
    if (!dir.is_directory()) continue;
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(dir.path())) files.push_back(f.path());
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
      const auto na = std::stol(a.stem().string()), nb = std::stol(b.stem().string());
      return na < nb;
    });
    const fs::path target = into / dir.path().filename();
    fs::create_directories(target);
    for (size_t i = skip; i < std::min(files.size(), skip + per_category); ++i) {
      fs::create_symlink(files[i], target / files[i].filename());
    }
  }
}

int start_lookalike(const std::vector<std::string>& args, const std::string& out_path,
                    const std::string& err_path, const std::vector<std::string>& extra_env) {
  std::vector<std::string> argv_storage{lookalike_binary()};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage(extra_env);
  for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
  std::vector<char*> env;
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int wait_process(int pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ProcessResult run_lookalike(const std::vector<std::string>& args) {
  TempDir io;
  const std::string out_path = (io.path() / "out").string(), err_path = (io.path() / "err").string();
  ProcessResult result;
  const int pid = start_lookalike(args, out_path, err_path);
  if (pid < 0) {
    result.err = "cannot start " + lookalike_binary();
    return result;
  }
  result.status = wait_process(pid);
  result.out = read_bytes(out_path);
  result.err = read_bytes(err_path);
  return result;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<float> random_unit_vectors(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n * d);
  for (auto& x : v) x = g(rng);
  for (size_t i = 0; i < n; ++i) l2_normalise(v.data() + i * d, d);
  return v;
}

Ranking ranking_of(const std::string& search_json) {
  Ranking out;
  const auto doc = nlohmann::json::parse(search_json, nullptr, false);
  if (doc.is_object() && doc.contains("results")) {
    for (const auto& hit : doc["results"]) out.emplace_back(hit["id"], hit["score"]);
  }
  return out;
}

Ranking ranked(const std::vector<std::string>& catalog, const std::string& image) {
  std::vector<std::string> args = catalog;
  args.insert(args.end(), {"search", image, "--k", "8", "--category", "all", "--json"});
  const auto r = run_lookalike(args);
  EXPECT_EQ(r.status, 0) << r.err;
  return ranking_of(r.out);
}

}  // namespace lookalike::testing

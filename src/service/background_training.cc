#include "service/background_training.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "service/catalog.h"

namespace lookalike {
namespace {

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

// Between fork and exec only async-signal-safe calls: the server's other threads may hold
// locks (malloc's included) that the child would never see released.
[[noreturn]] void exec_child(char* const* argv, int log_fd, int niceness) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the training belongs to the server: it ends with it
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  // The listening socket and the database must not outlive the server in the child.
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 65536; ++fd) ::close(fd);
  }
  [[maybe_unused]] const int priority = ::nice(niceness);
  ::execv(argv[0], argv);
  static const char kFailed[] = "lookalike: cannot start the background training\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kFailed, sizeof kFailed - 1);
  ::_exit(127);
}

}  // namespace

std::optional<std::string> head_training_due(const Catalog& catalog, size_t min_per_category) {
  const CatalogStats stats = catalog.stats();
  if (!stats.trained || stats.items == 0) return std::nullopt;
  size_t learnable = 0;
  for (const auto& c : stats.categories) learnable += c.count >= min_per_category;
  if (learnable < 2) return std::nullopt;
  const auto versions = catalog.versions();
  if (versions.empty()) return "the catalog has no trained head version yet";
  const auto& newest = versions.back();
  const size_t trained_on = newest.info.value("catalog_items", size_t{0});
  if (trained_on > 0 && stats.items >= trained_on + trained_on / 10) {
    return "the catalog grew from " + std::to_string(trained_on) + " to " + std::to_string(stats.items) +
           " items since version " + std::to_string(newest.version) + " was trained";
  }
  return std::nullopt;
}

BackgroundTraining::BackgroundTraining(const BackgroundTrainingOptions& options) {
  assert(!options.command.empty());
  std::vector<char*> argv;
  for (const auto& arg : options.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int log_fd = ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw io_error("cannot open the training log " + options.log_file, errno);
  pid_ = ::fork();
  if (pid_ == 0) exec_child(argv.data(), log_fd, options.niceness);
  const int fork_errno = errno;
  ::close(log_fd);
  if (pid_ < 0) throw io_error("cannot start the background training", fork_errno);
}

BackgroundTraining::~BackgroundTraining() {
  stop();
}

std::optional<int> BackgroundTraining::poll() {
  if (status_ || pid_ <= 0) return status_;
  int wait_status = 0;
  const pid_t r = ::waitpid(pid_, &wait_status, WNOHANG);
  if (r == pid_) status_ = exit_status(wait_status);
  return status_;
}

int BackgroundTraining::stop(std::chrono::milliseconds grace) {
  if (poll()) return *status_;
  if (pid_ <= 0) return 1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!poll() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!status_) {
    ::kill(pid_, SIGKILL);
    int wait_status = 0;
    if (::waitpid(pid_, &wait_status, 0) == pid_) status_ = exit_status(wait_status);
  }
  return status_.value_or(1);
}

}  // namespace lookalike

// `serve` trains the head in a child process (`lookalike train --head-only`) at a lower CPU
// priority, so that it answers from the frozen recipe at once and switches to the new version
// when the training activates it, the way it follows `lookalike model use`
// (Catalog::refresh_if_changed). The child publishes its progress (service/activity.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace lookalike {

class Catalog;

// Why the catalog should get a new head version now, or nothing when it should not: it is
// trained (the frozen recipe) and has at least two categories with `min_per_category` photos,
// and it has no head version yet, or it has grown by a tenth since the newest one was trained.
std::optional<std::string> head_training_due(const Catalog& catalog, size_t min_per_category);

struct BackgroundTrainingOptions {
  std::vector<std::string> command;  // argv; command[0] is the executable's path
  std::string log_file;              // the child's stdout and stderr, appended
  int niceness = 10;                 // added to the child's: queries keep the CPU first
};

class BackgroundTraining {
 public:
  // Starts the child. It keeps no descriptor of this process but its log (the server's
  // listening socket must close when the server does). Throws Error(kIoError) when it cannot.
  explicit BackgroundTraining(const BackgroundTrainingOptions& options);
  ~BackgroundTraining();  // stop()
  BackgroundTraining(const BackgroundTraining&) = delete;
  BackgroundTraining& operator=(const BackgroundTraining&) = delete;

  pid_t pid() const { return pid_; }
  // The child's exit status (128 + signal when killed) once it has ended; nothing while it runs.
  std::optional<int> poll();
  // SIGTERM (the training stops and keeps nothing), then SIGKILL after `grace` (still safe:
  // a version is stored in one transaction). Returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace lookalike

// What the long jobs on a catalog (an import, a training) are doing, for everyone else using
// it: each job publishes its phase, progress and ETA as DATA/activity/JOB.json, replaced whole
// at most once a second, so that a server on the same data directory can show it in
// /api/v1/stats and on its page while the job runs in another process.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lookalike {

struct Activity {
  std::string job;             // "import", "train"
  std::string state;           // "running", "finished", "failed", or "stopped" (its process is gone)
  std::string phase;           // what it is doing now, e.g. "epoch 3/12"
  size_t done = 0, total = 0;  // progress of the phase; total 0 = not counted
  double eta_seconds = -1;     // time the phase still needs; < 0 = unknown
  std::string message;         // the outcome: a summary, or the error
  int64_t pid = 0;
  double started_at = 0, updated_at = 0;  // Unix seconds
};

nlohmann::json activity_json(const Activity& activity);

// The writer, owned by the job's process. Publishing never throws: a job must not fail
// because its progress could not be shown (a failure is logged once).
class ActivityReport {
 public:
  ActivityReport(const std::string& data_dir, std::string job);
  // Ends as "failed" (message "ended without finishing") unless finish() or fail() ran.
  ~ActivityReport();
  ActivityReport(const ActivityReport&) = delete;
  ActivityReport& operator=(const ActivityReport&) = delete;

  // A new phase is published at once; progress within a phase at most once a second.
  void progress(const std::string& phase, size_t done = 0, size_t total = 0, double eta_seconds = -1);
  void finish(const std::string& message);
  void fail(const std::string& message);
  void stop(const std::string& message);  // interrupted on purpose (Ctrl-C, SIGTERM)

 private:
  void end(const char* state, const std::string& message);
  void publish();

  std::string path_;
  Activity activity_;
  std::chrono::steady_clock::time_point last_publish_{};
  bool ended_ = false;
  bool warned_ = false;
};

// Publishes a "starting" report for a job that another process (`pid`) is about to run, so
// that readers see it from the moment it is launched; the job's own ActivityReport replaces it.
void announce_activity(const std::string& data_dir, const std::string& job, int64_t pid);

// Every job's latest report in DATA/activity, by job name. A "running" report whose process is
// gone (killed) reads as "stopped"; reports that ended more than `keep_ended` ago and files
// that cannot be parsed are left out.
std::vector<Activity> read_activities(const std::string& data_dir,
                                      std::chrono::seconds keep_ended = std::chrono::hours(1));

}  // namespace lookalike

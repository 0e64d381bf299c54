// Import/eval progress on stderr: a redrawn bar with count, rate and ETA on a terminal,
// plain lines every few seconds otherwise (logs, CI); also published to the job's activity
// report (service/activity.h) when given one.
#pragma once

#include <chrono>
#include <string>

namespace lookalike {

class ActivityReport;

class ProgressBar {
 public:
  // `activity` (not owned, may be null) must outlive the bar.
  explicit ProgressBar(std::string label, std::string unit = "img/s", ActivityReport* activity = nullptr);
  // counted / seconds is the rate; note is appended (e.g. the running loss).
  void update(size_t done, size_t total, double seconds, size_t counted, const std::string& note = {});
  void finish();

 private:
  std::string label_;
  std::string unit_;
  ActivityReport* activity_;
  bool tty_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace lookalike

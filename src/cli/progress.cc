#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "service/activity.h"

namespace lookalike {
namespace {

std::string duration(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::string unit, ActivityReport* activity)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      activity_(activity),
      tty_(::isatty(STDERR_FILENO)),
      last_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(size_t done, size_t total, double seconds, size_t counted, const std::string& note) {
  const double rate = seconds > 0 ? double(counted) / seconds : 0;
  const double eta = rate > 0 ? double(total - done) / rate : 0;
  if (activity_) activity_->progress(label_, done, total, rate > 0 ? eta : -1);
  const auto now = std::chrono::steady_clock::now();
  const bool due = now - last_ > (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000));
  if (!due && done < total) return;
  last_ = now;
  const int width = 30;
  const int filled = total ? static_cast<int>(double(width) * double(done) / double(total)) : width;
  if (tty_) {
    std::fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu  %.1f %s  %sETA %s ", label_.c_str(), filled,
                 "##############################", width - filled, "", done, total, rate, unit_.c_str(),
                 note.empty() ? "" : (note + "  ").c_str(), duration(eta).c_str());
    drawn_ = true;
  } else {
    std::fprintf(stderr, "%s: %zu/%zu (%.0f%%), %.1f %s, %sETA %s\n", label_.c_str(), done, total,
                 total ? 100.0 * double(done) / double(total) : 100.0, rate, unit_.c_str(),
                 note.empty() ? "" : (note + ", ").c_str(), duration(eta).c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_ && drawn_) std::fputc('\n', stderr);
}

}  // namespace lookalike

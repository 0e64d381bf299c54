#include "service/activity.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/files.h"

namespace lookalike {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxReportBytes = 64 << 10;

fs::path activity_directory(const std::string& data_dir) {
  return fs::path(data_dir) / "activity";
}

// A torn report would hide progress, never lose data: renamed into place without fsync.
// Returns why it could not be written, or nothing.
std::optional<std::string> write_activity(const std::string& path, const Activity& activity) {
  try {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    write_file_atomic(path, activity_json(activity).dump(), Durability::kRenameOnly);
    return std::nullopt;
  } catch (const std::exception& e) {
    return e.what();
  }
}

bool process_alive(int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

std::optional<Activity> parse_activity(const std::string& text) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("job") || !doc["job"].is_string()) return std::nullopt;
  try {
    Activity a;
    a.job = doc["job"].get<std::string>();
    a.state = doc.value("state", std::string("running"));
    a.phase = doc.value("phase", std::string());
    a.done = doc.value("done", size_t{0});
    a.total = doc.value("total", size_t{0});
    // (operator[] on a const object needs the key: value() for the fields that may be absent)
    const auto eta = doc.value("eta_seconds", nlohmann::json());
    a.eta_seconds = eta.is_number() ? eta.get<double>() : -1;
    a.message = doc.value("message", std::string());
    a.pid = doc.value("pid", int64_t{0});
    a.started_at = doc.value("started_at", 0.0);
    a.updated_at = doc.value("updated_at", 0.0);
    return a;
  } catch (const nlohmann::json::exception&) {  // a field of the wrong type: not one of ours
    return std::nullopt;
  }
}

}  // namespace

nlohmann::json activity_json(const Activity& a) {
  return {{"job", a.job},
          {"state", a.state},
          {"phase", a.phase},
          {"done", a.done},
          {"total", a.total},
          {"eta_seconds", a.eta_seconds >= 0 ? nlohmann::json(a.eta_seconds) : nlohmann::json(nullptr)},
          {"message", a.message},
          {"pid", a.pid},
          {"started_at", a.started_at},
          {"updated_at", a.updated_at}};
}

ActivityReport::ActivityReport(const std::string& data_dir, std::string job)
    : path_((activity_directory(data_dir) / (job + ".json")).string()) {
  activity_.job = std::move(job);
  activity_.state = "running";
  activity_.phase = "starting";
  activity_.pid = ::getpid();
  activity_.started_at = unix_time();
  publish();
}

ActivityReport::~ActivityReport() {
  if (!ended_) fail("ended without finishing");
}

void ActivityReport::progress(const std::string& phase, size_t done, size_t total, double eta_seconds) {
  const bool new_phase = phase != activity_.phase;
  activity_.phase = phase;
  activity_.done = done;
  activity_.total = total;
  activity_.eta_seconds = eta_seconds;
  const auto now = std::chrono::steady_clock::now();
  if (new_phase || (total > 0 && done == total) || now - last_publish_ >= std::chrono::seconds(1)) publish();
}

void ActivityReport::finish(const std::string& message) {
  end("finished", message);
}
void ActivityReport::fail(const std::string& message) {
  end("failed", message);
}
void ActivityReport::stop(const std::string& message) {
  end("stopped", message);
}

void ActivityReport::end(const char* state, const std::string& message) {
  activity_.state = state;
  activity_.message = message;
  activity_.eta_seconds = -1;
  ended_ = true;
  publish();
}

void ActivityReport::publish() {
  last_publish_ = std::chrono::steady_clock::now();
  activity_.updated_at = unix_time();
  const auto error = write_activity(path_, activity_);
  if (error && !warned_) spdlog::warn("cannot publish the {} progress: {}", activity_.job, *error);
  warned_ = warned_ || error.has_value();
}

void announce_activity(const std::string& data_dir, const std::string& job, int64_t pid) {
  Activity a;
  a.job = job;
  a.state = "running";
  a.phase = "starting";
  a.pid = pid;
  a.started_at = a.updated_at = unix_time();
  write_activity((activity_directory(data_dir) / (job + ".json")).string(), a);
}

std::vector<Activity> read_activities(const std::string& data_dir, std::chrono::seconds keep_ended) {
  std::vector<Activity> out;
  std::error_code ec;
  const double now = unix_time();
  for (const auto& entry : fs::directory_iterator(activity_directory(data_dir), ec)) {
    if (entry.path().extension() != ".json") continue;
    std::string text;
    try {
      text = read_file(entry.path().string(), kMaxReportBytes);
    } catch (const std::exception&) {
      continue;  // removed or replaced meanwhile
    }
    auto activity = parse_activity(text);
    if (!activity) continue;
    if (activity->state == "running" && !process_alive(activity->pid)) {
      activity->state = "stopped";
      activity->eta_seconds = -1;
      activity->message = "its process (pid " + std::to_string(activity->pid) + ") ended without finishing";
    }
    if (activity->state != "running" && now - activity->updated_at > double(keep_ended.count())) continue;
    out.push_back(std::move(*activity));
  }
  std::sort(out.begin(), out.end(), [](const Activity& a, const Activity& b) { return a.job < b.job; });
  return out;
}

}  // namespace lookalike

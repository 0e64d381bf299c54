// Long jobs' activity reports: what a server reads back from DATA/activity, including reports of
// killed processes, damaged files and old outcomes; and the background training's child process.
#include "service/activity.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "service/background_training.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

std::optional<Activity> find(const std::vector<Activity>& all, const std::string& job) {
  for (const auto& a : all)
    if (a.job == job) return a;
  return std::nullopt;
}

// A pid that belonged to a process which has ended and been reaped.
int64_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(ActivityReport, PublishesItsPhaseProgressAndOutcome) {
  testing::TempDir tmp;
  {
    ActivityReport report(tmp.str(), "train");
    auto a = find(read_activities(tmp.str()), "train");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->state, "running");
    EXPECT_EQ(a->phase, "starting");
    EXPECT_EQ(a->pid, ::getpid());
    report.progress("epoch 1/12", 3, 40, 90.5);
    a = find(read_activities(tmp.str()), "train");
    EXPECT_EQ(a->phase, "epoch 1/12");
    EXPECT_EQ(a->done, 3u);
    EXPECT_EQ(a->total, 40u);
    EXPECT_DOUBLE_EQ(a->eta_seconds, 90.5);
    // Within a phase, at most one write a second: the next count waits, the last one does not.
    report.progress("epoch 1/12", 4, 40, 80);
    EXPECT_EQ(find(read_activities(tmp.str()), "train")->done, 3u);
    report.progress("epoch 1/12", 40, 40, 0);
    EXPECT_EQ(find(read_activities(tmp.str()), "train")->done, 40u);
    report.finish("model version 1: head over 6 categories");
  }
  const auto a = find(read_activities(tmp.str()), "train");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, "finished");
  EXPECT_EQ(a->message, "model version 1: head over 6 categories");
  EXPECT_LT(a->eta_seconds, 0);
  const auto doc = activity_json(*a);
  EXPECT_TRUE(doc["eta_seconds"].is_null());
  EXPECT_EQ(doc["job"], "train");
}

TEST(ActivityReport, EndsAsFailedOrStoppedAndNeverThrows) {
  testing::TempDir tmp;
  { ActivityReport report(tmp.str(), "import"); }  // gone without an outcome
  EXPECT_EQ(find(read_activities(tmp.str()), "import")->state, "failed");
  EXPECT_EQ(find(read_activities(tmp.str()), "import")->message, "ended without finishing");
  {
    ActivityReport report(tmp.str(), "train");
    report.stop("training interrupted");
  }
  EXPECT_EQ(find(read_activities(tmp.str()), "train")->state, "stopped");
  // A data directory that cannot hold the report (a file stands where the folder should be):
  // the job goes on, nothing is thrown.
  testing::write_bytes(tmp.path() / "blocked", "x");
  EXPECT_NO_THROW({
    ActivityReport report((tmp.path() / "blocked").string(), "import");
    report.progress("importing photos", 1, 2);
    report.finish("done");
  });
  EXPECT_TRUE(read_activities((tmp.path() / "blocked").string()).empty());
  EXPECT_TRUE(read_activities((tmp.path() / "absent").string()).empty());
}

TEST(ActivityReport, AJobAnnouncedForAnotherProcessReadsAsRunningUntilThatProcessEnds) {
  testing::TempDir tmp;
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  announce_activity(tmp.str(), "train", child);
  auto a = find(read_activities(tmp.str()), "train");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, "running");
  EXPECT_EQ(a->phase, "starting");
  EXPECT_EQ(a->pid, child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(find(read_activities(tmp.str()), "train")->state, "stopped");
}

TEST(ReadActivities, AKilledJobReadsAsStoppedAndDamagedOrOldReportsAreLeftOut) {
  testing::TempDir tmp;
  const fs::path dir = tmp.path() / "activity";
  fs::create_directories(dir);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json killed{{"job", "train"},    {"state", "running"}, {"phase", "epoch 2/12"},
                        {"pid", dead_pid()}, {"updated_at", now},  {"done", 5},
                        {"total", 10},       {"eta_seconds", 30}};
  testing::write_bytes(dir / "train.json", killed.dump());
  nlohmann::json old{{"job", "import"}, {"state", "finished"}, {"pid", 1}, {"updated_at", now - 7200}};
  testing::write_bytes(dir / "import.json", old.dump());
  testing::write_bytes(dir / "garbage.json", "{not json");
  testing::write_bytes(dir / "wrong-types.json", R"({"job": "x", "done": "many"})");
  testing::write_bytes(dir / "not-ours.json", R"({"hello": 1})");
  testing::write_bytes(dir / "huge.json",
                       R"({"job": "huge", "message": ")" + std::string(100000, 'x') + "\"}");
  testing::write_bytes(dir / "train.log", "log lines, not a report");
  const auto all = read_activities(tmp.str());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].job, "train");
  EXPECT_EQ(all[0].state, "stopped");
  EXPECT_LT(all[0].eta_seconds, 0);
  EXPECT_NE(all[0].message.find("ended without finishing"), std::string::npos);
  // The old outcome is kept when asked for a longer memory.
  EXPECT_EQ(read_activities(tmp.str(), std::chrono::hours(3)).size(), 2u);
}

std::string run_child(const std::vector<std::string>& command, const testing::TempDir& tmp, int* status) {
  const std::string log = tmp.str() + "/child.log";
  fs::remove(log);
  BackgroundTraining child({command, log, 10});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!child.poll() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  *status = child.poll().value_or(-1);
  return testing::read_bytes(log);
}

TEST(BackgroundTraining, TheChildRunsNicerWithOnlyItsLogAndStopsOnRequest) {
  testing::TempDir tmp;
  // A descriptor this process holds open (like a listening socket) must not reach the child.
  const int opened = ::open("/dev/null", O_RDONLY);
  const int held = ::dup2(opened, 57);  // no FD_CLOEXEC; a number `ls` will not use itself
  ::close(opened);
  ASSERT_EQ(held, 57);
  int status = -1;
  const std::string out =
      run_child({"/bin/sh", "-c", "ls /proc/self/fd; echo nice=$(cut -d' ' -f19 /proc/self/stat); exit 3"},
                tmp, &status);
  ::close(held);
  EXPECT_EQ(status, 3);
  EXPECT_EQ(out.find("\n57\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\n2\n"), std::string::npos) << out;  // stderr (the log) is there
  const int own_nice = ::nice(0);
  EXPECT_NE(out.find("nice=" + std::to_string(std::min(19, own_nice + 10))), std::string::npos) << out;

  EXPECT_NE(run_child({"/nonexistent/lookalike"}, tmp, &status).find("cannot start the background training"),
            std::string::npos);
  EXPECT_EQ(status, 127);

  BackgroundTraining sleeper({{"/bin/sleep", "30"}, tmp.str() + "/sleep.log", 0});
  EXPECT_FALSE(sleeper.poll());
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(sleeper.stop(), 128 + SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(::kill(sleeper.pid(), 0), -1);  // reaped

  // A child that ignores SIGTERM is killed after the grace period.
  BackgroundTraining stubborn({{"/bin/sh", "-c", "trap '' TERM; sleep 30"}, tmp.str() + "/stubborn.log", 0});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the shell set its trap
  EXPECT_EQ(stubborn.stop(std::chrono::milliseconds(300)), 128 + SIGKILL);
}

}  // namespace
}  // namespace lookalike

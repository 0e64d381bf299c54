// The `lookalike` binary as a user runs it: every bad input gets a precise message and a
// non-zero exit, nothing stored before is lost, and kill -9 during an import is survivable.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;
using testing::run_lookalike;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::dataset_dir().empty()) return;
    dir_ = new testing::TempDir();
    testing::make_subset(dir_->path() / "photos", 5);  // 5 per category: enough to train the classifier
    const auto r = run_lookalike({"--data", data(), "import", (dir_->path() / "photos").string()});
    ASSERT_EQ(r.status, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override { LOOKALIKE_REQUIRE_DATASET(); }
  static std::string data() { return (dir_->path() / "data").string(); }
  static fs::path a_photo() { return *fs::directory_iterator(dir_->path() / "photos" / "coat"); }

  static void expect_failure(const std::vector<std::string>& args, const std::string& message) {
    const auto r = run_lookalike(args);
    EXPECT_NE(r.status, 0) << r.out;
    EXPECT_NE(r.err.find(message), std::string::npos) << "stderr: " << r.err;
  }

  static testing::TempDir* dir_;
};

testing::TempDir* CliTest::dir_ = nullptr;

TEST_F(CliTest, SearchPrintsRankedResultsAndJson) {
  const auto text =
      run_lookalike({"--data", data(), "search", fs::canonical(a_photo()).string(), "--k", "3"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("predicted category:"), std::string::npos);
  EXPECT_NE(text.out.find("timings: decode"), std::string::npos);
  const auto json = run_lookalike(
      {"--data", data(), "search", a_photo().string(), "--json", "--category", "all", "--no-flip-queries"});
  ASSERT_EQ(json.status, 0) << json.err;
  const auto doc = nlohmann::json::parse(json.out);
  ASSERT_EQ(doc["results"].size(), 12u);
  EXPECT_NEAR(doc["results"][0]["score"].get<double>(), 1.0, 1e-4);  // the photo itself
  for (const char* stage : {"decode", "model", "classify", "search", "total"})
    EXPECT_TRUE(doc["timings_ms"].contains(stage));
}

TEST_F(CliTest, InfoListAndEval) {
  const auto info = run_lookalike({"--data", data(), "info", "--json"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["items"], 30);
  const auto list = run_lookalike({"--data", data(), "list", "--category", "dress", "--json"});
  ASSERT_EQ(list.status, 0);
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 5);
  const auto eval = run_lookalike({"--data", data(), "eval", "--json"});
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto doc = nlohmann::json::parse(eval.out);
  for (const char* key : {"queries", "accuracy", "p_at_1", "p_at_10", "category_precision_at_12",
                          "duplicates_first", "confusion", "ms_per_query"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  EXPECT_EQ(doc["queries"], 30);
}

TEST_F(CliTest, MissingEmptyAndImagelessFolders) {
  testing::TempDir tmp;
  expect_failure({"--data", tmp.str() + "/d", "import", "/nonexistent/photos"},
                 "no such file or folder: /nonexistent/photos");
  fs::create_directories(tmp.path() / "empty");
  expect_failure({"--data", tmp.str() + "/d", "import", (tmp.path() / "empty").string()}, "holds no photos");
  testing::write_bytes(tmp.path() / "docs" / "a.txt", "x");
  expect_failure({"--data", tmp.str() + "/d", "import", (tmp.path() / "docs").string()},
                 "only 1 other files");
}

TEST_F(CliTest, AnImportOfOnlyBrokenPhotosFails) {
  testing::TempDir tmp;
  testing::write_bytes(tmp.path() / "p" / "coat" / "a.jpg", "not a jpeg");
  testing::write_bytes(tmp.path() / "p" / "coat" / "b.jpg", "");
  const auto r = run_lookalike({"--data", tmp.str() + "/d", "import", (tmp.path() / "p").string()});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("a.jpg: not an image"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("b.jpg: the file is empty"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("none of the 2 photos could be imported"), std::string::npos) << r.err;
}

TEST_F(CliTest, BadSearchInputs) {
  testing::TempDir tmp;
  const std::string photo = testing::read_bytes(a_photo());
  testing::write_bytes(tmp.path() / "empty.jpg", "");
  testing::write_bytes(tmp.path() / "text.jpg", "hello");
  testing::write_bytes(tmp.path() / "half.jpg", photo.substr(0, photo.size() / 2));
  expect_failure({"--data", data(), "search", (tmp.path() / "empty.jpg").string()},
                 "the file is empty (0 bytes)");
  expect_failure({"--data", data(), "search", (tmp.path() / "text.jpg").string()}, "not an image");
  expect_failure({"--data", data(), "search", (tmp.path() / "half.jpg").string()}, "truncated");
  expect_failure({"--data", data(), "search", (tmp.path() / "missing.jpg").string()}, "no such file");
  // A PNG whose header declares 30000x30000 pixels is refused before any pixel is decoded.
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\x00\x00\x00\x0dIHDR\x00\x00\x75\x30\x00\x00\x75\x30\x08\x02\x00\x00\x00", 21);
  testing::write_bytes(tmp.path() / "huge.png", png + std::string(64, '\0'));
  expect_failure({"--data", data(), "search", (tmp.path() / "huge.png").string()},
                 "30000x30000 is 900000000 pixels, over the limit of 40000000");
  expect_failure({"--data", data(), "search", a_photo().string(), "--category", "trousers"},
                 "unknown category 'trousers'; use auto, all or one of: coat, dress");
  expect_failure({"--data", data(), "search", a_photo().string(), "--k", "0"}, "--k");
  expect_failure({"--data", data(), "frobnicate"}, "unknown command 'frobnicate'");
}

TEST_F(CliTest, BadTrainingOptionsAreRefusedBeforeAnythingRuns) {
  const auto versions_before = run_lookalike({"--data", data(), "info", "--json"});
  ASSERT_EQ(versions_before.status, 0) << versions_before.err;
  expect_failure({"--data", data(), "train", "--no-head", "--head-only"},
                 "--no-head and --head-only exclude each other");
  expect_failure({"--data", data(), "train", "--head-only", "--epochs", "0"}, "--epochs");
  expect_failure({"--data", data(), "train", "--head-only", "--validation", "0.9"}, "--validation");
  expect_failure({"--data", data(), "train", "--head-only", "--min-per-category", "1"}, "--min-per-category");
  expect_failure({"--data", data(), "train", "--head-only", "--seed", "minus-one"}, "--seed");
  expect_failure({"--data", data(), "serve", "--min-confidence", "1.5"}, "--min-confidence");
  expect_failure({"--data", data(), "train", "--head-only", "--frozen-blend", "1.5"}, "--frozen-blend");
  expect_failure({"--data", data(), "train", "--head-only", "--frozen-blend", "heavy"}, "--frozen-blend");
  expect_failure({"--data", data(), "search", "x.jpg", "--no-frozen-blend=maybe"}, "--no-frozen-blend");
  const auto versions_after = run_lookalike({"--data", data(), "info", "--json"});
  EXPECT_EQ(nlohmann::json::parse(versions_after.out)["versions"],
            nlohmann::json::parse(versions_before.out)["versions"]);
}

TEST_F(CliTest, CorruptDataDirectoryIsReportedAndLeftAlone) {
  testing::TempDir tmp;
  testing::write_bytes(tmp.path() / "catalog.sqlite", std::string(8192, 'z'));
  expect_failure({"--data", tmp.str(), "info"}, "is not a usable Lookalike catalog");
  expect_failure({"--data", tmp.str(), "import", (dir_->path() / "photos").string()},
                 "not a usable Lookalike catalog");
  EXPECT_EQ(testing::read_bytes(tmp.path() / "catalog.sqlite"), std::string(8192, 'z'));
}

TEST_F(CliTest, HelpForEveryCommand) {
  for (const char* cmd :
       {"import", "search", "eval", "reindex", "train", "add", "remove", "list", "info", "serve", "model"}) {
    const auto r = run_lookalike({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

size_t stored_items(const std::string& db_path) {
  sqlite3* db = nullptr;
  size_t n = 0;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM items", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      n = static_cast<size_t>(sqlite3_column_int64(s, 0));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return n;
}

// Starts `import` of 60 photos (batches of 4) in the background and returns once at least
// `min_items` are committed; the caller then interrupts it. Returns the pid and the count seen.
std::pair<int, size_t> start_import_until(const testing::TempDir& tmp, size_t skip, size_t min_items) {
  testing::make_subset(tmp.path() / "photos", 10, skip);
  const std::string d = tmp.str() + "/d";
  const int pid =
      testing::start_lookalike({"--data", d, "import", (tmp.path() / "photos").string(), "--batch", "4"},
                               tmp.str() + "/out", tmp.str() + "/err");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  size_t stored = 0;
  while (pid > 0 && std::chrono::steady_clock::now() < deadline &&
         (stored = stored_items(d + "/catalog.sqlite")) < min_items) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {pid, stored};
}

TEST_F(CliTest, KillDashNineDuringImportLosesNothingCommitted) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  const auto [pid, before_kill] = start_import_until(tmp, 20, 12);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  EXPECT_EQ(testing::wait_process(pid), 128 + SIGKILL);
  ASSERT_GE(before_kill, 12u);
  const size_t after_kill = stored_items(d + "/catalog.sqlite");
  EXPECT_GE(after_kill, before_kill);
  EXPECT_LT(after_kill, 60u) << "the import finished before the kill; the test proves nothing";
  const auto info = run_lookalike({"--data", d, "info", "--json"});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["items"].get<size_t>(), after_kill);
  const auto resumed = run_lookalike({"--data", d, "import", (tmp.path() / "photos").string()});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("already stored " + std::to_string(after_kill)), std::string::npos)
      << resumed.out;
  EXPECT_EQ(stored_items(d + "/catalog.sqlite"), 60u);
}

TEST_F(CliTest, CtrlCStopsAnImportCleanlyAndARerunResumes) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  const auto [pid, before_interrupt] = start_import_until(tmp, 40, 8);
  ASSERT_GT(pid, 0);
  ASSERT_GE(before_interrupt, 8u);
  ::kill(pid, SIGINT);
  EXPECT_EQ(testing::wait_process(pid), 130);
  const std::string err = testing::read_bytes(tmp.str() + "/err");
  EXPECT_NE(err.find("interrupted:"), std::string::npos) << err;
  EXPECT_NE(err.find("run the same import again to resume"), std::string::npos) << err;
  const size_t stored = stored_items(d + "/catalog.sqlite");
  EXPECT_GE(stored, 8u);
  EXPECT_LT(stored, 60u);
  const auto resumed = run_lookalike({"--data", d, "import", (tmp.path() / "photos").string()});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("already stored " + std::to_string(stored)), std::string::npos) << resumed.out;
  EXPECT_EQ(stored_items(d + "/catalog.sqlite"), 60u);
}

TEST_F(CliTest, ACatalogWithoutCategoriesSearchesEverything) {
  testing::TempDir tmp;
  size_t n = 0;
  for (const auto& dir : fs::directory_iterator(dir_->path() / "photos")) {
    for (const auto& f : fs::directory_iterator(dir.path())) {
      if (n < 12)
        fs::create_symlink(fs::canonical(f.path()), tmp.path() / (dir.path().filename().string() + "-" +
                                                                  f.path().filename().string()));
      ++n;
    }
  }
  const auto import = run_lookalike({"--data", tmp.str() + "/d", "import", tmp.str()});
  ASSERT_EQ(import.status, 0) << import.err;
  EXPECT_NE(import.out.find("no category classifier"), std::string::npos) << import.out;
  const auto r = run_lookalike({"--data", tmp.str() + "/d", "search", a_photo().string(), "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doc["query"]["category"].is_null());
  EXPECT_EQ(doc["query"]["searched"], "all");
  EXPECT_EQ(doc["results"].size(), 12u);
}

TEST_F(CliTest, AddAndRemoveFromTheCommandLine) {
  testing::TempDir tmp;
  testing::write_bytes(tmp.path() / "new.jpg", testing::read_bytes(a_photo()));
  const auto add =
      run_lookalike({"--data", data(), "add", (tmp.path() / "new.jpg").string(), "--id", "cli-new",
                     "--category", "coat", "--price", "12.5", "--attr", "colour=red"});
  ASSERT_EQ(add.status, 0) << add.err;
  expect_failure({"--data", data(), "add", (tmp.path() / "new.jpg").string(), "--id", "cli-new"}, "exists");
  expect_failure({"--data", data(), "add", (tmp.path() / "new.jpg").string(), "--id", "bad/id"},
                 "--id must be");
  expect_failure({"--data", data(), "add", (tmp.path() / "new.jpg").string(), "--attr", "novalue"},
                 "KEY=VALUE");
  const auto files = [] {
    std::set<std::string> out;
    for (const char* dir : {"images", "features"}) {
      for (const auto& e : fs::recursive_directory_iterator(fs::path(data()) / dir))
        if (e.is_regular_file()) out.insert(e.path().string());
    }
    return out;
  };
  const auto before_remove = files();
  const auto remove = run_lookalike({"--data", data(), "remove", "cli-new"});
  EXPECT_EQ(remove.status, 0) << remove.err;
  expect_failure({"--data", data(), "remove", "cli-new"}, "no item with id 'cli-new'");
  // cli-new was a byte-identical twin of an imported photo: the shared files stay.
  EXPECT_EQ(files(), before_remove);

  // A photo of its own (one trailing byte more: another hash) takes its files with it.
  testing::write_bytes(tmp.path() / "own.jpg", testing::read_bytes(a_photo()) + std::string(1, '\0'));
  const auto own = run_lookalike(
      {"--data", data(), "add", (tmp.path() / "own.jpg").string(), "--id", "cli-own", "--category", "coat"});
  ASSERT_EQ(own.status, 0) << own.err;
  EXPECT_GT(files().size(), before_remove.size());
  const auto gone = run_lookalike({"--data", data(), "remove", "cli-own"});
  EXPECT_EQ(gone.status, 0) << gone.err;
  EXPECT_EQ(files(), before_remove);
}

std::string integrity(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      result = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return result;
}

// Starts a long training and returns once its first epoch is reported.
int start_training_until_first_epoch(const std::string& d, const testing::TempDir& tmp) {
  const int pid = testing::start_lookalike({"--data", d, "train", "--head-only", "--min-per-category", "3",
                                            "--epochs", "200", "--patience", "200"},
                                           tmp.str() + "/train.out", tmp.str() + "/train.err");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pid > 0 && std::chrono::steady_clock::now() < deadline &&
         testing::read_bytes(tmp.str() + "/train.err").find("epoch 1/200:") == std::string::npos) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pid;
}

TEST_F(CliTest, KillDashNineOrCtrlCDuringTrainingKeepsThePreviousVersion) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  fs::copy(data(), d, fs::copy_options::recursive);
  const auto first = run_lookalike(
      {"--data", d, "train", "--head-only", "--min-per-category", "3", "--epochs", "2", "--activate-anyway"});
  ASSERT_EQ(first.status, 0) << first.err;
  ASSERT_NE(first.out.find("model version 1"), std::string::npos) << first.out;
  const auto index_before = run_lookalike({"--data", d, "search", a_photo().string(), "--json", "-k", "5"});
  ASSERT_EQ(index_before.status, 0) << index_before.err;

  const int pid = start_training_until_first_epoch(d, tmp);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  EXPECT_EQ(testing::wait_process(pid), 128 + SIGKILL);
  EXPECT_EQ(integrity(d + "/catalog.sqlite"), "ok");
  const auto info = run_lookalike({"--data", d, "info", "--json"});
  ASSERT_EQ(info.status, 0) << info.err;
  const auto doc = nlohmann::json::parse(info.out);
  EXPECT_EQ(doc["model_version"], 1);
  EXPECT_EQ(doc["versions"].size(), 1u) << "a killed training must leave no version behind";
  const auto after = run_lookalike({"--data", d, "search", a_photo().string(), "--json", "-k", "5"});
  ASSERT_EQ(after.status, 0) << after.err;
  EXPECT_EQ(nlohmann::json::parse(after.out)["results"], nlohmann::json::parse(index_before.out)["results"]);
  EXPECT_EQ(nlohmann::json::parse(after.out)["query"]["model_version"], 1);

  // Ctrl-C: exit 130, says so, keeps version 1.
  const int interrupted = start_training_until_first_epoch(d, tmp);
  ASSERT_GT(interrupted, 0);
  ::kill(interrupted, SIGINT);
  EXPECT_EQ(testing::wait_process(interrupted), 130);
  EXPECT_NE(testing::read_bytes(tmp.str() + "/train.err").find("previous model version stays active"),
            std::string::npos);
  // The lock died with the processes: a new training runs, and rollback works.
  const auto next =
      run_lookalike({"--data", d, "train", "--head-only", "--min-per-category", "3", "--epochs", "1"});
  ASSERT_EQ(next.status, 0) << next.err;
  EXPECT_NE(next.out.find("model version 2"), std::string::npos) << next.out;
  const auto rollback = run_lookalike({"--data", d, "model", "use", "1"});
  EXPECT_EQ(rollback.status, 0) << rollback.err;
  const auto listed = run_lookalike({"--data", d, "model", "list"});
  EXPECT_NE(listed.out.find("*1"), std::string::npos) << listed.out;
  expect_failure({"--data", d, "model", "use", "7"}, "no model version 7");
  expect_failure({"--data", d, "model", "use", "-1"}, "VERSION");

  // Pruning: the active version is refused; an inactive one goes with its index files.
  expect_failure({"--data", d, "model", "remove", "1"}, "model version 1 is active");
  expect_failure({"--data", d, "model", "remove", "0"}, "VERSION");
  expect_failure({"--data", d, "model", "remove", "7"}, "no trained model version 7");
  const auto v2_index = [&d] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(fs::path(d) / "index"))
      n += e.path().filename().string().rfind("v2-", 0) == 0;
    return n;
  };
  ASSERT_EQ(run_lookalike({"--data", d, "model", "use", "2"}).status, 0);
  ASSERT_EQ(run_lookalike({"--data", d, "search", a_photo().string(), "--json"}).status, 0);  // v2's index
  EXPECT_GT(v2_index(), 0u);
  ASSERT_EQ(run_lookalike({"--data", d, "model", "use", "1"}).status, 0);
  const auto pruned = run_lookalike({"--data", d, "model", "remove", "2"});
  EXPECT_EQ(pruned.status, 0) << pruned.err;
  EXPECT_EQ(v2_index(), 0u);
  const auto remaining = run_lookalike({"--data", d, "info", "--json"});
  EXPECT_EQ(nlohmann::json::parse(remaining.out)["versions"].size(), 1u);
  expect_failure({"--data", d, "model", "use", "2"}, "no model version 2");
}

}  // namespace
}  // namespace lookalike

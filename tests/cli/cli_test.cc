// The `lookalike` binary as a user runs it: every bad input gets a precise message and a
// non-zero exit, nothing stored before is lost, and kill -9 during an import is survivable.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "store/catalog_store.h"
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

// A started `lookalike serve`: its pid and port once it printed "ready:" (0 when it did not).
struct StartedServer {
  int pid = -1;
  int port = 0;
};

StartedServer start_server(const std::vector<std::string>& args, const std::string& out,
                           const std::string& err, const std::vector<std::string>& extra_env = {}) {
  StartedServer s;
  s.pid = testing::start_lookalike(args, out, err, extra_env);
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 900 && s.pid > 0 && s.port == 0; ++i) {
    std::smatch m;
    const std::string printed = testing::read_bytes(out);
    if (std::regex_search(printed, m, listening) && printed.find("ready:") != std::string::npos)
      s.port = std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return s;
}

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
  // The readable similarity: the photo itself beats every typical neighbour; the rest fall in
  // 0..1 in the order of their scores, spread rather than all near the top.
  EXPECT_NEAR(doc["results"][0]["similarity"].get<double>(), 1.0, 1e-4);
  double previous = 1.0;
  for (const auto& hit : doc["results"]) {
    const double s = hit["similarity"].get<double>();
    EXPECT_GE(s, 0.0);
    EXPECT_LE(s, previous + 1e-6);
    previous = s;
  }
  EXPECT_LT(doc["results"][11]["similarity"].get<double>(), 0.9);
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
  const auto eval = run_lookalike({"--data", data(), "eval", "--json", "--instance-queries", "12"});
  ASSERT_EQ(eval.status, 0) << eval.err;
  const auto doc = nlohmann::json::parse(eval.out);
  for (const char* key : {"queries", "accuracy", "p_at_1", "p_at_10", "category_precision_at_12",
                          "duplicates_first", "colour_distance_at_12", "confusion", "ms_per_query"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }
  EXPECT_EQ(doc["queries"], 30);
  EXPECT_EQ(doc["inference"]["engine"], "dnnl");  // the figures say what computed them
  EXPECT_GT(doc["colour_distance_at_12"].get<double>(), 0.0);
  // Altered catalog photos (crop, rescale, rotation, brightness, contrast, mirror, JPEG): the
  // frozen recipe finds most of them first, and the figure is recorded with the version.
  const auto& instance = doc["instance"];
  EXPECT_EQ(instance["queries"], 12);
  EXPECT_GE(instance["recall_at_1"].get<double>(), 0.75);
  EXPECT_GE(instance["recall_at_12"].get<double>(), instance["recall_at_1"].get<double>());
  const auto versions = run_lookalike({"--data", data(), "model", "list"});
  EXPECT_NE(versions.out.find("instance recall@1"), std::string::npos) << versions.out;
  expect_failure({"--data", data(), "eval", "--instance-queries", "-3"}, "--instance-queries");
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
  expect_failure({"--data", data(), "search", "x.jpg", "--instance-threshold", "1.5"},
                 "--instance-threshold");
  expect_failure({"--data", data(), "eval", "--instance-margin", "-0.1"}, "--instance-margin");
  expect_failure({"--data", data(), "serve", "--frozen-search-weight", "half"}, "--frozen-search-weight");
  expect_failure({"--data", data(), "search", "x.jpg", "--query-expansion", "51"}, "--query-expansion");
  expect_failure({"--data", data(), "eval", "--query-expansion", "-1"}, "--query-expansion");
  expect_failure({"--data", data(), "serve", "--expansion-power", "cubed"}, "--expansion-power");
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
  expect_failure({"--data", tmp.str(), "compact"}, "not a usable Lookalike catalog");
  EXPECT_EQ(testing::read_bytes(tmp.path() / "catalog.sqlite"), std::string(8192, 'z'));
}

// `compact` rewrites a copy of the catalog, which then checks sound and holds the same items;
// a folder without a catalog is refused and left without one.
TEST_F(CliTest, CompactRewritesTheDatabaseAndKeepsTheCatalog) {
  testing::TempDir tmp;
  const std::string copy = tmp.str() + "/data";
  fs::copy(data(), copy, fs::copy_options::recursive);
  const auto before = run_lookalike({"--data", copy, "list", "--limit", "100", "--json"});
  const auto r = run_lookalike({"--data", copy, "compact"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("compacted sqlite " + copy + "/catalog.sqlite: "), std::string::npos) << r.out;
  const auto check = run_lookalike({"--data", copy, "check"});
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("ok: 30 items"), std::string::npos) << check.out;
  EXPECT_EQ(run_lookalike({"--data", copy, "list", "--limit", "100", "--json"}).out, before.out);
  expect_failure({"--data", tmp.str() + "/empty", "compact"},
                 "no catalog database at " + tmp.str() + "/empty");
  EXPECT_FALSE(fs::exists(tmp.path() / "empty"));
}

TEST_F(CliTest, HelpForEveryCommand) {
  for (const char* cmd : {"import", "search", "eval", "reindex", "train", "add", "remove", "list", "info",
                          "serve", "model", "check", "backup", "compact", "duplicates", "recommend"}) {
    const auto r = run_lookalike({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

// The parsed lines of a JSON Lines feed, by item id.
std::map<std::string, nlohmann::json> feed_by_id(const std::string& text) {
  std::map<std::string, nlohmann::json> feed;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto doc = nlohmann::json::parse(line);
    feed[doc["id"].get<std::string>()] = doc;
  }
  return feed;
}

// A byte-identical copy of one photo is found by the import that brings it, listed by
// `duplicates`, collapsed into one search result unless --keep-copies, and kept out of the feed.
TEST_F(CliTest, DuplicatesListsCopiesAndSearchCollapsesThem) {
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 3);
  const fs::path original = *fs::directory_iterator(tmp.path() / "photos" / "hood");
  testing::write_bytes(tmp.path() / "photos" / "hood" / "twin.jpg", testing::read_bytes(original));
  const std::string data_dir = (tmp.path() / "data").string();
  const auto import =
      run_lookalike({"--data", data_dir, "import", (tmp.path() / "photos").string(), "--no-head"});
  ASSERT_EQ(import.status, 0) << import.err;
  EXPECT_NE(import.out.find("copy pairs found"), std::string::npos) << import.out;

  const auto listed = run_lookalike({"--data", data_dir, "duplicates", "--json"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  const auto doc = nlohmann::json::parse(listed.out);
  ASSERT_EQ(doc["total"], 1) << listed.out;
  std::set<std::string> members;
  for (const auto& item : doc["groups"][0]["items"]) members.insert(item["id"]);
  EXPECT_TRUE(members.count("hood-twin")) << listed.out;
  const auto text = run_lookalike({"--data", data_dir, "duplicates"});
  EXPECT_NE(text.out.find("1 groups of copies, 2 items in them, of 19 items"), std::string::npos) << text.out;

  const auto collapsed =
      run_lookalike({"--data", data_dir, "search", original.string(), "--category", "all", "--json"});
  ASSERT_EQ(collapsed.status, 0) << collapsed.err;
  const auto hits = nlohmann::json::parse(collapsed.out)["results"];
  EXPECT_EQ(hits[0]["hidden_copies"], 1) << collapsed.out;
  const auto apart = run_lookalike(
      {"--data", data_dir, "search", original.string(), "--category", "all", "--json", "--keep-copies"});
  const auto both = nlohmann::json::parse(apart.out)["results"];
  EXPECT_EQ(both[0]["score"], both[1]["score"]) << "two results for one photo: " << apart.out;

  // The "you may also like" feed: no row lists a copy of its own item, and none lists both copies.
  const std::string feed_path = (tmp.path() / "feed.jsonl").string();
  const auto feed_run =
      run_lookalike({"--data", data_dir, "recommend", "--k", "6", "--category", "all", "--out", feed_path});
  ASSERT_EQ(feed_run.status, 0) << feed_run.err;
  for (const auto& [id, line] : feed_by_id(testing::read_bytes(feed_path))) {
    size_t copies = 0;
    for (const auto& s : line["similar"]) copies += members.count(s["id"].get<std::string>());
    EXPECT_LE(copies, members.count(id) ? 0u : 1u) << id << ": " << line.dump();
    EXPECT_EQ(line["similar"].size(), 6u) << id;
  }

  // Forgotten and found again.
  const auto rescan = run_lookalike({"--data", data_dir, "duplicates", "--rescan"});
  EXPECT_EQ(rescan.status, 0) << rescan.err;
  EXPECT_NE(rescan.out.find("1 groups of copies"), std::string::npos) << rescan.out;

  // A catalog from before copies were found (no item compared): the server compares it itself.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data_dir + "/catalog.sqlite").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(
        sqlite3_exec(db, "DELETE FROM copy_pairs; DELETE FROM copy_checked;", nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  const std::string out = tmp.str() + "/serve.out", err = tmp.str() + "/serve.err";
  const auto server =
      start_server({"--data", data_dir, "serve", "--port", "0", "--background-training", "off"}, out, err);
  ASSERT_NE(server.port, 0) << testing::read_bytes(err);
  httplib::Client client("127.0.0.1", server.port);
  nlohmann::json groups = nlohmann::json::object();
  for (int i = 0; i < 600 && groups.value("total", 0) != 1; ++i) {
    if (const auto res = client.Get("/api/v1/duplicates"); res && res->status == 200)
      groups = nlohmann::json::parse(res->body);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(groups.value("total", 0), 1) << groups.dump() << testing::read_bytes(err);
  EXPECT_NE(testing::read_bytes(err).find("for copies of one photo: 1 pairs"), std::string::npos)
      << testing::read_bytes(err);
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(server.pid), 0) << testing::read_bytes(err);
}

// The stored value of one blob of a catalog database, or "" when absent.
std::string stored_blob(const std::string& db_path, const std::string& name) {
  sqlite3* db = nullptr;
  std::string value;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT value FROM blobs WHERE name = ?", -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_bind_text(s, 1, name.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      value.assign(static_cast<const char*>(sqlite3_column_blob(s, 0)), sqlite3_column_bytes(s, 0));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return value;
}

TEST_F(CliTest, PrecisionAndEngineAreReportedAndBadChoicesRefused) {
  const auto info = run_lookalike({"--data", data(), "info", "--json"});
  ASSERT_EQ(info.status, 0) << info.err;
  const auto inference = nlohmann::json::parse(info.out)["inference"];
  EXPECT_EQ(inference["engine"], "dnnl");
  const std::string isa = inference["isa"];
  // oneDNN names the highest ISA it uses; avx512_core_bf16 (Cooper Lake, Zen 4) and amx include VNNI.
  const bool vnni = isa.find("vnni") != std::string::npos || isa.find("bf16") != std::string::npos ||
                    isa.find("amx") != std::string::npos;
  EXPECT_EQ(inference["precision"], vnni ? "int8" : "fp32") << isa;  // auto: int8 only with VNNI
  // `info` reports the engine without loading (or even finding) the model.
  const auto no_model = run_lookalike({"--data", data(), "--model", "/nonexistent/model.json", "info"});
  EXPECT_EQ(no_model.status, 0) << no_model.err;
  EXPECT_NE(no_model.out.find("inference: dnnl"), std::string::npos) << no_model.out;
  const auto text = run_lookalike({"--data", data(), "--precision", "int8", "info"});
  EXPECT_NE(text.out.find("inference: dnnl, int8, CPU " + isa), std::string::npos) << text.out;

  expect_failure({"--data", data(), "--precision", "bf16", "info"},
                 "--precision: bf16 not in {auto,fp32,int8}");
  expect_failure({"--data", data(), "--engine", "tpu", "info"}, "--engine: tpu not in {dnnl,opencv}");
  expect_failure(
      {"--data", data(), "--engine", "opencv", "--precision", "int8", "search", a_photo().string()},
      "int8 runs only on the dnnl engine (--engine dnnl)");
  // OpenCV DNN stays as a fallback engine and finds the same photo first.
  const auto opencv = run_lookalike({"--data", data(), "--engine", "opencv", "search", a_photo().string(),
                                     "--json", "--category", "all", "--no-flip-queries"});
  ASSERT_EQ(opencv.status, 0) << opencv.err;
  EXPECT_NEAR(nlohmann::json::parse(opencv.out)["results"][0]["score"].get<double>(), 1.0, 1e-4);
  // 30 photos are too few to calibrate int8 on: the search runs fp32 and says why.
  const auto few =
      run_lookalike({"--data", data(), "--precision", "int8", "search", a_photo().string(), "--json"});
  ASSERT_EQ(few.status, 0) << few.err;
  EXPECT_NE(few.err.find("int8 needs a calibration on the catalog's own photos"), std::string::npos)
      << few.err;
  EXPECT_EQ(stored_blob(data() + "/catalog.sqlite", "int8_calibration:inception_v3_gem"), "");
}

// An int8 import calibrates once, on the photos it imports, and keeps the calibration in the
// catalog: later runs reuse it, and int8 queries find the very photo as fp32 ones do.
TEST_F(CliTest, Int8CalibratesOnceOnTheShopsOwnPhotos) {
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 7);  // 42 photos: over the 32 a calibration needs
  const std::string d = tmp.str() + "/d";
  const auto imported =
      run_lookalike({"--data", d, "--precision", "int8", "-v", "import", tmp.str() + "/photos", "--no-head"});
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_NE(imported.err.find("int8 calibration measured on 42 photos"), std::string::npos) << imported.err;
  const auto stored_calibration = [&] {
    return nlohmann::json::parse(stored_blob(d + "/catalog.sqlite", "int8_calibration:inception_v3_gem"),
                                 nullptr, false);
  };
  const auto calibration = stored_calibration();
  ASSERT_TRUE(calibration.is_object());
  EXPECT_EQ(calibration["images"], 42);
  EXPECT_GT(calibration["max"].size(), 90u);  // every tensor of InceptionV3

  const fs::path photo = *fs::directory_iterator(tmp.path() / "photos" / "dress");
  for (const char* precision : {"int8", "fp32"}) {
    const auto r = run_lookalike({"--data", d, "--precision", precision, "-v", "search", photo.string(),
                                  "--json", "--category", "all", "--no-flip-queries"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err.find("measuring the int8 calibration"), std::string::npos) << r.err;
    const auto top = nlohmann::json::parse(r.out)["results"][0];
    EXPECT_EQ(top["file_name"], photo.filename().string()) << precision;
    EXPECT_GT(top["score"].get<double>(), 0.98) << precision;
  }

  // A damaged calibration is measured again from the catalog's photos, not trusted or fatal.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((d + "/catalog.sqlite").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(
                  db, "UPDATE blobs SET value = '{broken' WHERE name = 'int8_calibration:inception_v3_gem'",
                  nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  const auto healed = run_lookalike({"--data", d, "--precision", "int8", "search", photo.string(), "--json"});
  ASSERT_EQ(healed.status, 0) << healed.err;
  EXPECT_NE(healed.err.find("int8 calibration is unreadable"), std::string::npos) << healed.err;
  const auto again = stored_calibration();
  ASSERT_TRUE(again.is_object());
  EXPECT_EQ(again["images"], 42);
}

TEST_F(CliTest, RecommendWritesEveryItemsLookAlikesAndResumes) {
  testing::TempDir tmp;
  const std::string out = tmp.str() + "/feed.jsonl";
  const auto r = run_lookalike({"--data", data(), "recommend", "--k", "3", "--out", out});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(fs::exists(out + ".partial"));
  const std::string text = testing::read_bytes(out);
  const auto feed = feed_by_id(text);
  ASSERT_EQ(feed.size(), 30u);
  for (const auto& [id, line] : feed) {
    ASSERT_EQ(line["similar"].size(), 3u) << id;
    double previous = 2;
    for (const auto& s : line["similar"]) {
      const std::string other = s["id"];
      EXPECT_NE(other, id);
      EXPECT_EQ(feed.at(other)["category"], line["category"]) << id << " -> " << other;  // --category same
      EXPECT_LE(s["score"].get<double>(), previous + 1e-6);
      previous = s["score"].get<double>();
      EXPECT_GE(s["similarity"].get<double>(), 0.0);  // the readable score search reports
      EXPECT_LE(s["similarity"].get<double>(), 1.0);
    }
  }
  expect_failure({"--data", data(), "recommend", "--out", out}, "exists; pass --overwrite");

  // Interrupted after 10 items, in the middle of the 11th line: a rerun keeps the 10 and
  // writes the other 20, and the feed is the same as the uninterrupted one.
  const std::string resumed = tmp.str() + "/resumed.jsonl";
  size_t cut = 0;
  for (int line = 0; line < 10; ++line) cut = text.find('\n', cut) + 1;
  testing::write_bytes(resumed + ".partial", text.substr(0, cut + 20));
  const auto again = run_lookalike({"--data", data(), "recommend", "--k", "3", "--out", resumed});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("10 items done, 20 to go"), std::string::npos) << again.err;
  const auto resumed_feed = feed_by_id(testing::read_bytes(resumed));
  ASSERT_EQ(resumed_feed.size(), 30u);
  for (const auto& [id, line] : feed) {
    const auto& other = resumed_feed.at(id)["similar"];
    ASSERT_EQ(other.size(), line["similar"].size()) << id;
    for (size_t i = 0; i < other.size(); ++i) {
      EXPECT_EQ(other[i]["id"], line["similar"][i]["id"]) << id;
      EXPECT_NEAR(other[i]["score"].get<double>(), line["similar"][i]["score"].get<double>(), 1e-5);
    }
  }

  // CSV, any category; and JSON Lines on stdout without --out.
  const auto csv = run_lookalike(
      {"--data", data(), "recommend", "--k", "2", "--category", "all", "--out", tmp.str() + "/feed.csv"});
  ASSERT_EQ(csv.status, 0) << csv.err;
  const std::string rows = testing::read_bytes(tmp.path() / "feed.csv");
  EXPECT_EQ(rows.rfind("id,rank,similar_id,score,similarity\n", 0), 0u);
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 61);
  const auto piped = run_lookalike({"--data", data(), "recommend", "--k", "1"});
  ASSERT_EQ(piped.status, 0) << piped.err;
  EXPECT_EQ(feed_by_id(piped.out).size(), 30u);

  expect_failure({"--data", data(), "recommend", "--k", "0"}, "--k");
  expect_failure({"--data", data(), "recommend", "--category", "near"}, "--category");
  expect_failure({"--data", data(), "recommend", "--out", tmp.str() + "/feed.txt"},
                 "must end in .jsonl or .csv");
  // A line far longer than any feed's is refused, not read into memory whole.
  testing::write_bytes(tmp.path() / "long.jsonl.partial", std::string(3 << 20, 'x') + "\n");
  expect_failure({"--data", data(), "recommend", "--out", tmp.str() + "/long.jsonl"},
                 "long.jsonl.partial:1: a line longer than 1 MiB; not a feed `recommend` wrote");
  EXPECT_EQ(fs::file_size(tmp.path() / "long.jsonl.partial"), (3u << 20) + 1);  // left as it was
  testing::write_bytes(tmp.path() / "other.jsonl.partial", "hello\n");
  expect_failure({"--data", data(), "recommend", "--out", tmp.str() + "/other.jsonl"},
                 "other.jsonl.partial:1: not a JSON object with an id; not a feed `recommend` wrote");
}

// reindex --index: each type serves the same look-alikes as exact search (the flat index here),
// the choice is kept for later rebuilds, its float16 copies are served from the snapshot file,
// and `check` accepts them.
TEST_F(CliTest, ReindexChoosesTheIndexTypeAndKeepsIt) {
  testing::TempDir tmp;
  const std::string copy = tmp.str() + "/data";
  fs::copy(data(), copy, fs::copy_options::recursive);
  const auto exact = run_lookalike({"--data", data(), "recommend", "--k", "5", "--category", "all"});
  ASSERT_EQ(exact.status, 0) << exact.err;
  const auto want = feed_by_id(exact.out);
  for (const char* kind : {"ivfpq", "hnsw"}) {
    const auto r = run_lookalike({"--data", copy, "reindex", "--index", kind});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("30 items, ") + kind), std::string::npos) << r.out;
    const auto info = nlohmann::json::parse(run_lookalike({"--data", copy, "info", "--json"}).out);
    EXPECT_EQ(info["index"]["type"], kind);
    EXPECT_EQ(info["index"]["chosen"], kind);
    // The float16 copies are read from the snapshot file, mapped, not held in memory.
    EXPECT_EQ(info["index"]["exact_copy_bytes"], 0) << kind;
    EXPECT_EQ(info["index"]["mapped_copy_bytes"], 30 * 2 * info["index_dimension"].get<size_t>()) << kind;
    const auto got = run_lookalike({"--data", copy, "recommend", "--k", "5", "--category", "all"});
    ASSERT_EQ(got.status, 0) << got.err;
    for (const auto& [id, line] : feed_by_id(got.out)) {
      const auto& expected = want.at(id)["similar"];
      ASSERT_EQ(line["similar"].size(), expected.size()) << kind << " " << id;
      for (size_t i = 0; i < expected.size(); ++i) {
        // Same ranking up to float16 rounding: equal scores at every rank.
        EXPECT_NEAR(line["similar"][i]["score"].get<double>(), expected[i]["score"].get<double>(), 2e-3)
            << kind << " " << id << " rank " << i;
      }
      EXPECT_EQ(line["similar"][0]["id"], expected[0]["id"]) << kind << " " << id;
    }
    const auto check = run_lookalike({"--data", copy, "check"});
    EXPECT_EQ(check.status, 0) << kind << ": " << check.out << check.err;
  }
  const auto again = run_lookalike({"--data", copy, "reindex"});  // no --index: the kept choice
  EXPECT_NE(again.out.find("30 items, hnsw"), std::string::npos) << again.out;
  const auto search =
      run_lookalike({"--data", copy, "search", a_photo().string(), "--json", "--category", "all"});
  ASSERT_EQ(search.status, 0) << search.err;
  EXPECT_NEAR(nlohmann::json::parse(search.out)["results"][0]["score"].get<double>(), 1.0, 2e-3);
  const auto back = run_lookalike({"--data", copy, "reindex", "--index", "auto"});
  EXPECT_NE(back.out.find("30 items, flat"), std::string::npos) << back.out;  // exact below 10,000
  expect_failure({"--data", copy, "reindex", "--index", "ivf"}, "--index");
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

// Holds the catalog database's write lock from another connection, as a second process would.
class WriteLock {
 public:
  explicit WriteLock(const std::string& db_path) {
    EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db_, 30000);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
  }
  ~WriteLock() {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
};

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
  {
    // Holding the write lock stops the import at its next batch: the kill lands mid-import
    // however fast this machine imports.
    WriteLock lock(d + "/catalog.sqlite");
    ::kill(pid, SIGKILL);
    EXPECT_EQ(testing::wait_process(pid), 128 + SIGKILL);
  }
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
  {
    WriteLock lock(d + "/catalog.sqlite");  // the import waits at its next batch (see above)
    ::kill(pid, SIGINT);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
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

TEST_F(CliTest, ABusyDatabaseEndsAnImportWithAClearErrorAndLosesNothing) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  const auto [pid, before_lock] = start_import_until(tmp, 60, 8);
  ASSERT_GT(pid, 0);
  int status = -1;
  {
    // Another writer holds the database longer than the importer's busy timeout (10 s): its
    // next batch cannot be stored. It used to abort (std::terminate, exit 134) with its decode
    // thread still running.
    WriteLock lock(d + "/catalog.sqlite");
    status = testing::wait_process(pid);
  }
  const std::string err = testing::read_bytes(tmp.str() + "/err");
  EXPECT_EQ(status, 1) << err;
  EXPECT_NE(err.find("another process holds the catalog database"), std::string::npos) << err;
  const size_t stored = stored_items(d + "/catalog.sqlite");
  EXPECT_GE(stored, before_lock);
  EXPECT_LT(stored, 60u) << "the import finished before the lock; the test proves nothing";
  const auto resumed = run_lookalike({"--data", d, "import", (tmp.path() / "photos").string(), "--no-train"});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  EXPECT_EQ(stored_items(d + "/catalog.sqlite"), 60u);
}

// The ids and scores `search --json` prints for a photo.
testing::Ranking ranked(const std::string& data_dir, const std::string& image) {
  return testing::ranked({"--data", data_dir}, image);
}

TEST_F(CliTest, BackupWhileServingRestoresIdenticalResultsAndCheckFindsDamage) {
  testing::TempDir tmp;
  const std::string live = tmp.str() + "/live", copy = tmp.str() + "/copy";
  testing::make_subset(tmp.path() / "photos", 4);
  ASSERT_EQ(run_lookalike({"--data", live, "import", (tmp.path() / "photos").string(), "--no-head"}).status,
            0);
  const auto healthy = run_lookalike({"--data", live, "check"});
  EXPECT_EQ(healthy.status, 0) << healthy.out << healthy.err;
  EXPECT_NE(healthy.out.find("ok: 24 items, 24 photos verified, 24 index vectors compared, 0 orphan files"),
            std::string::npos)
      << healthy.out;
  size_t kept_scales = 0;  // the score scale kept beside the snapshot is not an orphan
  for (const auto& e : fs::directory_iterator(fs::path(live) / "index"))
    kept_scales += e.path().string().ends_with(".faiss.scale.json");
  EXPECT_EQ(kept_scales, 1u);

  // The backup runs while a server holds the catalog open and another process adds items.
  const int server = testing::start_lookalike({"--data", live, "serve", "--port", "0"},
                                              tmp.str() + "/serve.out", tmp.str() + "/serve.err");
  ASSERT_GT(server, 0);
  const fs::path extra = fs::canonical(*fs::directory_iterator(tmp.path() / "photos" / "hood"));
  std::thread writer([&] {
    for (int i = 0; i < 3; ++i)
      run_lookalike({"--data", live, "add", extra.string(), "--id", "during-" + std::to_string(i),
                     "--category", "hood"});
  });
  const auto backup = run_lookalike({"--data", live, "backup", copy});
  writer.join();
  ::kill(server, SIGTERM);
  EXPECT_EQ(testing::wait_process(server), 0) << testing::read_bytes(tmp.str() + "/serve.err");
  ASSERT_EQ(backup.status, 0) << backup.err;
  EXPECT_NE(backup.out.find("backed up "), std::string::npos) << backup.out;
  const auto copied = run_lookalike({"--data", copy, "check"});
  EXPECT_EQ(copied.status, 0) << copied.out << copied.err;

  // Restoring is using the copy as the data directory: the same answers, item for item.
  for (const char* category : {"coat", "dress"}) {
    const std::string query =
        fs::canonical(*fs::directory_iterator(tmp.path() / "photos" / category)).string();
    const auto before = ranked(live, query), after = ranked(copy, query);
    ASSERT_FALSE(before.empty());
    // Items added after the backup's snapshot may rank in the live catalog only.
    std::vector<std::pair<std::string, double>> comparable;
    for (const auto& hit : before) {
      const bool in_copy =
          std::any_of(after.begin(), after.end(), [&](const auto& h) { return h.first == hit.first; });
      if (in_copy || hit.first.rfind("during-", 0) != 0) comparable.push_back(hit);
    }
    ASSERT_GE(after.size(), comparable.size());
    for (size_t i = 0; i < comparable.size(); ++i) {
      EXPECT_EQ(after[i].first, comparable[i].first) << "rank " << i;
      EXPECT_NEAR(after[i].second, comparable[i].second, 1e-5) << "rank " << i;
    }
  }
  EXPECT_NE(run_lookalike({"--data", live, "backup", copy}).err.find("exists and is not empty"),
            std::string::npos);

  // Damage the copy: an orphan photo, a missing photo. `check` names both and exits 1.
  const fs::path stray = fs::path(copy) / "images" / "zz" / "stray.jpg";
  testing::write_bytes(stray, "not referenced");
  // A fresh orphan may be a write in flight; this one is older than check's grace minute.
  fs::last_write_time(stray, fs::file_time_type::clock::now() - std::chrono::minutes(5));
  // So is a score scale whose snapshot is gone.
  const fs::path stray_scale = fs::path(copy) / "index" / "v1-pdeadbeef-r1.faiss.scale.json";
  testing::write_bytes(stray_scale, "{}");
  fs::last_write_time(stray_scale, fs::file_time_type::clock::now() - std::chrono::minutes(5));
  fs::path victim;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(copy) / "images")) {
    if (e.is_regular_file() && e.path().filename() != "stray.jpg") victim = e.path();
  }
  ASSERT_FALSE(victim.empty());
  fs::remove(victim);
  // One item's colours are gone (as in a catalog from before colours: not a problem), another's
  // are damaged (a problem).
  {
    auto store = open_sqlite_store((fs::path(copy) / "catalog.sqlite").string());
    const auto items = store->list({"", 0, 2});
    ASSERT_EQ(items.size(), 2u);
    store->put_colours({{items[0].key, {}}, {items[1].key, {1, 2, 3}}});
  }
  const auto damaged = run_lookalike({"--data", copy, "check", "--json"});
  EXPECT_EQ(damaged.status, 1) << damaged.out;
  const auto report = nlohmann::json::parse(damaged.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << damaged.out;
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["orphan_files"], 2);
  const std::string problems = report["problems"].dump();
  EXPECT_NE(problems.find("stray.jpg: no item has this photo"), std::string::npos) << problems;
  EXPECT_NE(problems.find("v1-pdeadbeef-r1.faiss.scale.json: not an index snapshot"), std::string::npos)
      << problems;
  EXPECT_NE(problems.find("cannot be read"), std::string::npos) << problems;
  EXPECT_NE(problems.find("has a damaged colour signature (3 values)"), std::string::npos) << problems;
  EXPECT_EQ(report["items_without_colours"], 1);
  // --repair deletes the orphan; the missing photo stays a problem (nothing can restore it).
  const auto repaired = run_lookalike({"--data", copy, "check", "--repair"});
  EXPECT_EQ(repaired.status, 1);
  EXPECT_NE(repaired.err.find("removed 2 orphan files"), std::string::npos) << repaired.err;
  EXPECT_FALSE(fs::exists(stray));
  EXPECT_FALSE(fs::exists(stray_scale));
}

size_t bytes_under(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? e.file_size() : 0;
  return n;
}

// A small filesystem (tmpfs) mounted for the test's data directory; needs root, as CI has.
class SmallDisk {
 public:
  SmallDisk(const fs::path& at, size_t bytes) : at_(at) {
    fs::create_directories(at);
    const std::string options = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", at.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  fs::path at_;
  bool mounted_ = false;
};

TEST_F(CliTest, AFullDiskFailsWritesClearlyAndDamagesNothing) {
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 2);
  testing::make_subset(tmp.path() / "more", 2, 10);
  const std::string seed = tmp.str() + "/seed";
  ASSERT_EQ(run_lookalike({"--data", seed, "import", (tmp.path() / "photos").string(), "--no-head"}).status,
            0);
  // Room for the catalog as it is plus 200 KB: less than one cached feature map (443 KB).
  SmallDisk disk(tmp.path() / "disk", bytes_under(seed) + (200 << 10));
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  const std::string d = (tmp.path() / "disk" / "d").string();
  fs::copy(seed, d, fs::copy_options::recursive);
  const std::string query = fs::canonical(*fs::directory_iterator(tmp.path() / "more" / "coat")).string();
  const auto before = ranked(d, query);
  ASSERT_FALSE(before.empty());

  const auto add = run_lookalike({"--data", d, "add", query, "--id", "one-too-many", "--category", "coat"});
  EXPECT_EQ(add.status, 1) << add.out;
  EXPECT_NE(add.err.find("No space left on device"), std::string::npos) << add.err;
  // An import used to abort here (std::terminate: its decode thread was still running).
  const auto import = run_lookalike({"--data", d, "import", (tmp.path() / "more").string(), "--no-train"});
  EXPECT_EQ(import.status, 1) << import.out << import.err;
  EXPECT_NE(import.err.find("No space left on device"), std::string::npos) << import.err;
  const auto train = run_lookalike({"--data", d, "train", "--no-head"});
  EXPECT_EQ(train.status, 1) << train.out;
  EXPECT_TRUE(train.err.find("full") != std::string::npos || train.err.find("No space") != std::string::npos)
      << train.err;

  // A server on the full disk answers searches; writes get 507.
  const auto [server, port] =
      start_server({"--data", d, "serve", "--port", "0"}, tmp.str() + "/serve.out", tmp.str() + "/serve.err",
                   {"LOOKALIKE_ADMIN_TOKEN=0123456789abcdef-full"});
  ASSERT_GT(server, 0);
  ASSERT_NE(port, 0) << testing::read_bytes(tmp.str() + "/serve.err");
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  const std::string photo = testing::read_bytes(query);
  const auto found =
      client.Post("/api/v1/search", httplib::MultipartFormDataItems{{"image", photo, "q.jpg", "image/jpeg"}});
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, 200) << found->body;
  const auto refused =
      client.Post("/api/v1/items", httplib::Headers{{"Authorization", "Bearer 0123456789abcdef-full"}},
                  httplib::MultipartFormDataItems{
                      {"image", photo, "q.jpg", "image/jpeg"},
                      {"metadata", R"({"id": "http-too-many", "category": "coat"})", "", ""}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 507) << refused->body;
  ::kill(server, SIGTERM);
  EXPECT_EQ(testing::wait_process(server), 0) << testing::read_bytes(tmp.str() + "/serve.err");

  // Nothing stored before was damaged, and no failed write left a file behind.
  const auto check = run_lookalike({"--data", d, "check"});
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_EQ(check.out.find("recent orphan"), std::string::npos) << check.out;
  EXPECT_EQ(ranked(d, query), before);
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

nlohmann::json stats_of(int port) {
  httplib::Client client("127.0.0.1", port);
  const auto r = client.Get("/api/v1/stats");
  return r && r->status == 200 ? nlohmann::json::parse(r->body) : nlohmann::json();
}

// A server's log without the access lines of the stats requests a test polls with.
std::string without_stats_requests(const std::string& log) {
  std::istringstream lines(log);
  std::string kept, line;
  while (std::getline(lines, line))
    if (line.find("GET /api/v1/stats") == std::string::npos) kept += line + "\n";
  return kept;
}

std::optional<nlohmann::json> activity_of(const nlohmann::json& stats, const std::string& job) {
  if (!stats.is_object()) return std::nullopt;
  for (const auto& a : stats["activity"])
    if (a["job"] == job) return a;
  return std::nullopt;
}

// README command 1 serves as soon as the frozen recipe is trained: the head trains in a child
// process meanwhile, /api/v1/stats shows its progress, and the server switches when it is done.
TEST_F(CliTest, ServeTrainsTheHeadInTheBackgroundAndSwitchesToIt) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  fs::copy(data(), d, fs::copy_options::recursive);
  const std::string out = tmp.str() + "/serve.out", err = tmp.str() + "/serve.err";
  const std::vector<std::string> serve{
      "--data", d, "serve", "--port", "0", "--min-per-category", "3", "--epochs", "2", "--activate-anyway"};
  auto server = start_server(serve, out, err);
  ASSERT_NE(server.port, 0) << testing::read_bytes(err);
  // At once, or a few seconds later when the suite's import has only just ended (an import may
  // start its own training then).
  const std::string starting =
      "training a head in the background (the catalog has no trained head version yet)";
  for (int i = 0; i < 300 && testing::read_bytes(out).find(starting) == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(testing::read_bytes(out).find(starting), std::string::npos) << testing::read_bytes(out);
  // It answers at once, from the frozen recipe, while the training runs. The training activates
  // its version before it reports itself finished, so the switch may come first.
  bool seen_running = false;
  nlohmann::json stats;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (std::chrono::steady_clock::now() < deadline) {
    stats = stats_of(server.port);
    const auto training = activity_of(stats, "train");
    const bool running = training && (*training)["state"] == "running";
    seen_running = seen_running || (running && stats["model_version"] == 0);
    if (stats.is_object() && stats["model_version"] == 1 && !running) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(seen_running) << stats.dump();
  ASSERT_EQ(stats["model_version"], 1) << stats.dump() << testing::read_bytes(d + "/activity/train.log");
  const auto done = activity_of(stats, "train");
  ASSERT_TRUE(done);
  EXPECT_EQ((*done)["state"], "finished");
  EXPECT_NE((*done)["message"].get<std::string>().find("model version 1"), std::string::npos);
  EXPECT_EQ(activity_of(stats, "import").value_or(nlohmann::json())["state"], "finished");
  httplib::Client client("127.0.0.1", server.port);
  const auto found = client.Post(
      "/api/v1/search",
      httplib::MultipartFormDataItems{{"image", testing::read_bytes(a_photo()), "q.jpg", "image/jpeg"}});
  ASSERT_TRUE(found && found->status == 200);
  EXPECT_EQ(nlohmann::json::parse(found->body)["query"]["model_version"], 1);
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(server.pid), 0) << testing::read_bytes(err);
  EXPECT_NE(testing::read_bytes(err).find("background training finished; model version 1 answers"),
            std::string::npos);

  // The next start has nothing to train, until an import grows the catalog by a tenth.
  server = start_server(serve, out + "2", err + "2");
  ASSERT_NE(server.port, 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(testing::read_bytes(out + "2").find("in the background"), std::string::npos);
  testing::make_subset(tmp.path() / "more", 1, 20);
  const auto grown = run_lookalike({"--data", d, "import", (tmp.path() / "more").string(), "--no-head"});
  ASSERT_EQ(grown.status, 0) << grown.err;
  // Until version 2 answers, or the training ends without it (its log is printed below).
  for (int i = 0; i < 2400; ++i) {
    stats = stats_of(server.port);
    const auto training = activity_of(stats, "train");
    if ((stats.is_object() && stats.value("model_version", 0) == 2) ||
        (training && ((*training)["state"] == "failed" || (*training)["state"] == "stopped")))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(stats_of(server.port).value("model_version", 0), 2)
      << testing::read_bytes(out + "2") << without_stats_requests(testing::read_bytes(err + "2"))
      << testing::read_bytes(d + "/activity/train.log") << stats_of(server.port).dump();
  EXPECT_NE(testing::read_bytes(out + "2").find(
                "(the catalog grew from 30 to 36 items since version 1 was trained)"),
            std::string::npos)
      << testing::read_bytes(out + "2");
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(server.pid), 0);
  const std::string fresh = tmp.str() + "/fresh";
  fs::copy(data(), fresh, fs::copy_options::recursive);
  server = start_server(
      {"--data", fresh, "serve", "--port", "0", "--min-per-category", "3", "--background-training", "off"},
      out + "3", err + "3");
  ASSERT_NE(server.port, 0);
  EXPECT_EQ(testing::read_bytes(out + "3").find("in the background"), std::string::npos);
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(server.pid), 0);
  expect_failure({"--data", fresh, "serve", "--background-training", "sometimes"}, "--background-training");
}

// Stopping the server stops its training, which keeps nothing; the next start trains again.
TEST_F(CliTest, StoppingTheServerStopsItsBackgroundTraining) {
  testing::TempDir tmp;
  const std::string d = tmp.str() + "/d";
  fs::copy(data(), d, fs::copy_options::recursive);
  const std::string out = tmp.str() + "/serve.out", err = tmp.str() + "/serve.err";
  const auto server = start_server({"--data", d, "serve", "--port", "0", "--min-per-category", "3",
                                    "--epochs", "200", "--patience", "200"},
                                   out, err);
  ASSERT_NE(server.port, 0) << testing::read_bytes(err);
  std::optional<nlohmann::json> training;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (std::chrono::steady_clock::now() < deadline) {
    training = activity_of(stats_of(server.port), "train");
    if (training && (*training)["phase"].get<std::string>().rfind("epoch ", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(training && (*training)["state"] == "running") << (training ? training->dump() : "no report");
  EXPECT_NE((*training)["phase"].get<std::string>().find("/200"), std::string::npos);
  EXPECT_GT((*training)["total"], (*training)["done"]);
  EXPECT_TRUE((*training)["eta_seconds"].is_number());
  const int child = (*training)["pid"];
  ::kill(server.pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(server.pid), 0) << testing::read_bytes(err);
  EXPECT_EQ(::kill(child, 0), -1) << "the training outlived its server";
  EXPECT_NE(testing::read_bytes(err).find("stopping the background training"), std::string::npos);
  const auto info = run_lookalike({"--data", d, "info", "--json"});
  ASSERT_EQ(info.status, 0) << info.err;
  const auto doc = nlohmann::json::parse(info.out);
  EXPECT_EQ(doc["model_version"], 0);
  EXPECT_TRUE(doc["versions"].empty());
  const auto stopped = activity_of(doc, "train");
  ASSERT_TRUE(stopped);
  EXPECT_EQ((*stopped)["state"], "stopped");
  EXPECT_NE((*stopped)["message"].get<std::string>().find("interrupted"), std::string::npos);
  EXPECT_NE(run_lookalike({"--data", d, "info"}).out.find("train: stopped"), std::string::npos);
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

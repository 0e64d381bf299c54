// The commands with `--store postgresql://...`: the catalog's records in a real PostgreSQL server
// (tests/store/store_test_support.h starts one), photos and index snapshots in --data. The same
// photos give the same answers as the embedded SQLite catalog, and a backup is an embedded copy.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "store/store_test_support.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;
using testing::run_lookalike;

using testing::ranked;
using testing::Ranking;

void expect_same(const Ranking& a, const Ranking& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << "rank " << i;
    EXPECT_NEAR(a[i].second, b[i].second, 1e-6) << "rank " << i;
  }
}

// `lookalike serve` on `catalog`: the port once it is ready (0 when it did not start).
int serve(const std::vector<std::string>& catalog, const testing::TempDir& tmp, int& pid) {
  std::vector<std::string> args = catalog;
  args.insert(args.end(), {"serve", "--port", "0", "--background-training", "off"});
  pid = testing::start_lookalike(args, tmp.str() + "/serve.out", tmp.str() + "/serve.err");
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  for (int i = 0; i < 600 && pid > 0; ++i) {
    std::smatch m;
    const std::string printed = testing::read_bytes(tmp.str() + "/serve.out");
    if (std::regex_search(printed, m, listening) && printed.find("ready:") != std::string::npos)
      return std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}

TEST(PostgresCli, ImportSearchServeAndBackUpAgainstPostgres) {
  LOOKALIKE_REQUIRE_DATASET();
  LOOKALIKE_REQUIRE_POSTGRES();
  testing::TestDatabase db;
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 4);
  const std::vector<std::string> in_postgres{"--data", tmp.str() + "/pg", "--store", db.url()};
  const std::vector<std::string> embedded{"--data", tmp.str() + "/embedded"};
  for (const auto& catalog : {in_postgres, embedded}) {
    std::vector<std::string> args = catalog;
    // In this process (the queue and workers: worker_cli_test); on SQLite the flag changes nothing.
    args.insert(args.end(), {"import", (tmp.path() / "photos").string(), "--no-head", "--embed-here"});
    const auto r = run_lookalike(args);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  // The records are in PostgreSQL, not in a file beside the photos.
  EXPECT_FALSE(fs::exists(tmp.path() / "pg" / "catalog.sqlite"));
  EXPECT_EQ(db.sql("SELECT count(*) FROM items"), "24");

  // Same photos, same answers, item for item and score for score.
  const std::string query = fs::canonical(*fs::directory_iterator(tmp.path() / "photos" / "dress")).string();
  expect_same(ranked(in_postgres, query), ranked(embedded, query));

  std::vector<std::string> info = in_postgres;
  info.insert(info.end(), {"info", "--json"});
  const auto described = run_lookalike(info);
  ASSERT_EQ(described.status, 0) << described.err;
  EXPECT_EQ(nlohmann::json::parse(described.out)["store"].get<std::string>().rfind("postgresql ", 0), 0u)
      << described.out;

  // Served over HTTP from PostgreSQL; an item added through the API lands there too.
  int pid = -1;
  const int port = serve(in_postgres, tmp, pid);
  ASSERT_GT(port, 0) << testing::read_bytes(tmp.str() + "/serve.err");
  httplib::Client client("127.0.0.1", port);
  const auto stats = client.Get("/api/v1/stats");
  ASSERT_TRUE(stats && stats->status == 200);
  const auto doc = nlohmann::json::parse(stats->body);
  EXPECT_EQ(doc["items"], 24);
  EXPECT_EQ(doc["store"].get<std::string>().find("postgresql "), 0u) << doc["store"];
  const auto listed = client.Get("/api/v1/items?category=coat&limit=50");
  ASSERT_TRUE(listed && listed->status == 200);
  EXPECT_EQ(nlohmann::json::parse(listed->body)["items"].size(), 4u) << listed->body;
  ::kill(pid, SIGTERM);
  EXPECT_EQ(testing::wait_process(pid), 0) << testing::read_bytes(tmp.str() + "/serve.err");

  // A backup of a PostgreSQL catalog is an embedded one: a data directory that answers alike.
  std::vector<std::string> backup = in_postgres;
  backup.insert(backup.end(), {"backup", tmp.str() + "/copy"});
  const auto copied = run_lookalike(backup);
  ASSERT_EQ(copied.status, 0) << copied.err;
  const auto checked = run_lookalike({"--data", tmp.str() + "/copy", "check"});
  EXPECT_EQ(checked.status, 0) << checked.out << checked.err;
  expect_same(ranked({"--data", tmp.str() + "/copy"}, query), ranked(in_postgres, query));
}

TEST(PostgresCli, AnUnreachableStoreFailsFastWithoutShowingThePassword) {
  testing::TempDir tmp;
  const auto started = std::chrono::steady_clock::now();
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  const auto r = run_lookalike(
      {"--data", tmp.str(), "--store", "postgresql://shop:hunter2@127.0.0.1:1/catalog", "info"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL at postgresql://shop@127.0.0.1:1/catalog"),
            std::string::npos)
      << r.err;
  EXPECT_EQ((r.out + r.err).find("hunter2"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lookalike

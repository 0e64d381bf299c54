// The cluster layout of docs/cluster.md, started by scripts/cluster.sh on loopback: one
// PostgreSQL catalog (the CTest fixture's server, a fresh database), query replicas following its
// change log, HAProxy in front. Searches through HAProxy answer as a single-process SQLite
// catalog of the same photos; writes through any replica reach every replica; a replica killed
// with SIGKILL costs no failed search and comes back from its snapshot plus the log.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/percentile.h"
#include "store/store_test_support.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Shell {
  int status = -1;
  std::string out;
};

// Runs a shell command; its stderr goes to the test's log.
Shell sh(const std::string& command) {
  Shell r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// scripts/cluster.sh with the binary under test.
Shell cluster_sh(const std::string& args) {
  return sh("LOOKALIKE_BIN='" + testing::lookalike_binary() +
            "' '" LOOKALIKE_SOURCE_DIR "/scripts/cluster.sh' " + args);
}

std::string line_value(const std::string& text, const std::string& key) {
  const auto at = text.find(key + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

int url_port(const std::string& url) {
  return std::stoi(url.substr(url.rfind(':') + 1));
}

std::string photo_bytes(const fs::path& dir, const std::string& category, size_t i) {
  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(dir / category)) files.push_back(fs::canonical(f.path()));
  std::sort(files.begin(), files.end());
  return testing::read_bytes(files.at(i));
}

using testing::Ranking;
using testing::ranking_of;

httplib::Result search(httplib::Client& client, const std::string& image) {
  httplib::MultipartFormDataItems items{{"image", image, "q.jpg", "image/jpeg"},
                                        {"options", R"({"k": 8, "category": "all"})", "", ""}};
  return client.Post("/api/v1/search", items);
}

bool ready(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  const auto r = client.Get("/readyz");
  return r && r->status == 200;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::seconds limit) {
  for (const auto end = Clock::now() + limit; Clock::now() < end;) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

std::set<std::string> served_ids(int port) {
  httplib::Client client("127.0.0.1", port);
  std::set<std::string> ids;
  for (size_t offset = 0;; offset += 200) {
    const auto r = client.Get("/api/v1/items?limit=200&offset=" + std::to_string(offset));
    if (!r || r->status != 200) return {"<no answer>"};
    const auto doc = json::parse(r->body);
    for (const auto& item : doc["items"]) ids.insert(item["id"].get<std::string>());
    if (doc["items"].size() < 200) return ids;
  }
}

std::set<std::string> stored_ids(const testing::TestDatabase& db) {
  const std::string joined = db.sql("SELECT coalesce(string_agg(id, ',' ORDER BY id), '') FROM items");
  std::set<std::string> ids;
  for (size_t start = 0; start < joined.size();) {
    const auto end = std::min(joined.find(',', start), joined.size());
    ids.insert(joined.substr(start, end - start));
    start = end + 1;
  }
  return ids;
}

// Stops a test's cluster. Declared after the test's TempDir, so that it runs before the
// directory (which holds the pid files) is deleted.
struct ClusterDown {
  std::string dir;
  ~ClusterDown() { cluster_sh("down '" + dir + "'"); }
};

TEST(ClusterTest, ReplicasBehindHaproxyAnswerAsOneCatalogFollowWritesAndSurviveAKill) {
  LOOKALIKE_REQUIRE_DATASET();
  LOOKALIKE_REQUIRE_POSTGRES();
  if (sh("command -v haproxy").status != 0) {
    const std::string why = "HAProxy (/usr/sbin/haproxy) is absent";
    if (testing::postgres_required()) FAIL() << why << ", and CI=true requires it";
    GTEST_SKIP() << why << "; skipping (install it: scripts/install-deps.sh --test)";
  }
  testing::TestDatabase db;
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 4);
  testing::make_subset(tmp.path() / "more", 2, 4);
  const std::string dir = tmp.str() + "/cluster";
  const ClusterDown down{dir};

  const auto up = cluster_sh("up '" + dir + "' --replicas 2 --workers 1 --store '" + db.url() + "'");
  ASSERT_EQ(up.status, 0) << up.out;
  const std::string url = line_value(up.out, "url");
  ASSERT_EQ(line_value(up.out, "store"), db.url()) << up.out;
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << up.out;
  const int replica_port[2] = {std::stoi(testing::read_bytes(dir + "/replica-1.port")),
                               std::stoi(testing::read_bytes(dir + "/replica-2.port"))};

  // The normal import against the cluster's store (queued, embedded by the cluster's worker,
  // trained at the end), and an embedded catalog of the same photos.
  for (const auto& catalog : std::vector<std::vector<std::string>>{
           {"--data", tmp.str() + "/importer", "--store", db.url()}, {"--data", tmp.str() + "/embedded"}}) {
    std::vector<std::string> args = catalog;
    args.insert(args.end(), {"import", (tmp.path() / "photos").string(), "--no-head"});
    const auto r = testing::run_lookalike(args);
    ASSERT_EQ(r.status, 0) << r.err;
  }
  for (const int port : replica_port)
    ASSERT_TRUE(wait_until([&] { return ready(port); }, std::chrono::seconds(120))) << "replica " << port;

  // Every search through HAProxy (round robin: both replicas) ranks as the embedded catalog.
  httplib::Client balanced("127.0.0.1", url_port(url));
  const std::string query = photo_bytes(tmp.path() / "photos", "dress", 1);
  const fs::path query_file = tmp.path() / "query.jpg";
  testing::write_bytes(query_file, query);
  const Ranking expected = testing::ranked({"--data", tmp.str() + "/embedded"}, query_file.string());
  ASSERT_EQ(expected.size(), 8u);
  for (int i = 0; i < 4; ++i) {
    const auto r = search(balanced, query);
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    const Ranking got = ranking_of(r->body);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].first, expected[k].first) << "rank " << k;
      // The worker embeds one photo at a time, the embedded import in batches of 8: the same
      // CNN, summed in another order.
      EXPECT_NEAR(got[k].second, expected[k].second, 1e-4) << "rank " << k;
    }
  }

  // Concurrent writers through HAProxy: adds and removes land on either replica; each must
  // become visible on both. Commit-to-visible is measured from the write's answer.
  const std::string token = testing::read_bytes(dir + "/admin-token");
  const httplib::Headers auth{{"Authorization", "Bearer " + token}};
  const auto before = stored_ids(db);
  const std::vector<std::string> imported(before.begin(), std::next(before.begin(), 3));
  std::mutex mutex;
  std::vector<double> visible_ms;
  std::atomic<int> write_failures{0};
  const auto writer = [&](int w) {
    httplib::Client client("127.0.0.1", url_port(url));
    std::mt19937 random(static_cast<uint32_t>(w));
    const std::vector<std::string> categories{"coat", "dress", "hood", "jumper", "shirts", "sweater"};
    for (size_t i = 0; i < 4; ++i) {
      const size_t n = static_cast<size_t>(w) * 4 + i;  // 12 adds: 2 photos of each category
      const std::string id = "added-" + std::to_string(n);
      const std::string category = categories[n % 6];
      httplib::MultipartFormDataItems items{
          {"image", photo_bytes(tmp.path() / "more", category, n / 6), "new.jpg", "image/jpeg"},
          {"metadata", json{{"id", id}, {"category", category}}.dump(), "", ""}};
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 50));
      const auto created = client.Post("/api/v1/items", auth, items);
      if (!created || created->status != 201) {
        ++write_failures;
        continue;
      }
      const auto committed = Clock::now();
      for (const int port : replica_port) {
        httplib::Client replica("127.0.0.1", port);
        wait_until(
            [&] {
              return replica.Get("/api/v1/items/" + id) && replica.Get("/api/v1/items/" + id)->status == 200;
            },
            std::chrono::seconds(10));
        std::lock_guard lock(mutex);
        visible_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - committed).count());
      }
      if (i == 1) {  // and a removal of an imported item
        const auto removed = client.Delete("/api/v1/items/" + imported[static_cast<size_t>(w)], auth);
        if (!removed || removed->status != 200) ++write_failures;
      }
    }
  };
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) writers.emplace_back(writer, w);
  for (auto& t : writers) t.join();
  EXPECT_EQ(write_failures, 0);
  const auto committed = stored_ids(db);
  EXPECT_EQ(committed.size(), 24u + 12u - 3u);
  for (const int port : replica_port) {
    EXPECT_TRUE(wait_until([&] { return served_ids(port) == committed; }, std::chrono::seconds(10)))
        << "replica on port " << port << " serves another set of items";
  }
  std::printf("commit-to-visible over %zu (write, replica) pairs: p50 %.1f ms, p99 %.1f ms\n",
              visible_ms.size(), percentile(visible_ms, 0.5), percentile(visible_ms, 0.99));

  // SIGKILL a replica while searches go through HAProxy: none fails (one client retry on a
  // 502/503 or a broken connection, as a shop's front end would).
  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, failures{0};
  std::thread searcher([&] {
    httplib::Client client("127.0.0.1", url_port(url));
    while (!stop) {
      auto r = search(client, query);
      if (!r || r->status >= 500) r = search(client, query);
      ++searches;
      if (!r || r->status != 200) ++failures;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int victim = std::stoi(testing::read_bytes(dir + "/replica-1.pid"));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto restarted_at = Clock::now();
  const auto again = cluster_sh("up '" + dir + "' --replicas 2 --workers 1");
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_TRUE(wait_until([&] { return ready(replica_port[0]); }, std::chrono::seconds(120)));
  const double restart_s = std::chrono::duration<double>(Clock::now() - restarted_at).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  searcher.join();
  std::printf("kill -9 of a replica: %d of %d searches failed; the replica was ready again in %.1f s\n",
              failures.load(), searches.load(), restart_s);
  EXPECT_EQ(failures, 0) << "of " << searches;
  EXPECT_GT(searches, 5);
  EXPECT_EQ(served_ids(replica_port[0]), stored_ids(db));

  const auto status = cluster_sh("status '" + dir + "'");
  EXPECT_EQ(status.status, 0) << status.out;
  EXPECT_NE(status.out.find("replica 1: pid"), std::string::npos) << status.out;
}

// A cluster whose PostgreSQL goes away: searches go on from the replica's memory, writes answer
// 503 with a message naming the store, and both work again once it is back.
TEST(ClusterTest, LosingPostgresKeepsSearchesAndRefusesWritesUntilItReturns) {
  LOOKALIKE_REQUIRE_DATASET();
  LOOKALIKE_REQUIRE_POSTGRES();
  if (sh("command -v haproxy").status != 0) GTEST_SKIP() << "HAProxy (/usr/sbin/haproxy) is absent; skipping";
  testing::TempDir tmp;
  testing::make_subset(tmp.path() / "photos", 2);
  const std::string dir = tmp.str() + "/cluster";
  const ClusterDown down{dir};
  const auto up = cluster_sh("up '" + dir + "' --replicas 1 --workers 0");  // its own server
  ASSERT_EQ(up.status, 0) << up.out;
  const std::string store = line_value(up.out, "store");
  const auto imported =
      testing::run_lookalike({"--data", tmp.str() + "/importer", "--store", store, "import",
                              (tmp.path() / "photos").string(), "--no-head", "--embed-here"});
  ASSERT_EQ(imported.status, 0) << imported.err;
  const int port = std::stoi(testing::read_bytes(dir + "/replica-1.port"));
  ASSERT_TRUE(wait_until([&] { return ready(port); }, std::chrono::seconds(120)));

  ASSERT_EQ(sh("'" LOOKALIKE_SOURCE_DIR "/scripts/postgres.sh' stop '" + dir + "/pg'").status, 0);
  httplib::Client replica("127.0.0.1", port);
  const std::string query = photo_bytes(tmp.path() / "photos", "coat", 0);
  const auto found = search(replica, query);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->status, 200) << found->body;
  EXPECT_EQ(ranking_of(found->body).size(), 8u);
  const httplib::Headers auth{{"Authorization", "Bearer " + testing::read_bytes(dir + "/admin-token")}};
  httplib::MultipartFormDataItems items{{"image", query, "new.jpg", "image/jpeg"},
                                        {"metadata", R"({"id": "while-away", "category": "coat"})", "", ""}};
  const auto refused = replica.Post("/api/v1/items", auth, items);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_NE(refused->body.find("PostgreSQL"), std::string::npos) << refused->body;
  EXPECT_TRUE(ready(port)) << "searches still work: the replica stays in the balancer";
  // The statistics answer from memory and the store's last figures, saying why.
  const auto stats = replica.Get("/api/v1/stats");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 200) << stats->body;
  const auto doc = nlohmann::json::parse(stats->body);
  EXPECT_EQ(doc.value("items", 0), 12);
  EXPECT_EQ(doc["categories"].size(), 6u) << stats->body;
  EXPECT_TRUE(doc.contains("store_error")) << stats->body;

  ASSERT_EQ(cluster_sh("up '" + dir + "' --replicas 1 --workers 0").status, 0);  // the server again
  std::string last_answer;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto created = replica.Post("/api/v1/items", auth, items);
        last_answer = created ? created->body : "no answer";
        return created && created->status == 201;
      },
      std::chrono::seconds(20)))
      << last_answer;
}

}  // namespace
}  // namespace lookalike

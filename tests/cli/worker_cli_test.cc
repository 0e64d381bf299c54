// `import` on a PostgreSQL store queues the photos; `lookalike worker` processes embed them. A
// worker killed with SIGKILL while it holds jobs loses nothing: every photo is stored exactly
// once, a corrupt one ends failed with its decode error, and the catalog answers as an
// embedded (SQLite) import of the same photos.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
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

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Polls `sql` until it returns `value` (true) or `seconds` pass (false).
bool eventually(const testing::TestDatabase& db, const std::string& sql, const std::string& value,
                int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (db.sql(sql) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(WorkerCli, AKilledWorkerLosesNoJobAndStoresNothingTwice) {
  LOOKALIKE_REQUIRE_DATASET();
  LOOKALIKE_REQUIRE_POSTGRES();
  testing::TestDatabase db;
  testing::TempDir tmp;
  const fs::path photos = tmp.path() / "photos";
  testing::make_subset(photos, 4);
  testing::write_bytes(photos / "dress" / "9999.jpg", std::string("\xff\xd8\xff\xe0 not really a JPEG", 24));
  const std::vector<std::string> in_postgres{"--threads", "1",     "--data", tmp.str() + "/importer",
                                             "--store",   db.url()};

  // Queued only: the importer embeds nothing.
  const auto queued = run_lookalike(with(in_postgres, {"import", photos.string(), "--no-wait"}));
  ASSERT_EQ(queued.status, 0) << queued.err;
  EXPECT_NE(queued.out.find("queued 25 photos"), std::string::npos) << queued.out;
  EXPECT_EQ(db.sql("SELECT count(*) FROM embed_jobs WHERE state = 'queued'"), "25");
  EXPECT_EQ(db.sql("SELECT count(*) FROM items"), "0");

  // Two workers, each with its own data directory (as on two machines); the first is killed
  // while it holds jobs. A short lease brings them back to the second.
  const auto worker = [&](const std::string& name) {
    return testing::start_lookalike(
        {"--threads", "1", "--data", tmp.str() + "/" + name, "--store", db.url(), "worker", "--name", name,
         "--batch", "4", "--lease", "3", "--exit-when-empty"},
        tmp.str() + "/" + name + ".out", tmp.str() + "/" + name + ".err");
  };
  const int doomed = worker("doomed");
  ASSERT_TRUE(eventually(db, "SELECT count(*) > 0 FROM items", "t", 120))
      << testing::read_bytes(tmp.str() + "/doomed.err");
  const int survivor = worker("survivor");
  ASSERT_TRUE(eventually(
      db, "SELECT count(*) > 0 FROM embed_jobs WHERE worker = 'doomed' AND state = 'running'", "t", 60));
  ::kill(doomed, SIGKILL);
  EXPECT_EQ(testing::wait_process(doomed), 128 + SIGKILL);
  const std::string held = db.sql("SELECT string_agg(item_id, ',') FROM embed_jobs WHERE worker = 'doomed'");
  EXPECT_FALSE(held.empty()) << "the killed worker held no job";
  EXPECT_EQ(testing::wait_process(survivor), 0) << testing::read_bytes(tmp.str() + "/survivor.err");

  // Every photo stored, once; the jobs the dead worker held were done by the survivor.
  EXPECT_EQ(db.sql("SELECT count(*) FROM items"), "24");
  EXPECT_EQ(db.sql("SELECT count(DISTINCT id) FROM items"), "24");
  EXPECT_EQ(db.sql("SELECT count(*) FROM embed_jobs WHERE state <> 'failed'"), "0") << "held: " << held;
  EXPECT_EQ(db.sql("SELECT count(*) FROM photos"), "25");
  // The corrupt photo: failed after 3 attempts, with the decoder's message.
  EXPECT_EQ(db.sql("SELECT attempts FROM embed_jobs WHERE state = 'failed'"), "3");
  const std::string error = db.sql("SELECT error FROM embed_jobs WHERE state = 'failed'");
  EXPECT_FALSE(error.empty());
  EXPECT_NE(db.sql("SELECT item FROM embed_jobs WHERE state = 'failed'").find("9999.jpg"), std::string::npos);

  const auto status = run_lookalike(with(in_postgres, {"status", "--json"}));
  ASSERT_EQ(status.status, 0) << status.err;
  const auto doc = nlohmann::json::parse(status.out);
  EXPECT_EQ(doc["items"], 24);
  EXPECT_EQ(doc["queue"]["failed"], 1);
  EXPECT_EQ(doc["queue"]["queued"], 0);
  EXPECT_EQ(doc["failures"][0]["error"], error);

  // A waiting import of the same folder: the 24 are stored already, the corrupt one is queued
  // again and fails again (a worker that stops on SIGTERM takes it); then it trains.
  const int third = testing::start_lookalike(
      {"--threads", "1", "--data", tmp.str() + "/third", "--store", db.url(), "worker", "--name", "third"},
      tmp.str() + "/third.out", tmp.str() + "/third.err");
  const auto imported = run_lookalike(with(in_postgres, {"import", photos.string(), "--no-head"}));
  EXPECT_EQ(imported.status, 0) << imported.err;
  EXPECT_NE(imported.out.find("already stored 24"), std::string::npos) << imported.out;
  EXPECT_NE(imported.err.find("9999.jpg: " + error), std::string::npos) << imported.err;
  ::kill(third, SIGTERM);
  EXPECT_EQ(testing::wait_process(third), 0) << testing::read_bytes(tmp.str() + "/third.err");

  // The embedded import of the same folder fails the same photo with the same message.
  const std::vector<std::string> embedded{"--threads", "1", "--data", tmp.str() + "/embedded"};
  const auto reference = run_lookalike(with(embedded, {"import", photos.string(), "--no-head"}));
  ASSERT_EQ(reference.status, 0) << reference.err;
  EXPECT_NE(reference.err.find("9999.jpg: " + error), std::string::npos) << reference.err;

  // Same answers, item for item (scores to float precision: one photo per forward in a worker,
  // batches of 8 in an import).
  const std::string image = fs::canonical(*fs::directory_iterator(photos / "coat")).string();
  const Ranking a = ranked(in_postgres, image), b = ranked(embedded, image);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << "rank " << i;
    EXPECT_NEAR(a[i].second, b[i].second, 1e-4) << "rank " << i;
  }
  // The importer's data directory got the photos it needed (the copy check) from the store.
  EXPECT_TRUE(fs::exists(tmp.path() / "importer" / "images"));
  EXPECT_FALSE(fs::is_empty(tmp.path() / "importer" / "images"));
}

// A new head version's descriptors are spread over the workers too (jobs are (item, version)):
// `train --on-workers` computes here only those of the items whose feature maps it caches (5 of
// each category), queues the other 18, and activates the version once a worker stored them.
TEST(WorkerCli, ANewVersionsDescriptorsAreComputedByTheWorkers) {
  LOOKALIKE_REQUIRE_DATASET();
  LOOKALIKE_REQUIRE_POSTGRES();
  testing::TestDatabase db;
  testing::TempDir tmp;
  const fs::path photos = tmp.path() / "photos";
  testing::make_subset(photos, 8);
  const std::vector<std::string> in_postgres{"--threads", "1",     "--data", tmp.str() + "/importer",
                                             "--store",   db.url()};
  const auto queued = run_lookalike(with(in_postgres, {"import", photos.string(), "--no-wait"}));
  ASSERT_EQ(queued.status, 0) << queued.err;
  const int worker = testing::start_lookalike(
      {"--threads", "1", "--data", tmp.str() + "/worker", "--store", db.url(), "worker", "--name", "w"},
      tmp.str() + "/worker.out", tmp.str() + "/worker.err");
  ASSERT_TRUE(eventually(db, "SELECT count(*) FROM items", "48", 180))
      << testing::read_bytes(tmp.str() + "/worker.err");

  const auto trained = run_lookalike(with(
      in_postgres, {"train", "--on-workers", "--min-per-category", "5", "--max-per-category", "5", "--epochs",
                    "2", "--activate-anyway"}));
  ::kill(worker, SIGTERM);
  EXPECT_EQ(testing::wait_process(worker), 0) << testing::read_bytes(tmp.str() + "/worker.err");
  ASSERT_EQ(trained.status, 0) << trained.out << trained.err;
  EXPECT_NE((trained.out + trained.err).find("18 descriptors queued for the workers"), std::string::npos)
      << trained.out << trained.err;
  EXPECT_EQ(db.sql("SELECT value FROM meta WHERE key = 'active_version'"), "1");
  EXPECT_EQ(db.sql("SELECT count(*) FROM version_descriptors WHERE version = 1"), "48");
  EXPECT_EQ(db.sql("SELECT count(*) FROM embed_jobs"), "0");
  // 48 embeddings and the 18 descriptors, all completed by the worker (none by the trainer).
  EXPECT_EQ(db.sql("SELECT sum(done) FROM embed_throughput"), "66");
}

}  // namespace
}  // namespace lookalike

// What only the PostgreSQL store has: several connections (processes, machines) on one
// catalog, a server that is away, passwords, and the export to SQLite. Skipped when the
// PostgreSQL binaries are absent (failed under CI=true).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "common/error.h"
#include "store/catalog_store.h"
#include "store/store_test_support.h"

namespace lookalike {
namespace {

using testing::make_item;
using testing::TempDir;
using testing::TestDatabase;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LOOKALIKE_REQUIRE_POSTGRES();
    database_.emplace();
  }
  std::unique_ptr<CatalogStore> open() const { return open_postgres_store(database_->url()); }
  const TestDatabase& database() const { return *database_; }

 private:
  std::optional<TestDatabase> database_;
};

// A TCP socket on 127.0.0.1 that listens (or, closed, leaves a port nobody listens on).
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), size), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size), 0);
    port_ = ntohs(address.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 4), 0);
    } else {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Opens `conninfo`, expecting a failure; returns the error and how long it took.
std::pair<Error, double> failed_open(const std::string& conninfo) {
  const auto start = std::chrono::steady_clock::now();
  try {
    open_postgres_store(conninfo);
  } catch (const Error& e) {
    return {e, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
  }
  ADD_FAILURE() << "opening " << conninfo << " succeeded";
  return {Error(ErrorCode::kInternal, ""), 0};
}

TEST_F(PostgresStoreTest, TwoStoreObjectsSeeEachOthersWrites) {
  auto one = open();
  auto two = open();
  const auto keys = one->insert({make_item("a", "coat")});
  EXPECT_EQ(two->find("a")->key, keys[0]);
  EXPECT_EQ(two->revision(), one->revision());
  two->put_blobs({{"pca", "bytes"}});
  EXPECT_EQ(one->get_blob("pca"), "bytes");
  ModelVersion v;
  v.classifier = "{}";
  EXPECT_EQ(two->add_model_version(v, {{keys[0], {1.f}}}, /*activate=*/true), 1);
  EXPECT_EQ(one->active_version(), 1);
  EXPECT_EQ(one->descriptor(1, keys[0]), std::vector<float>{1.f});
  EXPECT_TRUE(one->remove("a"));
  EXPECT_FALSE(two->find("a"));
  EXPECT_EQ(two->count(), 0u);
}

// compact is SQLite's: a PostgreSQL store says so instead of pretending to have compacted.
TEST_F(PostgresStoreTest, CompactIsRefusedWithItsReason) {
  auto store = open();
  try {
    store->compact();
    FAIL() << "compact succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("autovacuum"), std::string::npos) << e.what();
  }
}

// Four writers, each with its own connection, opening an empty database at the same moment
// (the schema is created once, under the advisory lock) and then inserting at once.
TEST_F(PostgresStoreTest, ConcurrentWritersGetTheUnionWithUniqueKeysAndCounts) {
  constexpr int kThreads = 4, kBatches = 10, kPerBatch = 5;
  const std::vector<std::string> categories = {"coat", "dress", "hood"};
  std::vector<std::vector<int64_t>> keys(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto store = open();
        for (int b = 0; b < kBatches; ++b) {
          std::vector<NewItem> batch;
          for (int i = 0; i < kPerBatch; ++i) {
            const int n = (t * kBatches + b) * kPerBatch + i;
            batch.push_back(make_item("item-" + std::to_string(n), categories[static_cast<size_t>(n) % 3]));
          }
          const auto got = store->insert(batch);
          keys[static_cast<size_t>(t)].insert(keys[static_cast<size_t>(t)].end(), got.begin(), got.end());
        }
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(t)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  std::set<int64_t> unique;
  for (const auto& k : keys) unique.insert(k.begin(), k.end());
  constexpr size_t kTotal = kThreads * kBatches * kPerBatch;
  EXPECT_EQ(unique.size(), kTotal);
  auto store = open();
  EXPECT_EQ(store->count(), kTotal);
  const auto items = store->all_items();
  ASSERT_EQ(items.size(), kTotal);
  std::map<std::string, size_t> expected;
  for (const auto& item : items) {
    EXPECT_TRUE(unique.count(item.key)) << item.id;
    ++expected[item.category];
  }
  for (const auto& c : store->categories()) EXPECT_EQ(c.count, expected[c.name]) << c.name;
  EXPECT_EQ(store->categories().size(), 3u);
  EXPECT_EQ(store->revision(), kThreads * kBatches);
  EXPECT_TRUE(store->integrity_problems().empty());
}

TEST_F(PostgresStoreTest, AClosedPortFailsAtOnceWithoutThePassword) {
  const LoopbackSocket closed(/*listen=*/false);
  const std::string port = std::to_string(closed.port());
  const auto [error, seconds] =
      failed_open("postgresql://someone:hunter2-secret@127.0.0.1:" + port + "/lookalike");
  EXPECT_EQ(error.code(), ErrorCode::kIoError);
  const std::string message = error.what();
  EXPECT_NE(message.find("postgresql://someone@127.0.0.1:" + port + "/lookalike"), std::string::npos)
      << message;
  EXPECT_NE(message.find("refused"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_LT(seconds, 3);
}

// A server that accepts the TCP connection and never answers: the 5 s connect_timeout the store
// adds when the string has none.
TEST_F(PostgresStoreTest, ASilentServerTimesOutInFiveSeconds) {
  const LoopbackSocket silent(/*listen=*/true);
  const auto [error, seconds] = failed_open("host=127.0.0.1 port=" + std::to_string(silent.port()) +
                                            " dbname=lookalike user=someone password='hunter2 secret'");
  EXPECT_EQ(error.code(), ErrorCode::kIoError);
  const std::string message = error.what();
  EXPECT_NE(message.find("timeout"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_GE(seconds, 4);
  EXPECT_LT(seconds, 9);
}

TEST_F(PostgresStoreTest, AMalformedConnectionStringIsRefusedWithoutThePassword) {
  // libpq quotes the whole string in this message.
  const auto [error, seconds] = failed_open("postgresql://someone:hunter2@[::1/lookalike");
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("invalid PostgreSQL connection string"), std::string::npos)
      << error.what();
  EXPECT_EQ(std::string(error.what()).find("hunter2"), std::string::npos) << error.what();
  const auto [error2, seconds2] = failed_open("host=127.0.0.1 password='hunter2");
  EXPECT_EQ(error2.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(std::string(error2.what()).find("hunter2"), std::string::npos) << error2.what();
}

// Roles other than the trusted superuser log in with a password (scripts/postgres.sh).
TEST_F(PostgresStoreTest, AWrongPasswordIsRefusedWithoutEchoingIt) {
  const std::string role = database().name() + "_owner";
  database().sql("CREATE ROLE " + role + " LOGIN PASSWORD 'right-horse'");
  database().sql("ALTER DATABASE " + database().name() + " OWNER TO " + role);
  const auto [error, seconds] = failed_open(testing::postgres_url(database().name(), role + ":wrong-horse"));
  EXPECT_EQ(error.code(), ErrorCode::kIoError);
  const std::string message = error.what();
  EXPECT_NE(message.find("password authentication failed"), std::string::npos) << message;
  EXPECT_NE(message.find(role + "@127.0.0.1"), std::string::npos) << message;
  EXPECT_EQ(message.find("wrong-horse"), std::string::npos) << message;
  EXPECT_LT(seconds, 3);
  {
    auto store = open_postgres_store(testing::postgres_url(database().name(), role + ":right-horse"));
    store->insert({make_item("a", "coat")});
    EXPECT_EQ(store->count(), 1u);
  }
  database().sql("ALTER DATABASE " + database().name() + " OWNER TO lookalike; REASSIGN OWNED BY " + role +
                 " TO lookalike; DROP OWNED BY " + role + "; DROP ROLE " + role);
}

TEST_F(PostgresStoreTest, ALostConnectionThrowsAndTheNextCallReconnects) {
  auto store = open();
  store->insert({make_item("a", "coat")});
  database().sql(
      "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() "
      "AND pid <> pg_backend_pid()");
  try {
    store->count();
    ADD_FAILURE() << "a call on a terminated connection must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBusy);
    EXPECT_NE(
        std::string(e.what()).find("lost the connection to PostgreSQL at postgresql://lookalike@127.0.0.1"),
        std::string::npos)
        << e.what();
  }
  EXPECT_EQ(store->count(), 1u);
  store->insert({make_item("b", "coat")});
  EXPECT_EQ(store->count(), 2u);
}

// The log keeps its last N revisions: a reader within them follows it, one further behind is
// told to reload (nullopt), and the table does not grow with the writes.
TEST_F(PostgresStoreTest, TheChangeLogKeepsItsLastRevisionsOnly) {
  auto store = open_postgres_store(database().url(), PostgresStoreOptions{10});
  for (int i = 0; i < 25; ++i) store->insert({make_item("i" + std::to_string(i), "coat")});
  ASSERT_EQ(store->revision(), 25);
  EXPECT_FALSE(store->changes(0, 25).has_value());
  EXPECT_FALSE(store->changes(14, 25).has_value());
  const auto kept = store->changes(15, 25);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->size(), 10u);
  EXPECT_EQ(kept->front().revision, 16);
}

TEST_F(PostgresStoreTest, TheChangeLogSaysWhatEachRevisionChanged) {
  auto store = open();
  using Kind = StoreChange::Kind;
  const auto keys = store->insert({make_item("a", "coat"), make_item("b", "dress")});
  ASSERT_TRUE(store->update_metadata("a", ItemMetadata{"Wool", 10.0, "", nlohmann::json::object()}, "hood"));
  ASSERT_TRUE(store->remove("b"));
  store->put_blobs({{"pca", "bytes"}});
  EXPECT_FALSE(store->remove("b"));  // nothing changed: no revision, no entry
  ASSERT_EQ(store->revision(), 4);
  const auto log = store->changes(0, 4);
  ASSERT_TRUE(log.has_value());
  const std::vector<std::tuple<int64_t, Kind, int64_t>> expected{{1, Kind::kAdded, keys[0]},
                                                                 {1, Kind::kAdded, keys[1]},
                                                                 {2, Kind::kUpdated, keys[0]},
                                                                 {3, Kind::kRemoved, keys[1]},
                                                                 {4, Kind::kReload, 0}};
  ASSERT_EQ(log->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(std::make_tuple((*log)[i].revision, (*log)[i].kind, (*log)[i].key), expected[i]) << i;
  }
  const auto tail = store->changes(2, 3);
  ASSERT_TRUE(tail.has_value());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ(tail->front().kind, Kind::kRemoved);
  EXPECT_TRUE(store->changes(4, 4)->empty());
  // Rows lost below a revision (a catalog from before the log): the reader must reload.
  database().sql("DELETE FROM changes WHERE revision = 1");
  EXPECT_FALSE(store->changes(0, 4).has_value());
  EXPECT_TRUE(store->changes(1, 4).has_value());
  // SQLite keeps no log: a follower reloads.
  TempDir tmp;
  EXPECT_FALSE(open_sqlite_store(tmp.str() + "/c.sqlite")->changes(0, 1).has_value());
}

// Four writers commit at once while a follower reads the log from where it stopped, as a
// replica does: it ends with exactly the committed items, each seen once, in commit order.
TEST_F(PostgresStoreTest, AFollowerOfTheLogMissesNoConcurrentCommit) {
  constexpr int kWriters = 4, kItems = 50;
  std::atomic<int> finished{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto store = open();
      for (int i = 0; i < kItems; ++i) {
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
        store->insert({make_item(id, "coat")});
        if (i % 5 == 4) store->remove("w" + std::to_string(w) + "-" + std::to_string(i - 1));
      }
      ++finished;
    });
  }
  auto follower = open();
  std::set<int64_t> present;
  int64_t seen = 0, last_revision = 0;
  size_t added = 0;
  for (bool done = false; !done;) {
    done = finished == kWriters;  // read once more after the last writer finished
    const int64_t upto = follower->revision();
    const auto log = follower->changes(seen, upto);
    ASSERT_TRUE(log.has_value()) << "from " << seen << " to " << upto;
    for (const auto& change : *log) {
      EXPECT_GE(change.revision, last_revision);
      last_revision = change.revision;
      if (change.kind == StoreChange::Kind::kAdded) {
        EXPECT_TRUE(present.insert(change.key).second) << "added twice: " << change.key;
        ++added;
      } else if (change.kind == StoreChange::Kind::kRemoved) {
        EXPECT_EQ(present.erase(change.key), 1u) << "removed before added: " << change.key;
      }
    }
    seen = upto;
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(added, static_cast<size_t>(kWriters * kItems));
  std::set<int64_t> stored;
  for (const auto& item : follower->all_items()) stored.insert(item.key);
  EXPECT_EQ(present, stored);
}

TEST_F(PostgresStoreTest, AListenerWakesAtACommitAndOnlyThen) {
  auto listener = listen_for_changes(database().url());
  ASSERT_NE(listener, nullptr);
  EXPECT_FALSE(listener->wait(200)) << "nothing committed yet";
  auto store = open();
  const auto started = std::chrono::steady_clock::now();
  store->insert({make_item("a", "coat")});
  EXPECT_TRUE(listener->wait(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_FALSE(listener->wait(100)) << "one commit, one wake-up";
  EXPECT_EQ(listen_for_changes("/tmp/catalog.sqlite"), nullptr);
}

TEST_F(PostgresStoreTest, RefusesADatabaseWithAnotherSchema) {
  database().sql("CREATE TABLE items(x integer)");
  try {
    open();
    FAIL() << "another program's items table must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptStore);
    EXPECT_NE(std::string(e.what()).find("is not a usable Lookalike catalog"), std::string::npos) << e.what();
  }
  EXPECT_EQ(database().sql("SELECT to_regclass('meta') IS NULL"), "t") << "untouched";
}

TEST_F(PostgresStoreTest, IntegrityProblemsReportWhatTheDatabaseCannotKnow) {
  auto store = open();
  const auto keys = store->insert({make_item("a", "coat"), make_item("b", "dress"), make_item("c", "dress")});
  EXPECT_TRUE(store->integrity_problems().empty());
  database().sql("UPDATE category_counts SET count = 7 WHERE category = 'dress'");
  database().sql("INSERT INTO copy_pairs VALUES (" + std::to_string(keys[0]) + ", 999, 1, 1)");
  database().sql("UPDATE items SET descriptor = '\\x00000000' WHERE id = 'c'");
  const auto problems = store->integrity_problems();
  ASSERT_EQ(problems.size(), 3u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "catalog database: the category counts disagree with the items in 1 categories");
  EXPECT_EQ(problems[1], "catalog database: 1 copy pairs name a missing item");
  EXPECT_EQ(problems[2], "catalog database: the frozen descriptors have 2 different sizes");
}

// Text PostgreSQL cannot hold (a NUL byte; SQLite would keep it) is refused, not cut short.
TEST_F(PostgresStoreTest, TextWithANulByteIsRefused) {
  auto store = open();
  NewItem n = make_item("a", "coat");
  n.item.metadata.title = std::string("before\0after", 12);
  try {
    store->insert({n});
    ADD_FAILURE() << "a NUL byte must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
  EXPECT_EQ(store->count(), 0u);
}

TEST_F(PostgresStoreTest, OpenStoreChoosesTheStoreByTheSpec) {
  open_store(database().url())->insert({make_item("a", "coat")});
  EXPECT_EQ(open()->count(), 1u);
  std::string postgres_scheme = database().url();
  postgres_scheme.replace(0, std::string("postgresql").size(), "postgres");
  EXPECT_EQ(open_store(postgres_scheme)->count(), 1u);
  const TempDir dir;
  const auto path = (dir.path() / "catalog.sqlite").string();
  EXPECT_EQ(open_store(path)->count(), 0u);
  EXPECT_TRUE(std::filesystem::exists(path));
}

// The export to the embedded format: one snapshot, the same keys, descriptors, versions and
// counters, so that the SQLite copy goes on numbering where PostgreSQL stopped.
TEST_F(PostgresStoreTest, BackupWritesASqliteCatalogWithTheSameContent) {
  auto store = open();
  NewItem measured = make_item("a", "coat", 9.5);
  measured.item.colours = {1, 50, 10, -10};
  auto keys =
      store->insert({measured, make_item("b", "dress"), make_item("gone", "dress"), make_item("c", "")});
  ASSERT_TRUE(store->remove("gone"));
  ModelVersion v;
  v.created_at = 1700000000;
  v.head_onnx = std::string("\0onnx", 5);
  v.classifier = "{\"classes\":[]}";
  v.info = {{"validation_accuracy", 0.9}};
  store->add_model_version(v, {{keys[0], {1.f, 0.f}}, {keys[1], {0.f, 1.f}}}, /*activate=*/false);
  store->add_model_version(v, {{keys[0], {0.5f, 0.5f}}}, /*activate=*/true);
  store->add_model_version(v, {}, /*activate=*/false);
  store->remove_model_version(3);
  store->set_evaluation(2, {{"p_at_10", 0.7}});
  store->set_evaluation(0, {{"p_at_10", 0.6}});
  store->put_blobs({{"pca", std::string("\0\1\2", 3)}});
  store->put_copy_checks({keys[0], keys[1]}, {{keys[1], keys[0], 0.99f, 2.5f}});

  const TempDir dir;
  const auto path = (dir.path() / "catalog.sqlite").string();
  store->backup_to(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  auto copy = open_sqlite_store(path);

  const auto items = store->all_items(), copied = copy->all_items();
  ASSERT_EQ(copied.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(copied[i].key, items[i].key);
    EXPECT_EQ(copied[i].id, items[i].id);
    EXPECT_EQ(copied[i].category, items[i].category);
    EXPECT_EQ(copied[i].metadata.price, items[i].metadata.price);
    EXPECT_EQ(copied[i].metadata.attributes, items[i].metadata.attributes);
    EXPECT_EQ(copied[i].colours, items[i].colours);
    for (const int64_t version : {0, 1, 2})
      EXPECT_EQ(copy->descriptor(version, items[i].key), store->descriptor(version, items[i].key));
  }
  ASSERT_EQ(copy->model_versions().size(), 2u);
  EXPECT_EQ(copy->model_version(2)->head_onnx, v.head_onnx);
  EXPECT_EQ(copy->model_version(2)->info, store->model_version(2)->info);
  EXPECT_EQ(copy->evaluation(2)["p_at_10"], 0.7);
  EXPECT_EQ(copy->evaluation(0)["p_at_10"], 0.6);
  EXPECT_EQ(copy->active_version(), 2);
  EXPECT_EQ(copy->revision(), store->revision());
  EXPECT_EQ(copy->get_blob("pca"), std::string("\0\1\2", 3));
  ASSERT_EQ(copy->copy_pairs().size(), 1u);
  EXPECT_EQ(copy->copy_pairs()[0].a, keys[0]);
  EXPECT_FLOAT_EQ(copy->copy_pairs()[0].correlation, 0.99f);
  EXPECT_EQ(copy->keys_unchecked_for_copies(), store->keys_unchecked_for_copies());
  EXPECT_EQ(copy->count(), 3u);
  EXPECT_EQ(copy->categories().size(), 2u);
  EXPECT_TRUE(copy->integrity_problems().empty());
  // Numbering goes on after the largest ever handed out: not the removed item's key, not 3.
  EXPECT_EQ(copy->insert({make_item("d", "coat")})[0], keys[3] + 1);
  EXPECT_EQ(copy->add_model_version(v, {}, false), 4);

  try {
    store->backup_to(path);
    ADD_FAILURE() << "a backup must not overwrite a file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict);
  }
}

}  // namespace
}  // namespace lookalike

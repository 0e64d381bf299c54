// Helpers of the store tests: sample items, and a throwaway PostgreSQL server (scripts/postgres.sh)
// with a fresh database per test.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "store/catalog_store.h"
#include "support/test_support.h"

namespace lookalike::testing {

NewItem make_item(const std::string& id, const std::string& category,
                  std::optional<double> price = std::nullopt);

// The PostgreSQL server of this test binary: LOOKALIKE_TEST_POSTGRES_DIR when set (CTest starts
// one there for all the store tests and stops it after them), else one started in a temporary
// directory on first use and stopped when the tests end. Empty until started.
struct PostgresServer {
  std::string url;    // postgresql://lookalike@127.0.0.1:PORT/lookalike (superuser, trusted)
  std::string error;  // why it could not be started, when url is empty
};
// The server binaries' directory ($LOOKALIKE_POSTGRES_BIN or Debian's PostgreSQL 15).
std::string postgres_bin();
bool postgres_installed();
// True under CI=true, where missing PostgreSQL binaries fail the PostgreSQL cases.
bool postgres_required();
const PostgresServer& postgres_server();

// Skips the current test with a clear message when the PostgreSQL binaries are absent (CTest
// lists it as Not Run); under CI=true, fails it instead. Fails when the server does not start.
#define LOOKALIKE_REQUIRE_POSTGRES()                                                                 \
  do {                                                                                               \
    if (!::lookalike::testing::postgres_installed()) {                                               \
      const std::string why =                                                                        \
          "PostgreSQL server binaries in " + ::lookalike::testing::postgres_bin() + " are absent";   \
      if (::lookalike::testing::postgres_required()) FAIL() << why << ", and CI=true requires them"; \
      GTEST_SKIP() << why << "; skipping (install postgresql-15: scripts/install-deps.sh --test)";   \
    }                                                                                                \
    ASSERT_FALSE(::lookalike::testing::postgres_server().url.empty())                                \
        << ::lookalike::testing::postgres_server().error;                                            \
  } while (0)

// Runs SQL as the superuser on `url` (a server's database); returns the first value of the
// first row, or "" when none; throws std::runtime_error when the server refuses it.
std::string postgres_sql(const std::string& url, const std::string& sql);

// A fresh database on the test server, dropped at destruction (its connections closed first).
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;
  const std::string& url() const { return url_; }  // of the database, as the superuser
  const std::string& name() const { return name_; }
  // Runs SQL in this database as the superuser.
  std::string sql(const std::string& statement) const { return postgres_sql(url_, statement); }

 private:
  std::string name_, url_;
};

// The server's URL with another database (and user and password, when given).
std::string postgres_url(const std::string& database, const std::string& user_and_password = "");

}  // namespace lookalike::testing

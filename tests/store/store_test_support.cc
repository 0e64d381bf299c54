#include "store/store_test_support.h"

#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace lookalike::testing {
namespace fs = std::filesystem;

NewItem make_item(const std::string& id, const std::string& category, std::optional<double> price) {
  NewItem n;
  n.item.id = id;
  n.item.category = category;
  n.item.file_name = id + ".jpg";
  n.item.sha256 = "sha-" + id;
  n.item.image_path = "images/" + id + ".jpg";
  n.item.width = 10;
  n.item.height = 20;
  n.item.metadata.title = "Title " + id;
  n.item.metadata.price = price;
  n.item.metadata.attributes = {{"colour", "red"}, {"size", 38}};
  n.descriptor = {1.f, 2.f, static_cast<float>(id.size())};
  return n;
}

std::string postgres_bin() {
  if (const char* env = std::getenv("LOOKALIKE_POSTGRES_BIN"); env && *env) return env;
  return "/usr/lib/postgresql/15/bin";
}

bool postgres_installed() {
  return ::access((postgres_bin() + "/initdb").c_str(), X_OK) == 0 &&
         ::access((postgres_bin() + "/pg_ctl").c_str(), X_OK) == 0;
}

bool postgres_required() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

namespace {

// Runs scripts/postgres.sh; returns its exit status and output (stdout and stderr).
std::pair<int, std::string> postgres_script(const std::string& command, const std::string& dir) {
  const std::string line =
      std::string("'") + LOOKALIKE_SOURCE_DIR + "/scripts/postgres.sh' " + command + " '" + dir + "' 2>&1";
  FILE* pipe = ::popen(line.c_str(), "r");
  if (!pipe) return {-1, "cannot run " + line};
  std::string out;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, out};
}

// Starts the server on first use; the environment stops it after the last test when this
// process started it.
class PostgresEnvironment : public ::testing::Environment {
 public:
  const PostgresServer& server() {
    std::lock_guard lock(mutex_);
    if (!started_) start();
    return server_;
  }
  void TearDown() override {
    std::lock_guard lock(mutex_);
    if (owned_dir_) {
      postgres_script("stop", (owned_dir_->path() / "server").string());
      owned_dir_.reset();
    }
  }

 private:
  void start() {
    started_ = true;
    std::string dir;
    if (const char* shared = std::getenv("LOOKALIKE_TEST_POSTGRES_DIR"); shared && *shared) {
      dir = shared;
    } else {
      owned_dir_.emplace();
      dir = (owned_dir_->path() / "server").string();
    }
    const auto [status, out] = postgres_script("start", dir);
    const auto at = out.rfind("store: ");
    if (status != 0 || at == std::string::npos) {
      server_.error =
          "scripts/postgres.sh start " + dir + " failed (exit " + std::to_string(status) + "): " + out;
      return;
    }
    server_.url = out.substr(at + 7, out.find('\n', at) - at - 7);
  }

  std::mutex mutex_;
  bool started_ = false;
  std::optional<TempDir> owned_dir_;
  PostgresServer server_;
};

PostgresEnvironment* const environment =
    static_cast<PostgresEnvironment*>(::testing::AddGlobalTestEnvironment(new PostgresEnvironment));

}  // namespace

const PostgresServer& postgres_server() {
  return environment->server();
}

std::string postgres_sql(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to " + url + ": " + error);
  }
  PGresult* r = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(r);
  std::string value;
  if (status == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) value = PQgetvalue(r, 0, 0);
  const std::string error = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw std::runtime_error(sql + ": " + error);
  return value;
}

std::string postgres_url(const std::string& database, const std::string& user_and_password) {
  const std::string& url = postgres_server().url;
  const auto at = url.find('@'), slash = url.rfind('/');
  const std::string user = user_and_password.empty() ? url.substr(13, at - 13) : user_and_password;
  return "postgresql://" + user + "@" + url.substr(at + 1, slash - at - 1) + "/" + database;
}

TestDatabase::TestDatabase() {
  static std::atomic<int> next{0};
  name_ = "t_" + std::to_string(::getpid()) + "_" + std::to_string(next++);
  postgres_sql(postgres_server().url, "CREATE DATABASE " + name_);
  url_ = postgres_url(name_);
}

TestDatabase::~TestDatabase() {
  try {
    postgres_sql(postgres_server().url, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << e.what();
  }
}

}  // namespace lookalike::testing

// A libpq connection and what the PostgreSQL store, job queue and change listener share:
// connection strings that never leak a password, binary parameters and results, transactions
// that serialise writers, and SQLSTATE classes mapped to the project's error codes.
// Internal to src/store.
#pragma once

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>

#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace lookalike::pg {

// Type OIDs (catalog/pg_type_d.h, which only the server headers ship).
constexpr Oid kInt2 = 21, kInt4 = 23, kInt8 = 20, kText = 25, kBytea = 17, kFloat4 = 700, kFloat8 = 701;

// ---- connection strings -------------------------------------------------------------------

// Parsed libpq options of a connection string; freed with it.
class ConnInfo {
 public:
  explicit ConnInfo(const std::string& conninfo);
  ~ConnInfo() { PQconninfoFree(options_); }
  ConnInfo(const ConnInfo&) = delete;
  ConnInfo& operator=(const ConnInfo&) = delete;
  std::string get(const char* keyword) const {
    for (const auto* o = options_; o->keyword; ++o) {
      if (std::strcmp(o->keyword, keyword) == 0) return o->val ? o->val : "";
    }
    return "";
  }

 private:
  PQconninfoOption* options_ = nullptr;
};

// libpq never prints a password, but its parse errors quote parts of the string they could not
// parse: every value that looks like one is masked before a message leaves this file.
inline std::string without_passwords(std::string message, const std::string& conninfo) {
  static const std::regex patterns[] = {std::regex(R"(://[^:/@?]*:([^@/?]+)@)"),
                                        std::regex(R"(password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+))")};
  for (const auto& pattern : patterns) {
    for (std::sregex_iterator it(conninfo.begin(), conninfo.end(), pattern), end; it != end; ++it) {
      std::string secret = (*it)[1].str();
      if (secret.size() >= 2 && secret.front() == '\'' && secret.back() == '\'')
        secret = secret.substr(1, secret.size() - 2);
      for (size_t at; !secret.empty() && (at = message.find(secret)) != std::string::npos;)
        message.replace(at, secret.size(), "***");
    }
  }
  return message;
}

inline ConnInfo::ConnInfo(const std::string& conninfo) {
  char* error = nullptr;
  options_ = PQconninfoParse(conninfo.c_str(), &error);
  if (!options_) {
    std::string message = error ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error(ErrorCode::kInvalidArgument,
                "invalid PostgreSQL connection string: " + without_passwords(message, conninfo));
  }
}

// user@host:port/database, for messages: never the password.
inline std::string describe(const ConnInfo& info) {
  const std::string user = info.get("user"), port = info.get("port");
  std::string host = info.get("host");
  if (host.empty()) host = info.get("hostaddr");
  if (host.empty()) host = "localhost";
  std::string database = info.get("dbname");
  if (database.empty()) database = user;
  return "postgresql://" + (user.empty() ? "" : user + "@") + host + (port.empty() ? "" : ":" + port) + "/" +
         database;
}

// ---- statements and results ---------------------------------------------------------------

inline std::string big_endian_bytes(uint64_t v, int size) {
  std::string bytes(static_cast<size_t>(size), '\0');
  for (int i = 0; i < size; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>(v >> (8 * (size - 1 - i)));
  return bytes;
}

inline int64_t from_big_endian(const char* p, int size) {
  uint64_t v = 0;
  for (int i = 0; i < size; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  if (size < 8 && (v >> (8 * size - 1)) != 0) v |= ~uint64_t{0} << (8 * size);  // sign-extend
  return static_cast<int64_t>(v);
}

// Query parameters, all sent in binary with their types: bytea needs no escaping, and a text
// holding a NUL byte is refused by the server instead of cut short (text format ends at NUL).
class Params {
 public:
  Params& text(std::string_view v) { return add(kText, std::string(v)); }
  Params& optional_text(const std::optional<std::string>& v) { return v ? text(*v) : null(kText); }
  Params& int8(int64_t v) { return add(kInt8, big_endian_bytes(static_cast<uint64_t>(v), 8)); }
  Params& float8(std::optional<double> v) {
    return v ? add(kFloat8, big_endian_bytes(std::bit_cast<uint64_t>(*v), 8)) : null(kFloat8);
  }
  Params& bytes(std::string_view v) { return add(kBytea, std::string(v)); }
  Params& floats(const std::vector<float>& v) {
    return bytes({reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)});
  }
  Params& floats_or_null(const std::vector<float>& v) { return v.empty() ? null(kBytea) : floats(v); }
  Params& null(Oid type) {
    types_.push_back(type);
    values_.emplace_back();
    nulls_.push_back(true);
    return *this;
  }

  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into this object: valid while it lives unchanged.
  std::vector<const char*> values() const {
    std::vector<const char*> p;
    for (size_t i = 0; i < values_.size(); ++i) p.push_back(nulls_[i] ? nullptr : values_[i].data());
    return p;
  }
  std::vector<int> lengths() const {
    std::vector<int> n;
    for (const auto& v : values_) n.push_back(static_cast<int>(v.size()));
    return n;
  }

 private:
  Params& add(Oid type, std::string value) {
    types_.push_back(type);
    values_.push_back(std::move(value));
    nulls_.push_back(false);
    return *this;
  }
  std::vector<Oid> types_;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

// A result in binary format; the accessors know the few column types the queries return.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, &PQclear) {}
  const PGresult* get() const { return r_.get(); }
  int rows() const { return PQntuples(r_.get()); }
  int64_t affected() const {
    const char* n = PQcmdTuples(r_.get());
    return n && *n ? std::stoll(n) : 0;
  }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  int64_t int64(int row, int col) const {
    const Oid type = PQftype(r_.get(), col);
    if (type != kInt8 && type != kInt4 && type != kInt2) unexpected(col);
    return from_big_endian(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
  }
  double real(int row, int col) const {
    const Oid type = PQftype(r_.get(), col);
    const int64_t bits = from_big_endian(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
    if (type == kFloat8) return std::bit_cast<double>(bits);
    if (type == kFloat4) return std::bit_cast<float>(static_cast<int32_t>(bits));
    unexpected(col);
  }
  // text and bytea alike: the bytes as stored.
  std::string_view bytes(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string text(int row, int col) const { return std::string(bytes(row, col)); }
  std::vector<float> floats(int row, int col) const {
    const auto b = bytes(row, col);
    std::vector<float> v(b.size() / sizeof(float));
    std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
    return v;
  }

 private:
  [[noreturn]] void unexpected(int col) const {
    throw Error(ErrorCode::kInternal,
                std::string("catalog database: unexpected type of column ") + PQfname(r_.get(), col));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> r_;
};

inline std::string trimmed(const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// The error a failed statement stands for, by SQLSTATE class: as in the SQLite store, a lock
// held elsewhere is worth a retry (503), a full disk is the operator's, a constraint a conflict.
inline Error statement_failure(const PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const std::string code = state ? state : "";
  std::string text = "catalog database: " + trimmed(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
  if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
    text += " (" + trimmed(detail) + ")";
  const auto in_class = [&](const char* c) { return code.rfind(c, 0) == 0; };
  if (in_class("23")) return Error(ErrorCode::kConflict, text);
  if (in_class("40") || code == "55P03" || code == "57014")
    return Error(ErrorCode::kBusy, text + " (another connection holds the catalog; retry)");
  if (code == "53100") return Error(ErrorCode::kNoSpace, text);
  if (in_class("22")) return Error(ErrorCode::kInvalidArgument, text);
  // 42501: the role may not create or read the tables, as SQLite's SQLITE_PERM an I/O error.
  if (in_class("08") || in_class("57P") || in_class("58") || code == "42501")
    return Error(ErrorCode::kIoError, text);
  if (in_class("42") || in_class("XX")) return Error(ErrorCode::kCorruptStore, text);
  return Error(ErrorCode::kInternal, text);
}

// One libpq connection. A call that finds it broken outside a transaction reconnects once
// first; a call during which it breaks throws kBusy (retry), and the next call reconnects.
class Connection {
 public:
  explicit Connection(std::string conninfo) : conninfo_(std::move(conninfo)) {
    const ConnInfo info(conninfo_);
    where_ = describe(info);
    // Unless the string sets its own, a server that does not answer fails the open in 5 s.
    const bool has_timeout = !info.get("connect_timeout").empty();
    const char* keywords[] = {"dbname", "fallback_application_name",
                              has_timeout ? nullptr : "connect_timeout", nullptr};
    const char* values[] = {conninfo_.c_str(), "lookalike", "5", nullptr};
    conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (!conn_)
      throw Error(ErrorCode::kInternal, "cannot connect to PostgreSQL at " + where_ + ": out of memory");
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);  // "already exists, skipping"
    try {
      if (PQstatus(conn_) != CONNECTION_OK)
        throw Error(ErrorCode::kIoError, "cannot connect to PostgreSQL at " + where_ + ": " + last_error());
      configure();
    } catch (...) {
      PQfinish(conn_);
      throw;
    }
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& where() const { return where_; }

  Result exec(const std::string& sql, const Params& params = {}) {
    reconnect_if_broken();
    const auto values = params.values();
    const auto lengths = params.lengths();
    const std::vector<int> binary(static_cast<size_t>(params.size()), 1);
    Result r(PQexecParams(conn_, sql.c_str(), params.size(), params.types(), values.data(), lengths.data(),
                          binary.data(), /*resultFormat=*/1));
    check(r);
    return r;
  }

  // Several statements without parameters or results (the schema, settings).
  void exec_script(const char* sql) {
    reconnect_if_broken();
    Result r(PQexec(conn_, sql));
    check(r);
  }

  // For destructors: no reconnection, no exception.
  void exec_quietly(const char* sql) noexcept {
    if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, sql));
  }

  // LISTEN/NOTIFY: waits at most `timeout_ms` for notifications on the channels this connection
  // listens to and consumes them all; true when at least one arrived. Throws kBusy when the
  // connection is lost (the next exec reconnects).
  bool wait_for_notification(int timeout_ms) {
    if (drain_notifications()) return true;
    pollfd ready{PQsocket(conn_), POLLIN, 0};
    if (ready.fd < 0) throw lost();
    const int n = ::poll(&ready, 1, timeout_ms);
    if (n < 0 && errno != EINTR) throw lost();
    if (n > 0 && PQconsumeInput(conn_) == 0) throw lost();
    return drain_notifications();
  }

  // A connection lost inside a transaction is never silently replaced: the transaction's
  // remaining statements would run outside it.
  void set_in_transaction(bool in) { in_transaction_ = in; }

 private:
  std::string last_error() const { return without_passwords(trimmed(PQerrorMessage(conn_)), conninfo_); }

  // A writer waits for another connection's transaction at most 10 s, as the SQLite store's
  // busy timeout, then fails with kBusy; text crosses the wire as UTF-8 bytes, unconverted.
  void configure() { exec_script("SET lock_timeout = '10s'; SET client_encoding = 'UTF8'"); }

  void reconnect_if_broken() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    if (in_transaction_) throw lost();
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw Error(ErrorCode::kBusy, "cannot reconnect to PostgreSQL at " + where_ + ": " + last_error());
    configure();
  }

  bool drain_notifications() {
    bool any = false;
    while (PGnotify* notification = PQnotifies(conn_)) {
      any = true;
      PQfreemem(notification);
    }
    return any;
  }

  Error lost() const {
    return Error(ErrorCode::kBusy, "lost the connection to PostgreSQL at " + where_ + " (" + last_error() +
                                       "); the next call reconnects");
  }

  void check(const Result& r) const {
    const auto status = PQresultStatus(r.get());  // PGRES_FATAL_ERROR for a null result
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    if (PQstatus(conn_) != CONNECTION_OK) throw lost();
    if (!r.get()) throw Error(ErrorCode::kInternal, "catalog database: " + last_error());
    throw statement_failure(r.get());
  }

  std::string conninfo_;
  std::string where_;
  PGconn* conn_ = nullptr;
  bool in_transaction_ = false;
};

class Transaction {
 public:
  enum class Kind {
    kPlain,
    // One writer at a time, as SQLite's BEGIN IMMEDIATE: every writer first locks the revision
    // row, so the category counters' row locks are never taken in two orders (no deadlock) and
    // revisions follow the order of the commits.
    kWrite,
    // One consistent state for several statements, taking no locks.
    kSnapshot,
  };
  Transaction(Connection& c, Kind kind) : c_(c) {
    // READ COMMITTED whatever the server's default: a writer that waited for the revision lock
    // then sees everything committed before it, as the next SQLite writer does.
    c_.exec(kind == Kind::kSnapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                    : "BEGIN ISOLATION LEVEL READ COMMITTED");
    c_.set_in_transaction(true);
    try {
      if (kind == Kind::kWrite) c_.exec("SELECT 1 FROM meta WHERE key = 'revision' FOR UPDATE");
    } catch (...) {
      end();
      throw;
    }
  }
  ~Transaction() {
    if (open_) end();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    c_.exec("COMMIT");
    c_.set_in_transaction(false);
    open_ = false;
  }

 private:
  void end() noexcept {
    c_.exec_quietly("ROLLBACK");
    c_.set_in_transaction(false);
    open_ = false;
  }
  Connection& c_;
  bool open_ = true;
};

// Runs `sql` through a cursor of the open transaction, handing `fn` a batch of rows at a time:
// a walk over a million descriptors never holds them all.
inline void for_each_batch(Connection& c, const std::string& sql, const Params& params,
                           const std::function<void(const Result&)>& fn) {
  c.exec("DECLARE lookalike_walk BINARY NO SCROLL CURSOR FOR " + sql, params);
  for (;;) {
    const Result batch = c.exec("FETCH 1000 FROM lookalike_walk");
    if (batch.rows() == 0) break;
    fn(batch);
  }
  c.exec("CLOSE lookalike_walk");
}

}  // namespace lookalike::pg

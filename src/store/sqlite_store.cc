#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "store/catalog_store.h"
#include "store/sqlite_catalog_copy.h"
#include "store/stored_json.h"

namespace lookalike {
namespace {

// 2 added model versions, 3 the maintained category counts, 4 the items' colour signatures,
// 5 copies of one product shot, 6 the frozen descriptors in their own table (1 to 5 upgrade in
// place).
constexpr int kSchemaVersion = 6;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
  key INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  category TEXT NOT NULL DEFAULT '',
  file_name TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  sha256 TEXT NOT NULL,
  image_path TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  added_at INTEGER NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  price REAL,
  url TEXT NOT NULL DEFAULT '',
  attributes TEXT NOT NULL DEFAULT '{}',
  colours BLOB);  -- float32 {share, L, a, b} rows (image/product_colour.h); NULL: not measured
-- The frozen recipe's raw descriptor (model version 0) of each item, 22 KB: in the items row it
-- made every walk over the items read it through its overflow pages (22 GB at 1M items).
CREATE TABLE IF NOT EXISTS frozen_descriptors(key INTEGER PRIMARY KEY, descriptor BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS items_frozen_descriptor_forgotten AFTER DELETE ON items BEGIN
  DELETE FROM frozen_descriptors WHERE key = OLD.key;
END;
CREATE INDEX IF NOT EXISTS items_by_file ON items(category, file_name);
CREATE INDEX IF NOT EXISTS items_by_hash ON items(sha256);
CREATE INDEX IF NOT EXISTS items_by_category ON items(category, key);
-- Items per category (including ''), kept by triggers in the writing transaction, so that
-- `categories`, `count` and /api/v1/stats read a few rows instead of counting a million.
CREATE TABLE IF NOT EXISTS category_counts(category TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS items_counted_on_insert AFTER INSERT ON items BEGIN
  INSERT INTO category_counts(category, count) VALUES (NEW.category, 1)
    ON CONFLICT(category) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER IF NOT EXISTS items_counted_on_delete AFTER DELETE ON items BEGIN
  UPDATE category_counts SET count = count - 1 WHERE category = OLD.category;
  DELETE FROM category_counts WHERE category = OLD.category AND count <= 0;
END;
CREATE TRIGGER IF NOT EXISTS items_counted_on_recategorise AFTER UPDATE OF category ON items
WHEN OLD.category != NEW.category BEGIN
  UPDATE category_counts SET count = count - 1 WHERE category = OLD.category;
  DELETE FROM category_counts WHERE category = OLD.category AND count <= 0;
  INSERT INTO category_counts(category, count) VALUES (NEW.category, 1)
    ON CONFLICT(category) DO UPDATE SET count = count + 1;
END;
CREATE TABLE IF NOT EXISTS blobs(name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions(
  version INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at INTEGER NOT NULL,
  head_onnx BLOB NOT NULL,
  classifier TEXT NOT NULL,
  info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS version_descriptors(
  version INTEGER NOT NULL,
  key INTEGER NOT NULL,
  descriptor BLOB NOT NULL,
  PRIMARY KEY(version, key)) WITHOUT ROWID;
-- The keys alone: finding the items a version has no descriptor for read the whole table,
-- 2 KB a row (4 s at 1M items, before every start of `serve`), and reads 16 bytes a row here.
CREATE INDEX IF NOT EXISTS version_descriptor_keys ON version_descriptors(version, key);
-- Items whose photos are copies of one product shot (service/copy_finder.h), a < b, and the
-- items already compared with their nearest neighbours; both forget a removed item.
CREATE TABLE IF NOT EXISTS copy_pairs(
  a INTEGER NOT NULL,
  b INTEGER NOT NULL,
  correlation REAL NOT NULL,
  structure REAL NOT NULL,
  PRIMARY KEY(a, b)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS copy_pairs_by_b ON copy_pairs(b);
CREATE TABLE IF NOT EXISTS copy_checked(key INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS items_copies_forgotten AFTER DELETE ON items BEGIN
  DELETE FROM copy_pairs WHERE a = OLD.key OR b = OLD.key;
  DELETE FROM copy_checked WHERE key = OLD.key;
END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('revision', '0');
INSERT OR IGNORE INTO meta(key, value) VALUES ('active_version', '0');
PRAGMA user_version = 6;
)sql";

// A catalog from before the counts: count once, in the transaction that creates them.
constexpr const char* kFillCategoryCounts = R"sql(
DELETE FROM category_counts;
INSERT INTO category_counts(category, count) SELECT category, COUNT(*) FROM items GROUP BY category;
)sql";

constexpr const char* kItemColumns =
    "key, id, category, file_name, source, sha256, image_path, width, height, added_at, title, price, url, "
    "attributes, colours";

// The error a failed SQLite call stands for: a lock held elsewhere is worth a retry (503), a
// full disk is the operator's to fix, and only damaged files are a corrupt store.
Error sqlite_failure(sqlite3* db, int rc, const std::string& context) {
  const std::string message = context + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(ErrorCode::kBusy, message + " (another process holds the catalog database; retry)");
    case SQLITE_FULL:
      return Error(ErrorCode::kNoSpace, message);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return Error(ErrorCode::kIoError, message);
    case SQLITE_CONSTRAINT:
      return Error(ErrorCode::kConflict, message);
    case SQLITE_NOMEM:
      return Error(ErrorCode::kInternal, message);
    default:
      return Error(ErrorCode::kCorruptStore, message);
  }
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); rc != SQLITE_OK) {
      throw sqlite_failure(db, rc, "catalog database");
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Statement& bind(int i, std::optional<double> v) {
    check(v ? sqlite3_bind_double(stmt_, i, *v) : sqlite3_bind_null(stmt_, i));
    return *this;
  }
  Statement& bind_floats_or_null(int i, const std::vector<float>& v) {
    check(v.empty() ? sqlite3_bind_null(stmt_, i)
                    : sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size() * sizeof(float)),
                                        SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind_blob(int i, const void* data, size_t size) {
    check(sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_TRANSIENT));
    return *this;
  }
  // True while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT) throw Error(ErrorCode::kConflict, sqlite3_errmsg(db_));
    throw sqlite_failure(db_, rc, "catalog database");
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }
  // Without the string blob() would make on the way (the blob may not be float-aligned).
  std::vector<float> floats(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    std::vector<float> v(p ? static_cast<size_t>(sqlite3_column_bytes(stmt_, col)) / sizeof(float) : 0);
    if (!v.empty()) std::memcpy(v.data(), p, v.size() * sizeof(float));
    return v;
  }
  std::string blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      throw Error(ErrorCode::kInternal, std::string("sqlite bind: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

Item read_item(const Statement& s) {
  Item item;
  item.key = s.int64(0);
  item.id = s.text(1);
  item.category = s.text(2);
  item.file_name = s.text(3);
  item.source = s.text(4);
  item.sha256 = s.text(5);
  item.image_path = s.text(6);
  item.width = static_cast<int>(s.int64(7));
  item.height = static_cast<int>(s.int64(8));
  item.added_at = s.int64(9);
  item.metadata.title = s.text(10);
  if (!s.is_null(11)) item.metadata.price = s.real(11);
  item.metadata.url = s.text(12);
  item.metadata.attributes = stored_json_object(s.text(13));
  if (!s.is_null(14)) item.colours = s.floats(14);
  return item;
}

// An empty descriptor binds NULL, which the column refuses: an item without one is a conflict.
void write_frozen_descriptor(Statement& s, int64_t key, const void* data, size_t bytes) {
  s.bind(1, key).bind_blob(2, bytes ? data : nullptr, bytes);
  s.step();
  s.reset();
}

// All access goes through one connection guarded by a mutex: SQLite serialises writers
// anyway, and reads here are point lookups that take microseconds.
class SqliteStore final : public CatalogStore {
 public:
  explicit SqliteStore(const std::string& path) : path_(path) {
    if (const int rc = sqlite3_open_v2(
            path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
        rc != SQLITE_OK) {
      const Error e = sqlite_failure(db_, rc, "cannot open catalog database " + path);
      sqlite3_close(db_);
      throw e;
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=FULL");  // a write is on disk before we answer
      const int64_t found = check_schema(path);
      const bool fill_counts = found < 3;
      exec("BEGIN IMMEDIATE");
      try {
        if (found < 4 && !items_have_column("colours")) exec("ALTER TABLE items ADD COLUMN colours BLOB");
        exec(kSchema);
        if (fill_counts) exec(kFillCategoryCounts);
        exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      if (items_have_column("descriptor")) move_frozen_descriptors();
    } catch (const Error& e) {
      sqlite3_close(db_);
      if (e.code() != ErrorCode::kCorruptStore) throw;
      throw Error(ErrorCode::kCorruptStore, path + " is not a usable Lookalike catalog: " + e.what());
    }
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  std::vector<int64_t> insert(const std::vector<NewItem>& items) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(
        db_,
        "INSERT INTO items(id, category, file_name, source, sha256, image_path, width, height, added_at, "
        "title, price, url, attributes, colours) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    Statement frozen(db_, "INSERT INTO frozen_descriptors(key, descriptor) VALUES (?,?)");
    Statement versioned(
        db_, "INSERT OR REPLACE INTO version_descriptors(version, key, descriptor) VALUES (?,?,?)");
    std::vector<int64_t> keys;
    for (const auto& n : items) {
      const Item& it = n.item;
      s.bind(1, it.id).bind(2, it.category).bind(3, it.file_name).bind(4, it.source).bind(5, it.sha256);
      s.bind(6, it.image_path).bind(7, int64_t{it.width}).bind(8, int64_t{it.height}).bind(9, it.added_at);
      s.bind(10, it.metadata.title).bind(11, it.metadata.price).bind(12, it.metadata.url);
      s.bind(13, it.metadata.attributes.dump());
      s.bind_floats_or_null(14, it.colours);
      s.step();
      s.reset();
      keys.push_back(sqlite3_last_insert_rowid(db_));
      write_frozen_descriptor(frozen, keys.back(), n.descriptor.data(), n.descriptor.size() * sizeof(float));
      for (const auto& [version, v] : n.version_descriptors)
        write_descriptor(versioned, version, keys.back(), v);
    }
    bump_revision();
    tx.commit();
    return keys;
  }

  bool remove(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement versioned(db_,
                        "DELETE FROM version_descriptors WHERE key = (SELECT key FROM items WHERE id = ?)");
    versioned.bind(1, id).step();
    Statement s(db_, "DELETE FROM items WHERE id = ?");
    s.bind(1, id).step();
    if (sqlite3_changes(db_) == 0) return false;
    bump_revision();
    tx.commit();
    return true;
  }

  bool update_metadata(const std::string& id, const ItemMetadata& m,
                       const std::optional<std::string>& category) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(
        db_,
        "UPDATE items SET title = ?, price = ?, url = ?, attributes = ?, category = COALESCE(?, category) "
        "WHERE id = ?");
    s.bind(1, m.title).bind(2, m.price).bind(3, m.url).bind(4, m.attributes.dump());
    if (category) s.bind(5, *category);
    s.bind(6, id).step();
    if (sqlite3_changes(db_) == 0) return false;
    bump_revision();
    tx.commit();
    return true;
  }

  std::optional<Item> find(const std::string& id) const override {
    return one(std::string("SELECT ") + kItemColumns + " FROM items WHERE id = ?",
               [&](Statement& s) { s.bind(1, id); });
  }
  std::optional<Item> find_by_key(int64_t key) const override {
    return one(std::string("SELECT ") + kItemColumns + " FROM items WHERE key = ?",
               [&](Statement& s) { s.bind(1, key); });
  }
  std::optional<Item> find_by_file(const std::string& category, const std::string& file_name) const override {
    return one(
        std::string("SELECT ") + kItemColumns + " FROM items WHERE category = ? AND file_name = ? LIMIT 1",
        [&](Statement& s) { s.bind(1, category).bind(2, file_name); });
  }
  std::optional<int64_t> find_by_hash(const std::string& sha256) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT key FROM items WHERE sha256 = ? LIMIT 1");
    s.bind(1, sha256);
    if (!s.step()) return std::nullopt;
    return s.int64(0);
  }

  std::vector<Item> list(const ListQuery& q) const override {
    std::lock_guard lock(mutex_);
    // Two statements rather than "(? = '' OR category = ?)", which no index can serve: a
    // category's page reads items_by_category from its first key on.
    const bool all = q.category.empty();
    Statement s(db_, (std::string("SELECT ") + kItemColumns + " FROM items" +
                      (all ? "" : " WHERE category = ?3") + " ORDER BY key LIMIT ?1 OFFSET ?2")
                         .c_str());
    s.bind(1, static_cast<int64_t>(q.limit)).bind(2, static_cast<int64_t>(q.offset));
    if (!all) s.bind(3, q.category);
    std::vector<Item> items;
    while (s.step()) items.push_back(read_item(s));
    return items;
  }

  std::vector<Item> all_items() const override {
    return list(ListQuery{"", 0, static_cast<size_t>(INT64_MAX)});
  }

  std::vector<Item> items_after(int64_t after, size_t limit) const override {
    std::lock_guard lock(mutex_);
    Statement s(
        db_,
        (std::string("SELECT ") + kItemColumns + " FROM items WHERE key > ?1 ORDER BY key LIMIT ?2").c_str());
    s.bind(1, after).bind(2, static_cast<int64_t>(limit));
    std::vector<Item> items;
    while (s.step()) items.push_back(read_item(s));
    return items;
  }

  size_t count() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT COALESCE(SUM(count), 0) FROM category_counts");
    s.step();
    return static_cast<size_t>(s.int64(0));
  }

  std::vector<CategoryCount> categories() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT category, count FROM category_counts WHERE category != '' ORDER BY category");
    std::vector<CategoryCount> out;
    while (s.step()) out.push_back({s.text(0), static_cast<size_t>(s.int64(1))});
    return out;
  }

  std::vector<float> descriptor(int64_t version, int64_t key) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, version == 0
                         ? "SELECT descriptor FROM frozen_descriptors WHERE key = ?2"
                         : "SELECT descriptor FROM version_descriptors WHERE version = ?1 AND key = ?2");
    if (version != 0) s.bind(1, version);
    s.bind(2, key);
    if (!s.step()) return {};
    return s.floats(0);
  }

  void for_each_descriptor(int64_t version,
                           const std::function<void(int64_t, const float*, size_t)>& fn) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, version == 0
                         ? "SELECT key, descriptor FROM frozen_descriptors ORDER BY key"
                         : "SELECT key, descriptor FROM version_descriptors WHERE version = ?1 ORDER BY key");
    if (version != 0) s.bind(1, version);
    while (s.step()) {
      const auto v = s.floats(1);
      fn(s.int64(0), v.data(), v.size());
    }
  }

  KeyedDescriptors descriptor_page(int64_t version, int64_t first_key, int64_t last_key,
                                   size_t limit) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, version == 0
                         ? "SELECT key, descriptor FROM frozen_descriptors WHERE key BETWEEN ?2 AND ?3 "
                           "ORDER BY key LIMIT ?4"
                         : "SELECT key, descriptor FROM version_descriptors WHERE version = ?1 "
                           "AND key BETWEEN ?2 AND ?3 ORDER BY key LIMIT ?4");
    if (version != 0) s.bind(1, version);
    s.bind(2, first_key);
    s.bind(3, last_key);
    s.bind(4, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    KeyedDescriptors page;
    while (s.step()) page.emplace_back(s.int64(0), s.floats(1));
    return page;
  }

  std::vector<int64_t> keys_missing_descriptor(int64_t version) const override {
    std::lock_guard lock(mutex_);
    if (version == 0) return {};
    Statement s(
        db_,
        "SELECT key FROM items WHERE key NOT IN (SELECT key FROM version_descriptors WHERE version = ?) "
        "ORDER BY key");
    s.bind(1, version);
    std::vector<int64_t> keys;
    while (s.step()) keys.push_back(s.int64(0));
    return keys;
  }

  std::vector<int64_t> keys_missing_colours() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT key FROM items WHERE colours IS NULL ORDER BY key");
    std::vector<int64_t> keys;
    while (s.step()) keys.push_back(s.int64(0));
    return keys;
  }

  void put_colours(const KeyedDescriptors& colours) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(db_, "UPDATE items SET colours = ? WHERE key = ?");
    for (const auto& [key, signature] : colours) {
      s.bind_floats_or_null(1, signature).bind(2, key).step();
      s.reset();
    }
    bump_revision();
    tx.commit();
  }

  std::vector<int64_t> keys_unchecked_for_copies() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT key FROM items WHERE key NOT IN (SELECT key FROM copy_checked) ORDER BY key");
    std::vector<int64_t> keys;
    while (s.step()) keys.push_back(s.int64(0));
    return keys;
  }

  void put_copy_checks(const std::vector<int64_t>& checked, const std::vector<CopyPair>& pairs) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    // An item removed since it was compared is left out: the trigger has already forgotten it.
    Statement mark(db_, "INSERT OR IGNORE INTO copy_checked(key) SELECT key FROM items WHERE key = ?");
    for (const int64_t key : checked) {
      mark.bind(1, key).step();
      mark.reset();
    }
    Statement pair(db_,
                   "INSERT OR REPLACE INTO copy_pairs(a, b, correlation, structure) "
                   "SELECT ?1, ?2, ?3, ?4 WHERE (SELECT COUNT(*) FROM items WHERE key IN (?1, ?2)) = 2");
    for (const auto& p : pairs) {
      pair.bind(1, std::min(p.a, p.b)).bind(2, std::max(p.a, p.b));
      pair.bind(3, std::optional<double>(p.correlation)).bind(4, std::optional<double>(p.structure)).step();
      pair.reset();
    }
    bump_revision();
    tx.commit();
  }

  std::vector<CopyPair> copy_pairs() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT a, b, correlation, structure FROM copy_pairs ORDER BY a, b");
    std::vector<CopyPair> pairs;
    while (s.step())
      pairs.push_back({s.int64(0), s.int64(1), static_cast<float>(s.real(2)), static_cast<float>(s.real(3))});
    return pairs;
  }

  void forget_copy_checks() override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    exec("DELETE FROM copy_pairs; DELETE FROM copy_checked;");
    bump_revision();
    tx.commit();
  }

  void put_descriptors(int64_t version, const KeyedDescriptors& descriptors) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    write_descriptors(version, descriptors);
    bump_revision();
    tx.commit();
  }

  int64_t add_model_version(const ModelVersion& v, const KeyedDescriptors& descriptors,
                            bool activate) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(db_, "INSERT INTO model_versions(created_at, head_onnx, classifier, info) VALUES (?,?,?,?)");
    s.bind(1, v.created_at).bind_blob(2, v.head_onnx.data(), v.head_onnx.size());
    s.bind(3, v.classifier).bind(4, v.info.dump());
    s.step();
    const int64_t version = sqlite3_last_insert_rowid(db_);
    write_descriptors(version, descriptors);
    if (activate) write_active_version(version);
    bump_revision();
    tx.commit();
    return version;
  }

  std::vector<ModelVersion> model_versions() const override {
    std::lock_guard lock(mutex_);
    Statement s(
        db_, "SELECT version, created_at, head_onnx, classifier, info FROM model_versions ORDER BY version");
    std::vector<ModelVersion> out;
    while (s.step()) out.push_back(read_version(s));
    return out;
  }

  std::optional<ModelVersion> model_version(int64_t version) const override {
    std::lock_guard lock(mutex_);
    Statement s(
        db_, "SELECT version, created_at, head_onnx, classifier, info FROM model_versions WHERE version = ?");
    s.bind(1, version);
    if (!s.step()) return std::nullopt;
    return read_version(s);
  }

  int64_t active_version() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT value FROM meta WHERE key = 'active_version'");
    return s.step() ? std::stoll(s.text(0)) : 0;
  }

  void set_evaluation(int64_t version, const nlohmann::json& figures) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(db_, version == 0
                         ? "INSERT OR REPLACE INTO blobs(name, value) VALUES ('frozen_evaluation', ?2)"
                         : "UPDATE model_versions SET info = json_set(info, '$.evaluation', json(?2)) "
                           "WHERE version = ?1");
    if (version != 0) s.bind(1, version);
    s.bind(2, figures.dump()).step();
    if (version != 0 && sqlite3_changes(db_) == 0)
      throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(version));
    tx.commit();  // figures about the catalog, not a change of it: the revision stays
  }

  nlohmann::json evaluation(int64_t version) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_,
                version == 0
                    ? "SELECT value FROM blobs WHERE name = 'frozen_evaluation'"
                    : "SELECT json_extract(info, '$.evaluation') FROM model_versions WHERE version = ?1");
    if (version != 0) s.bind(1, version);
    if (!s.step() || s.is_null(0)) return nullptr;
    return nlohmann::json::parse(s.text(0), nullptr, /*allow_exceptions=*/false);
  }

  void set_active_version(int64_t version) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    if (version != 0) {
      Statement s(db_, "SELECT 1 FROM model_versions WHERE version = ?");
      s.bind(1, version);
      if (!s.step()) throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(version));
    }
    write_active_version(version);
    bump_revision();
    tx.commit();
  }

  void remove_model_version(int64_t version) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement exists(db_, "SELECT 1 FROM model_versions WHERE version = ?");
    exists.bind(1, version);
    if (!exists.step())
      throw Error(ErrorCode::kNotFound, "no trained model version " + std::to_string(version));
    Statement active(db_, "SELECT value FROM meta WHERE key = 'active_version'");
    if (active.step() && std::stoll(active.text(0)) == version) {
      throw Error(ErrorCode::kConflict, "model version " + std::to_string(version) +
                                            " is active; activate another one first (lookalike model use N)");
    }
    for (const char* sql : {"DELETE FROM version_descriptors WHERE version = ?",
                            "DELETE FROM model_versions WHERE version = ?"}) {
      Statement s(db_, sql);
      s.bind(1, version);
      s.step();
    }
    tx.commit();
  }

  std::optional<std::string> get_blob(const std::string& name) const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT value FROM blobs WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return s.blob(0);
  }

  void put_blobs(const std::vector<std::pair<std::string, std::string>>& blobs) override {
    std::lock_guard lock(mutex_);
    Transaction tx(this);
    Statement s(db_, "INSERT OR REPLACE INTO blobs(name, value) VALUES (?, ?)");
    for (const auto& [name, value] : blobs) {
      s.bind(1, name).bind_blob(2, value.data(), value.size());
      s.step();
      s.reset();
    }
    bump_revision();
    tx.commit();
  }

  int64_t revision() const override {
    std::lock_guard lock(mutex_);
    Statement s(db_, "SELECT value FROM meta WHERE key = 'revision'");
    if (!s.step()) throw Error(ErrorCode::kCorruptStore, "catalog database has no revision");
    return std::stoll(s.text(0));
  }

  std::string describe() const override { return "sqlite " + path_; }

  std::vector<std::string> integrity_problems() const override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> problems;
    Statement s(db_, "PRAGMA integrity_check");
    while (s.step()) {
      if (s.text(0) != "ok") problems.push_back("catalog database: " + s.text(0));
    }
    Statement counts(
        db_,
        "SELECT COUNT(*) FROM (SELECT category, COUNT(*) AS n FROM items GROUP BY category) AS c "
        "FULL JOIN category_counts AS m USING (category) WHERE c.n IS NOT m.count");
    if (counts.step() && counts.int64(0) != 0)
      problems.push_back("catalog database: the category counts disagree with the items in " +
                         std::to_string(counts.int64(0)) + " categories");
    Statement bare(db_, "SELECT COUNT(*) FROM items WHERE key NOT IN (SELECT key FROM frozen_descriptors)");
    if (bare.step() && bare.int64(0) != 0)
      problems.push_back("catalog database: " + std::to_string(bare.int64(0)) +
                         " items have no frozen descriptor");
    return problems;
  }

  // SQLite's online backup: copies pages in steps, restarting a step when another connection
  // wrote meanwhile, so the copy is one committed state.
  void backup_to(const std::string& path) const override {
    sqlite3* dest = nullptr;
    if (const int rc =
            sqlite3_open_v2(path.c_str(), &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
        rc != SQLITE_OK) {
      const Error e = sqlite_failure(dest, rc, "cannot create backup database " + path);
      sqlite3_close(dest);
      throw e;
    }
    std::unique_lock lock(mutex_);
    sqlite3_backup* backup = sqlite3_backup_init(dest, "main", db_, "main");
    if (!backup) {
      const Error e = sqlite_failure(dest, sqlite3_errcode(dest), "cannot start the backup to " + path);
      sqlite3_close(dest);
      throw e;
    }
    int rc = SQLITE_OK;
    do {
      rc = sqlite3_backup_step(backup, 256);
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        lock.unlock();  // let this process's own writers go on between steps
        sqlite3_sleep(20);
        lock.lock();
      }
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(backup);
    lock.unlock();
    if (rc != SQLITE_DONE) {
      const Error e = sqlite_failure(dest, rc, "backup to " + path);
      sqlite3_close(dest);
      throw e;
    }
    sqlite3_close(dest);
  }

  CompactResult compact() override {
    std::lock_guard lock(mutex_);
    CompactResult result;
    result.bytes_before = bytes_on_disk();
    exec("VACUUM");
    // VACUUM's pages go through the write-ahead log: without this the log stays as large as the
    // file until the next checkpoint. Readers in other processes may hold it back; then later.
    exec("PRAGMA wal_checkpoint(TRUNCATE)");
    result.bytes_after = bytes_on_disk();
    return result;
  }

 private:
  uint64_t bytes_on_disk() const {
    std::error_code ec;
    uint64_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      const auto size = std::filesystem::file_size(path_ + suffix, ec);
      if (!ec) bytes += size;
    }
    return bytes;
  }

  class Transaction {
   public:
    explicit Transaction(SqliteStore* store) : store_(store) { store_->exec("BEGIN IMMEDIATE"); }
    void commit() {
      store_->exec("COMMIT");
      done_ = true;
    }
    ~Transaction() {
      if (!done_) sqlite3_exec(store_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

   private:
    SqliteStore* store_;
    bool done_ = false;
  };

  void exec(const char* sql) const {
    if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      throw sqlite_failure(db_, rc, "catalog database");
    }
  }

  static ModelVersion read_version(const Statement& s) {
    ModelVersion v;
    v.version = s.int64(0);
    v.created_at = s.int64(1);
    v.head_onnx = s.blob(2);
    v.classifier = s.text(3);
    v.info = stored_json_object(s.text(4));
    return v;
  }

  static void write_descriptor(Statement& s, int64_t version, int64_t key, const std::vector<float>& v) {
    s.bind(1, version).bind(2, key).bind_blob(3, v.data(), v.size() * sizeof(float));
    s.step();
    s.reset();
  }

  void write_descriptors(int64_t version, const KeyedDescriptors& descriptors) {
    Statement s(db_, "INSERT OR REPLACE INTO version_descriptors(version, key, descriptor) VALUES (?,?,?)");
    for (const auto& [key, v] : descriptors) write_descriptor(s, version, key, v);
  }

  void write_active_version(int64_t version) {
    Statement s(db_, "UPDATE meta SET value = ? WHERE key = 'active_version'");
    s.bind(1, std::to_string(version)).step();
  }

  void bump_revision() { exec("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"); }

  bool items_have_column(const std::string& name) const {
    Statement s(db_, "SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = ?");
    s.bind(1, name);
    return s.step() && s.int64(0) == 1;
  }

  // Up to schema 5 the frozen descriptor sat in the items row. They move a batch per
  // transaction: an interrupted upgrade keeps what it moved and the next open goes on (the
  // file says schema 6 from the first batch on, so an older Lookalike refuses it), and the
  // overflow pages a batch frees take the next batch's rows instead of growing the file by 22 GB.
  void move_frozen_descriptors() {
    // A warning, so that a CLI command (which logs warnings only) says why it is slow: about
    // 2,000 real items a second here, minutes at 1M.
    spdlog::warn(
        "catalog database {}: upgrading to schema 6, the frozen descriptors move out of the items "
        "table (once; about 2,000 items a second)",
        path_);
    Statement batch_end(db_,
                        "SELECT MAX(key) FROM (SELECT key FROM items WHERE key > ? ORDER BY key LIMIT 256)");
    Statement move(
        db_,
        "INSERT OR REPLACE INTO frozen_descriptors(key, descriptor) SELECT key, descriptor FROM items "
        "WHERE key > ?1 AND key <= ?2 AND length(descriptor) > 0");
    Statement empty(
        db_, "UPDATE items SET descriptor = x'' WHERE key > ?1 AND key <= ?2 AND length(descriptor) > 0");
    for (int64_t done = 0;;) {
      Transaction tx(this);
      batch_end.bind(1, done);
      const bool more = batch_end.step() && !batch_end.is_null(0);
      const int64_t last = more ? batch_end.int64(0) : 0;
      batch_end.reset();
      if (!more) break;
      for (Statement* s : {&move, &empty}) {
        s->bind(1, done).bind(2, last).step();
        s->reset();
      }
      tx.commit();
      done = last;
    }
    Transaction tx(this);
    exec("ALTER TABLE items DROP COLUMN descriptor");
    tx.commit();
    spdlog::info("catalog database {}: frozen descriptors moved", path_);
  }

  // A database from a newer Lookalike, or another program's database, is refused untouched.
  // Returns the schema version found: one before 6 is upgraded by the caller (a new database
  // counts as the current one).
  int64_t check_schema(const std::string& path) {
    Statement version(db_, "PRAGMA user_version");
    version.step();
    const int64_t found = version.int64(0);
    Statement tables(db_, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'");
    tables.step();
    const bool empty = tables.int64(0) == 0;
    if (empty) {
      exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
      return kSchemaVersion;
    }
    if (found < 1 || found > kSchemaVersion) {
      throw Error(ErrorCode::kCorruptStore, path + " has schema version " + std::to_string(found) +
                                                ", expected " + std::to_string(kSchemaVersion));
    }
    return found;
  }

  template <typename Bind>
  std::optional<Item> one(const std::string& sql, Bind bind) const {
    std::lock_guard lock(mutex_);
    Statement s(db_, sql.c_str());
    bind(s);
    if (!s.step()) return std::nullopt;
    return read_item(s);
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mutex_;
};

// A fresh catalog written with explicit keys: the triggers count the categories as the rows
// arrive, and sqlite_sequence is set last, so AUTOINCREMENT goes on from the original's counters.
class SqliteCopy final : public SqliteCatalogCopy {
 public:
  explicit SqliteCopy(const std::string& path) {
    open_sqlite_store(path);  // creates the schema
    if (const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr); rc != SQLITE_OK) {
      const Error e = sqlite_failure(db_, rc, "cannot open " + path);
      sqlite3_close(db_);
      throw e;
    }
    if (const int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      const Error e = sqlite_failure(db_, rc, "cannot write " + path);
      sqlite3_close(db_);
      throw e;
    }
  }
  ~SqliteCopy() override {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

  void item(const Item& it, std::string_view descriptor, std::string_view colours) override {
    Statement s(db_,
                "INSERT INTO items(key, id, category, file_name, source, sha256, image_path, width, height, "
                "added_at, title, price, url, attributes, colours) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    s.bind(1, it.key).bind(2, it.id).bind(3, it.category).bind(4, it.file_name).bind(5, it.source);
    s.bind(6, it.sha256).bind(7, it.image_path).bind(8, int64_t{it.width}).bind(9, int64_t{it.height});
    s.bind(10, it.added_at).bind(11, it.metadata.title).bind(12, it.metadata.price).bind(13, it.metadata.url);
    s.bind(14, it.metadata.attributes.dump());
    if (!colours.empty()) s.bind_blob(15, colours.data(), colours.size());
    s.step();
    Statement frozen(db_, "INSERT INTO frozen_descriptors(key, descriptor) VALUES (?,?)");
    write_frozen_descriptor(frozen, it.key, descriptor.data(), descriptor.size());
  }

  void version_descriptor(int64_t version, int64_t key, std::string_view descriptor) override {
    Statement s(db_, "INSERT INTO version_descriptors(version, key, descriptor) VALUES (?,?,?)");
    s.bind(1, version).bind(2, key).bind_blob(3, descriptor.data(), descriptor.size());
    s.step();
  }

  void model_version(const ModelVersion& v) override {
    Statement s(
        db_,
        "INSERT INTO model_versions(version, created_at, head_onnx, classifier, info) VALUES (?,?,?,?,?)");
    s.bind(1, v.version).bind(2, v.created_at).bind_blob(3, v.head_onnx.data(), v.head_onnx.size());
    s.bind(4, v.classifier).bind(5, v.info.dump());
    s.step();
  }

  void blob(const std::string& name, std::string_view value) override {
    Statement s(db_, "INSERT INTO blobs(name, value) VALUES (?,?)");
    s.bind(1, name).bind_blob(2, value.data(), value.size());
    s.step();
  }

  void copy_pair(const CopyPair& p) override {
    Statement s(db_, "INSERT INTO copy_pairs(a, b, correlation, structure) VALUES (?,?,?,?)");
    s.bind(1, p.a).bind(2, p.b).bind(3, std::optional<double>(p.correlation));
    s.bind(4, std::optional<double>(p.structure)).step();
  }

  void copy_checked(int64_t key) override {
    Statement s(db_, "INSERT INTO copy_checked(key) VALUES (?)");
    s.bind(1, key).step();
  }

  void counters(int64_t revision, int64_t active_version, int64_t last_item_key,
                int64_t last_model_version) override {
    for (const auto& [key, value] : {std::pair{"revision", revision}, {"active_version", active_version}}) {
      Statement s(db_, "UPDATE meta SET value = ?2 WHERE key = ?1");
      s.bind(1, std::string(key)).bind(2, std::to_string(value)).step();
    }
    exec("DELETE FROM sqlite_sequence WHERE name IN ('items', 'model_versions')");
    for (const auto& [table, last] :
         {std::pair{"items", last_item_key}, {"model_versions", last_model_version}}) {
      Statement s(db_, "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)");
      s.bind(1, std::string(table)).bind(2, last).step();
    }
  }

  void commit() override {
    exec("COMMIT");
    committed_ = true;
  }

 private:
  void exec(const char* sql) {
    if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      throw sqlite_failure(db_, rc, "catalog copy");
    }
  }

  sqlite3* db_ = nullptr;
  bool committed_ = false;
};

}  // namespace

std::unique_ptr<CatalogStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

std::unique_ptr<SqliteCatalogCopy> create_sqlite_catalog_copy(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) || ec)
    throw Error(ErrorCode::kConflict, "cannot create the catalog copy " + path + ": it exists already");
  return std::make_unique<SqliteCopy>(path);
}

}  // namespace lookalike

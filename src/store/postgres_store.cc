// The catalog in PostgreSQL (15 or later), through libpq: the same tables, counters and
// transactions as sqlite_store.cc, so that several processes and machines share one catalog.
#include <libpq-fe.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <regex>
#include <thread>
#include <unordered_map>

#include "common/error.h"
#include "store/catalog_store.h"
#include "store/postgres_connection.h"
#include "store/sqlite_catalog_copy.h"
#include "store/stored_json.h"

namespace lookalike {
namespace {

using namespace pg;  // NOLINT: the store is written in terms of its connection layer

// Descriptors and colour signatures are bytea holding the host's float32 bytes, exactly what
// the SQLite store keeps in its BLOBs: the same catalog in either store gives bit-identical
// vectors, hence the same search order, and backup_to copies them without conversion.
static_assert(std::endian::native == std::endian::little, "descriptors are stored as little-endian float32");

// 1: the catalog; 2: and its change log (created on open of a version-1 database).
constexpr int64_t kSchemaVersion = 2;
// Channel of the NOTIFY every writing transaction sends at commit (payload: its revision).
constexpr const char* kChangeChannel = "lookalike_changes";
// pg_advisory_xact_lock key ("Lookalik"): two processes opening an empty database at once
// would otherwise both run CREATE TABLE IF NOT EXISTS and one would fail on the catalog rows.
constexpr int64_t kSchemaLock = 0x4c6f6f6b616c696b;

// Item keys and version numbers come from counters in `meta`, raised in the writing
// transaction, as SQLite's AUTOINCREMENT: never reused, and a rolled-back write takes none. The
// category counts are kept by triggers, like SQLite's. Text that is compared or sorted is
// COLLATE "C" so that it sorts by bytes as in SQLite, whatever the database's locale.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS items(
  key bigint PRIMARY KEY,
  id text COLLATE "C" NOT NULL UNIQUE,
  category text COLLATE "C" NOT NULL DEFAULT '',
  file_name text COLLATE "C" NOT NULL,
  source text NOT NULL DEFAULT '',
  sha256 text COLLATE "C" NOT NULL,
  image_path text NOT NULL,
  width integer NOT NULL,
  height integer NOT NULL,
  added_at bigint NOT NULL,
  title text NOT NULL DEFAULT '',
  price double precision,
  url text NOT NULL DEFAULT '',
  attributes text NOT NULL DEFAULT '{}',  -- JSON text as written: reads back the same nlohmann::json
  descriptor bytea NOT NULL,
  colours bytea);  -- float32 {share, L, a, b} rows (image/product_colour.h); NULL: not measured
CREATE INDEX IF NOT EXISTS items_by_file ON items(category, file_name);
CREATE INDEX IF NOT EXISTS items_by_hash ON items(sha256);
CREATE INDEX IF NOT EXISTS items_by_category ON items(category, key);
CREATE TABLE IF NOT EXISTS category_counts(category text COLLATE "C" PRIMARY KEY, count bigint NOT NULL);
CREATE OR REPLACE FUNCTION lookalike_count_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE category_counts SET count = count - 1 WHERE category = OLD.category;
    DELETE FROM category_counts WHERE category = OLD.category AND count <= 0;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO category_counts(category, count) VALUES (NEW.category, 1)
      ON CONFLICT (category) DO UPDATE SET count = category_counts.count + 1;
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER items_counted AFTER INSERT OR DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION lookalike_count_items();
CREATE OR REPLACE TRIGGER items_recategorised AFTER UPDATE OF category ON items
  FOR EACH ROW WHEN (OLD.category IS DISTINCT FROM NEW.category) EXECUTE FUNCTION lookalike_count_items();
CREATE TABLE IF NOT EXISTS blobs(name text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
CREATE TABLE IF NOT EXISTS model_versions(
  version bigint PRIMARY KEY,
  created_at bigint NOT NULL,
  head_onnx bytea NOT NULL,
  classifier text NOT NULL,
  info text NOT NULL);
CREATE TABLE IF NOT EXISTS version_descriptors(
  version bigint NOT NULL,
  key bigint NOT NULL,
  descriptor bytea NOT NULL,
  PRIMARY KEY(version, key));
CREATE TABLE IF NOT EXISTS copy_pairs(
  a bigint NOT NULL,
  b bigint NOT NULL,
  correlation double precision NOT NULL,
  structure double precision NOT NULL,
  PRIMARY KEY(a, b),
  CHECK (a < b));
CREATE INDEX IF NOT EXISTS copy_pairs_by_b ON copy_pairs(b);
CREATE TABLE IF NOT EXISTS copy_checked(key bigint PRIMARY KEY);
-- A removed item takes its trained descriptors, copy pairs and copy check with it.
CREATE OR REPLACE FUNCTION lookalike_forget_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM version_descriptors WHERE key = OLD.key;
  DELETE FROM copy_pairs WHERE a = OLD.key OR b = OLD.key;
  DELETE FROM copy_checked WHERE key = OLD.key;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER items_forgotten AFTER DELETE ON items
  FOR EACH ROW EXECUTE FUNCTION lookalike_forget_item();
INSERT INTO meta(key, value) VALUES ('revision', '0'), ('active_version', '0'), ('last_item_key', '0'),
  ('last_model_version', '0') ON CONFLICT (key) DO NOTHING;
)sql";

// The change log replicas follow (StoreChange). A row is written by the transaction that raises
// the revision, which every writer takes in the same order (the revision row's lock): revisions
// are assigned in commit order, so a reader of "revision > mine" that saw revision R committed
// has also seen every row up to R. (A bigserial position would be taken before commit, in no
// particular order, and a reader would skip rows still to commit.)
constexpr const char* kChangeLogSchema = R"sql(
CREATE TABLE IF NOT EXISTS changes(
  revision bigint NOT NULL,
  kind smallint NOT NULL,
  key bigint NOT NULL,
  PRIMARY KEY(revision, kind, key));
)sql";

constexpr const char* kItemColumns =
    "key, id, category, file_name, source, sha256, image_path, width, height, added_at, title, price, url, "
    "attributes, colours";

Item read_item(const Result& r, int row) {
  Item item;
  item.key = r.int64(row, 0);
  item.id = r.text(row, 1);
  item.category = r.text(row, 2);
  item.file_name = r.text(row, 3);
  item.source = r.text(row, 4);
  item.sha256 = r.text(row, 5);
  item.image_path = r.text(row, 6);
  item.width = static_cast<int>(r.int64(row, 7));
  item.height = static_cast<int>(r.int64(row, 8));
  item.added_at = r.int64(row, 9);
  item.metadata.title = r.text(row, 10);
  if (!r.is_null(row, 11)) item.metadata.price = r.real(row, 11);
  item.metadata.url = r.text(row, 12);
  item.metadata.attributes = stored_json_object(r.bytes(row, 13));
  if (!r.is_null(row, 14)) item.colours = r.floats(row, 14);
  return item;
}

ModelVersion read_version(const Result& r, int row) {
  ModelVersion v;
  v.version = r.int64(row, 0);
  v.created_at = r.int64(row, 1);
  v.head_onnx = r.text(row, 2);
  v.classifier = r.text(row, 3);
  v.info = stored_json_object(r.bytes(row, 4));
  return v;
}

constexpr size_t kRowsPerStatement = 500;

std::vector<int64_t> keys_of(const KeyedDescriptors& rows) {
  std::vector<int64_t> keys;
  for (const auto& row : rows) keys.push_back(row.first);
  return keys;
}

int64_t clamp(size_t n) {
  return static_cast<int64_t>(std::min<size_t>(n, std::numeric_limits<int64_t>::max()));
}

// All access goes through one connection guarded by a mutex, as in the SQLite store: writers
// are serialised by the database anyway and reads are point lookups on indexes. Open one
// store per process (or per thread that needs its own connection, as the tests do).
class PostgresStore final : public CatalogStore {
 public:
  PostgresStore(const std::string& conninfo, PostgresStoreOptions options)
      : conninfo_(conninfo), options_(options), conn_(conninfo) {
    try {
      create_schema();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kCorruptStore) throw;
      throw Error(ErrorCode::kCorruptStore,
                  conn_.where() + " is not a usable Lookalike catalog: " + e.what());
    }
  }

  std::vector<int64_t> insert(const std::vector<NewItem>& items) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    const int64_t last = take_numbers("last_item_key", static_cast<int64_t>(items.size()));
    std::vector<int64_t> keys;
    for (const auto& n : items) {
      const Item& it = n.item;
      keys.push_back(last - static_cast<int64_t>(items.size()) + 1 + static_cast<int64_t>(keys.size()));
      Params p;
      p.int8(keys.back()).text(it.id).text(it.category).text(it.file_name).text(it.source).text(it.sha256);
      p.text(it.image_path).int8(it.width).int8(it.height).int8(it.added_at).text(it.metadata.title);
      p.float8(it.metadata.price).text(it.metadata.url).text(it.metadata.attributes.dump());
      p.floats_or_null(n.descriptor).floats_or_null(it.colours);  // no descriptor: refused, as in SQLite
      conn_.exec(
          "INSERT INTO items(key, id, category, file_name, source, sha256, image_path, width, height, "
          "added_at, title, price, url, attributes, descriptor, colours) "
          "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)",
          p);
      for (const auto& [version, v] : n.version_descriptors) write_descriptors(version, {{keys.back(), v}});
    }
    bump_revision(StoreChange::Kind::kAdded, keys);
    tx.commit();
    return keys;
  }

  bool remove(const std::string& id) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    // The items_forgotten trigger removes its trained descriptors and copy records.
    const Result removed = conn_.exec("DELETE FROM items WHERE id = $1 RETURNING key", Params().text(id));
    if (removed.rows() == 0) return false;
    bump_revision(StoreChange::Kind::kRemoved, {removed.int64(0, 0)});
    tx.commit();
    return true;
  }

  bool update_metadata(const std::string& id, const ItemMetadata& m,
                       const std::optional<std::string>& category) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    Params p;
    p.text(m.title).float8(m.price).text(m.url).text(m.attributes.dump()).optional_text(category).text(id);
    const Result updated = conn_.exec(
        "UPDATE items SET title = $1, price = $2, url = $3, attributes = $4, "
        "category = COALESCE($5, category) WHERE id = $6 RETURNING key",
        p);
    if (updated.rows() == 0) return false;
    bump_revision(StoreChange::Kind::kUpdated, {updated.int64(0, 0)});
    tx.commit();
    return true;
  }

  std::optional<Item> find(const std::string& id) const override {
    return one(std::string("SELECT ") + kItemColumns + " FROM items WHERE id = $1", Params().text(id));
  }
  std::optional<Item> find_by_key(int64_t key) const override {
    return one(std::string("SELECT ") + kItemColumns + " FROM items WHERE key = $1", Params().int8(key));
  }
  // The smallest key first, as SQLite's index order gives it.
  std::optional<Item> find_by_file(const std::string& category, const std::string& file_name) const override {
    return one(std::string("SELECT ") + kItemColumns +
                   " FROM items WHERE category = $1 AND file_name = $2 ORDER BY key LIMIT 1",
               Params().text(category).text(file_name));
  }
  std::optional<int64_t> find_by_hash(const std::string& sha256) const override {
    std::lock_guard lock(mutex_);
    const Result r =
        conn_.exec("SELECT key FROM items WHERE sha256 = $1 ORDER BY key LIMIT 1", Params().text(sha256));
    if (r.rows() == 0) return std::nullopt;
    return r.int64(0, 0);
  }

  std::vector<Item> list(const ListQuery& q) const override {
    std::lock_guard lock(mutex_);
    // Two statements rather than "($3 = '' OR category = $3)", which no index can serve.
    const bool all = q.category.empty();
    Params p;
    p.int8(clamp(q.limit)).int8(clamp(q.offset));
    if (!all) p.text(q.category);
    const Result r = conn_.exec(std::string("SELECT ") + kItemColumns + " FROM items" +
                                    (all ? "" : " WHERE category = $3") + " ORDER BY key LIMIT $1 OFFSET $2",
                                p);
    std::vector<Item> items;
    for (int i = 0; i < r.rows(); ++i) items.push_back(read_item(r, i));
    return items;
  }

  std::vector<Item> all_items() const override {
    return list(ListQuery{"", 0, static_cast<size_t>(INT64_MAX)});
  }

  std::vector<Item> items_after(int64_t after, size_t limit) const override {
    std::lock_guard lock(mutex_);
    const Result r =
        conn_.exec(std::string("SELECT ") + kItemColumns + " FROM items WHERE key > $1 ORDER BY key LIMIT $2",
                   Params().int8(after).int8(clamp(limit)));
    std::vector<Item> items;
    for (int i = 0; i < r.rows(); ++i) items.push_back(read_item(r, i));
    return items;
  }

  size_t count() const override {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(
        conn_.exec("SELECT COALESCE(SUM(count), 0)::bigint FROM category_counts").int64(0, 0));
  }

  std::vector<CategoryCount> categories() const override {
    std::lock_guard lock(mutex_);
    const Result r =
        conn_.exec("SELECT category, count FROM category_counts WHERE category <> '' ORDER BY category");
    std::vector<CategoryCount> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back({r.text(i, 0), static_cast<size_t>(r.int64(i, 1))});
    return out;
  }

  std::vector<float> descriptor(int64_t version, int64_t key) const override {
    std::lock_guard lock(mutex_);
    const Result r =
        version == 0
            ? conn_.exec("SELECT descriptor FROM items WHERE key = $1", Params().int8(key))
            : conn_.exec("SELECT descriptor FROM version_descriptors WHERE version = $1 AND key = $2",
                         Params().int8(version).int8(key));
    if (r.rows() == 0) return {};
    return r.floats(0, 0);
  }

  void for_each_descriptor(int64_t version,
                           const std::function<void(int64_t, const float*, size_t)>& fn) const override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kSnapshot);
    Params p;
    if (version != 0) p.int8(version);
    for_each_batch(conn_,
                   version == 0
                       ? "SELECT key, descriptor FROM items ORDER BY key"
                       : "SELECT key, descriptor FROM version_descriptors WHERE version = $1 ORDER BY key",
                   p, [&](const Result& r) {
                     for (int i = 0; i < r.rows(); ++i) {
                       const auto v = r.floats(i, 1);
                       fn(r.int64(i, 0), v.data(), v.size());
                     }
                   });
    tx.commit();
  }

  KeyedDescriptors descriptor_page(int64_t version, int64_t first_key, int64_t last_key,
                                   size_t limit) const override {
    std::lock_guard lock(mutex_);
    Params p;
    p.int8(first_key).int8(last_key).int8(clamp(limit));
    if (version != 0) p.int8(version);
    const Result r =
        conn_.exec(version == 0 ? "SELECT key, descriptor FROM items WHERE key BETWEEN $1 AND $2 "
                                  "ORDER BY key LIMIT $3"
                                : "SELECT key, descriptor FROM version_descriptors WHERE version = $4 "
                                  "AND key BETWEEN $1 AND $2 ORDER BY key LIMIT $3",
                   p);
    KeyedDescriptors page;
    for (int i = 0; i < r.rows(); ++i) page.emplace_back(r.int64(i, 0), r.floats(i, 1));
    return page;
  }

  std::vector<int64_t> keys_missing_descriptor(int64_t version) const override {
    if (version == 0) return {};
    return keys(
        "SELECT key FROM items WHERE NOT EXISTS (SELECT 1 FROM version_descriptors d WHERE d.version = $1 "
        "AND d.key = items.key) ORDER BY key",
        Params().int8(version));
  }

  std::vector<int64_t> keys_missing_colours() const override {
    return keys("SELECT key FROM items WHERE colours IS NULL ORDER BY key", {});
  }

  void put_colours(const KeyedDescriptors& colours) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    for (const auto& [key, signature] : colours)
      conn_.exec("UPDATE items SET colours = $1 WHERE key = $2",
                 Params().floats_or_null(signature).int8(key));
    bump_revision(StoreChange::Kind::kUpdated, keys_of(colours));
    tx.commit();
  }

  std::vector<int64_t> keys_unchecked_for_copies() const override {
    return keys("SELECT key FROM items WHERE key NOT IN (SELECT key FROM copy_checked) ORDER BY key", {});
  }

  void put_copy_checks(const std::vector<int64_t>& checked, const std::vector<CopyPair>& pairs) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    // An item removed since it was compared is left out: the trigger has already forgotten it.
    for (const int64_t key : checked) {
      conn_.exec("INSERT INTO copy_checked(key) SELECT key FROM items WHERE key = $1 ON CONFLICT DO NOTHING",
                 Params().int8(key));
    }
    for (const auto& pair : pairs) {
      Params p;
      p.int8(std::min(pair.a, pair.b))
          .int8(std::max(pair.a, pair.b))
          .float8(pair.correlation)
          .float8(pair.structure);
      conn_.exec(
          "INSERT INTO copy_pairs(a, b, correlation, structure) SELECT $1, $2, $3, $4 "
          "WHERE (SELECT COUNT(*) FROM items WHERE key IN ($1, $2)) = 2 ON CONFLICT (a, b) "
          "DO UPDATE SET correlation = EXCLUDED.correlation, structure = EXCLUDED.structure",
          p);
    }
    bump_revision(StoreChange::Kind::kCopies);
    tx.commit();
  }

  std::vector<CopyPair> copy_pairs() const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec("SELECT a, b, correlation, structure FROM copy_pairs ORDER BY a, b");
    std::vector<CopyPair> pairs;
    for (int i = 0; i < r.rows(); ++i) {
      pairs.push_back(
          {r.int64(i, 0), r.int64(i, 1), static_cast<float>(r.real(i, 2)), static_cast<float>(r.real(i, 3))});
    }
    return pairs;
  }

  void forget_copy_checks() override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    conn_.exec_script("DELETE FROM copy_pairs; DELETE FROM copy_checked");
    bump_revision(StoreChange::Kind::kCopies);
    tx.commit();
  }

  void put_descriptors(int64_t version, const KeyedDescriptors& descriptors) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    write_descriptors(version, descriptors);
    // Descriptors of a version nobody serves (workers filling in a new version before it is
    // activated) change nothing a replica holds: no revision, so replicas do not reload for
    // each. Activating the version raises it.
    if (version == counter("active_version")) bump_revision(StoreChange::Kind::kReload);
    tx.commit();
  }

  int64_t add_model_version(const ModelVersion& v, const KeyedDescriptors& descriptors,
                            bool activate) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    const int64_t version = take_numbers("last_model_version", 1);
    Params p;
    p.int8(version).int8(v.created_at).bytes(v.head_onnx).text(v.classifier).text(v.info.dump());
    conn_.exec(
        "INSERT INTO model_versions(version, created_at, head_onnx, classifier, info) "
        "VALUES ($1, $2, $3, $4, $5)",
        p);
    write_descriptors(version, descriptors);
    if (activate) write_active_version(version);
    bump_revision(StoreChange::Kind::kReload);
    tx.commit();
    return version;
  }

  std::vector<ModelVersion> model_versions() const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(
        "SELECT version, created_at, head_onnx, classifier, info FROM model_versions ORDER BY version");
    std::vector<ModelVersion> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_version(r, i));
    return out;
  }

  std::optional<ModelVersion> model_version(int64_t version) const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(
        "SELECT version, created_at, head_onnx, classifier, info FROM model_versions WHERE version = $1",
        Params().int8(version));
    if (r.rows() == 0) return std::nullopt;
    return read_version(r, 0);
  }

  int64_t active_version() const override {
    std::lock_guard lock(mutex_);
    return counter("active_version");
  }

  void set_evaluation(int64_t version, const nlohmann::json& figures) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    if (version == 0) {
      conn_.exec(
          "INSERT INTO blobs(name, value) VALUES ('frozen_evaluation', $1) "
          "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
          Params().bytes(figures.dump()));
    } else {
      const Result r =
          conn_.exec("SELECT info FROM model_versions WHERE version = $1 FOR UPDATE", Params().int8(version));
      if (r.rows() == 0) throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(version));
      auto info = stored_json_object(r.bytes(0, 0));
      info["evaluation"] = figures;
      conn_.exec("UPDATE model_versions SET info = $2 WHERE version = $1",
                 Params().int8(version).text(info.dump()));
    }
    tx.commit();  // figures about the catalog, not a change of it: the revision stays
  }

  nlohmann::json evaluation(int64_t version) const override {
    std::lock_guard lock(mutex_);
    const Result r = version == 0 ? conn_.exec("SELECT value FROM blobs WHERE name = 'frozen_evaluation'")
                                  : conn_.exec("SELECT info FROM model_versions WHERE version = $1",
                                               Params().int8(version));
    if (r.rows() == 0) return nullptr;
    auto json = nlohmann::json::parse(r.bytes(0, 0), nullptr, /*allow_exceptions=*/false);
    if (version == 0) return json.is_discarded() ? nullptr : json;
    return json.is_object() && json.contains("evaluation") ? json["evaluation"] : nullptr;
  }

  void set_active_version(int64_t version) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    if (version != 0 && !version_exists(version))
      throw Error(ErrorCode::kNotFound, "no model version " + std::to_string(version));
    write_active_version(version);
    bump_revision(StoreChange::Kind::kReload);
    tx.commit();
  }

  void remove_model_version(int64_t version) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    if (!version_exists(version))
      throw Error(ErrorCode::kNotFound, "no trained model version " + std::to_string(version));
    if (counter("active_version") == version) {
      throw Error(ErrorCode::kConflict, "model version " + std::to_string(version) +
                                            " is active; activate another one first (lookalike model use N)");
    }
    conn_.exec("DELETE FROM version_descriptors WHERE version = $1", Params().int8(version));
    conn_.exec("DELETE FROM model_versions WHERE version = $1", Params().int8(version));
    tx.commit();  // as in the SQLite store: the revision stays
  }

  std::optional<std::string> get_blob(const std::string& name) const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec("SELECT value FROM blobs WHERE name = $1", Params().text(name));
    if (r.rows() == 0) return std::nullopt;
    return r.text(0, 0);
  }

  void put_blobs(const std::vector<std::pair<std::string, std::string>>& blobs) override {
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kWrite);
    for (const auto& [name, value] : blobs) {
      conn_.exec(
          "INSERT INTO blobs(name, value) VALUES ($1, $2) "
          "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
          Params().text(name).bytes(value));
    }
    bump_revision(StoreChange::Kind::kReload);
    tx.commit();
  }

  std::optional<std::vector<StoreChange>> changes(int64_t after, int64_t upto) const override {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(
        "SELECT revision, kind, key FROM changes WHERE revision > $1 AND revision <= $2 ORDER BY revision, "
        "key",
        Params().int8(after).int8(upto));
    std::vector<StoreChange> out;
    for (int i = 0; i < r.rows(); ++i) {
      const int64_t kind = r.int64(i, 1);
      if (kind < 0 || kind > static_cast<int64_t>(StoreChange::Kind::kReload))
        throw Error(ErrorCode::kCorruptStore, "change log: unknown kind " + std::to_string(kind));
      out.push_back({r.int64(i, 0), static_cast<StoreChange::Kind>(kind), r.int64(i, 2)});
    }
    // The log starts with the schema that keeps it: a catalog written before has no rows for
    // its older revisions, and a reader that far behind must reload.
    if (upto > after && (out.empty() || out.front().revision != after + 1)) return std::nullopt;
    return out;
  }

  int64_t revision() const override {
    std::lock_guard lock(mutex_);
    return counter("revision");
  }

  // PostgreSQL checks its own pages and constraints; these are the rules it cannot know. Each
  // query returns a line per problem found.
  std::string describe() const override { return "postgresql " + conn_.where(); }

  std::vector<std::string> integrity_problems() const override {
    static constexpr const char* kChecks[] = {
        "SELECT 'the category counts disagree with the items in ' || COUNT(*) || ' categories' "
        "FROM (SELECT category, COUNT(*) AS n FROM items GROUP BY category) AS c "
        "FULL JOIN category_counts AS m USING (category) "
        "WHERE c.n IS DISTINCT FROM m.count HAVING COUNT(*) > 0",

        "SELECT COUNT(*) || ' copy pairs name a missing item' FROM copy_pairs p "
        "WHERE NOT EXISTS (SELECT 1 FROM items WHERE key = p.a) "
        "OR NOT EXISTS (SELECT 1 FROM items WHERE key = p.b) HAVING COUNT(*) > 0",

        "SELECT COUNT(*) || ' copy checks name a missing item' FROM copy_checked c "
        "WHERE NOT EXISTS (SELECT 1 FROM items WHERE key = c.key) HAVING COUNT(*) > 0",

        "SELECT COUNT(*) || ' trained descriptors belong to a missing item or version' "
        "FROM version_descriptors d WHERE NOT EXISTS (SELECT 1 FROM items WHERE key = d.key) "
        "OR NOT EXISTS (SELECT 1 FROM model_versions WHERE version = d.version) HAVING COUNT(*) > 0",

        "SELECT COUNT(*) || ' items have a descriptor or colours that are not whole float32 vectors' "
        "FROM items WHERE octet_length(descriptor) % 4 <> 0 OR octet_length(colours) % 16 <> 0 "
        "HAVING COUNT(*) > 0",

        "SELECT 'the frozen descriptors have ' || COUNT(DISTINCT octet_length(descriptor)) || "
        "' different sizes' FROM items HAVING COUNT(DISTINCT octet_length(descriptor)) > 1",

        "SELECT 'the descriptors of model version ' || version || ' have ' || "
        "COUNT(DISTINCT octet_length(descriptor)) || ' different sizes' FROM version_descriptors "
        "GROUP BY version HAVING COUNT(DISTINCT octet_length(descriptor)) > 1 ORDER BY version",

        "SELECT 'the item key counter (' || value || ') is behind the largest key' FROM meta "
        "WHERE key = 'last_item_key' AND value::bigint < (SELECT COALESCE(MAX(key), 0) FROM items)",

        "SELECT 'the model version counter (' || value || ') is behind the largest version' FROM meta "
        "WHERE key = 'last_model_version' "
        "AND value::bigint < (SELECT COALESCE(MAX(version), 0) FROM model_versions)",

        "SELECT 'the active model version ' || value || ' does not exist' FROM meta "
        "WHERE key = 'active_version' AND value <> '0' "
        "AND NOT EXISTS (SELECT 1 FROM model_versions WHERE version::text = meta.value)",
    };
    std::lock_guard lock(mutex_);
    Transaction tx(conn_, Transaction::Kind::kSnapshot);
    std::vector<std::string> problems;
    for (const char* sql : kChecks) {
      const Result r = conn_.exec(sql);
      for (int i = 0; i < r.rows(); ++i) problems.push_back("catalog database: " + r.text(i, 0));
    }
    tx.commit();
    return problems;
  }

  CompactResult compact() override {
    throw Error(ErrorCode::kInvalidArgument,
                "compact rewrites a SQLite catalog file; PostgreSQL keeps each table in its own files and "
                "its autovacuum reclaims space (VACUUM FULL, run by the database's owner, rewrites them)");
  }

  // One REPEATABLE READ snapshot on a connection of its own (this store's other callers go on)
  // copied into a new SQLite catalog with the same keys, version numbers and counters. The
  // file appears complete under `path` or not at all.
  void backup_to(const std::string& path) const override {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(path, ec))
      throw Error(ErrorCode::kConflict,
                  "backup destination " + path + " exists; a backup goes to a new file");
    const std::string partial = path + ".partial";
    const auto remove_partial = [&] {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(partial + suffix, ec);
    };
    remove_partial();
    try {
      Connection source(conninfo_);
      {
        auto copy = create_sqlite_catalog_copy(partial);
        Transaction tx(source, Transaction::Kind::kSnapshot);
        copy_snapshot(source, *copy);
        tx.commit();
        copy->commit();
      }
      fs::rename(partial, path);
    } catch (...) {
      remove_partial();
      throw;
    }
  }

 private:
  static void copy_snapshot(Connection& source, SqliteCatalogCopy& copy) {
    for_each_batch(source, std::string("SELECT ") + kItemColumns + ", descriptor FROM items ORDER BY key", {},
                   [&](const Result& r) {
                     for (int i = 0; i < r.rows(); ++i)
                       copy.item(read_item(r, i), r.bytes(i, 15), r.is_null(i, 14) ? "" : r.bytes(i, 14));
                   });
    for_each_batch(source, "SELECT version, key, descriptor FROM version_descriptors ORDER BY version, key",
                   {}, [&](const Result& r) {
                     for (int i = 0; i < r.rows(); ++i)
                       copy.version_descriptor(r.int64(i, 0), r.int64(i, 1), r.bytes(i, 2));
                   });
    for_each_batch(
        source,
        "SELECT version, created_at, head_onnx, classifier, info FROM model_versions ORDER BY version", {},
        [&](const Result& r) {
          for (int i = 0; i < r.rows(); ++i) copy.model_version(read_version(r, i));
        });
    for_each_batch(source, "SELECT name, value FROM blobs ORDER BY name", {}, [&](const Result& r) {
      for (int i = 0; i < r.rows(); ++i) copy.blob(r.text(i, 0), r.bytes(i, 1));
    });
    for_each_batch(source, "SELECT a, b, correlation, structure FROM copy_pairs ORDER BY a, b", {},
                   [&](const Result& r) {
                     for (int i = 0; i < r.rows(); ++i)
                       copy.copy_pair({r.int64(i, 0), r.int64(i, 1), static_cast<float>(r.real(i, 2)),
                                       static_cast<float>(r.real(i, 3))});
                   });
    for_each_batch(source, "SELECT key FROM copy_checked ORDER BY key", {}, [&](const Result& r) {
      for (int i = 0; i < r.rows(); ++i) copy.copy_checked(r.int64(i, 0));
    });
    const auto counter = [&](const char* key) {
      const Result r = source.exec("SELECT value::bigint FROM meta WHERE key = $1", Params().text(key));
      return r.rows() ? r.int64(0, 0) : 0;
    };
    copy.counters(counter("revision"), counter("active_version"), counter("last_item_key"),
                  counter("last_model_version"));
  }

  // Creates the tables in an empty database, under a lock that makes a second process opening
  // it at the same moment wait and then find them. A database holding other tables named like
  // ours, or a newer schema, is refused untouched.
  void create_schema() {
    Transaction tx(conn_, Transaction::Kind::kPlain);
    conn_.exec("SELECT pg_advisory_xact_lock($1)", Params().int8(kSchemaLock));
    const Result tables =
        conn_.exec("SELECT (to_regclass('meta') IS NOT NULL)::int, (to_regclass('items') IS NOT NULL)::int");
    if (tables.int64(0, 0) != 0) {
      const Result v = conn_.exec("SELECT value FROM meta WHERE key = 'schema_version'");
      const std::string found = v.rows() ? v.text(0, 0) : "none";
      if (found == "1") {  // before the change log: add it, nothing else changed
        conn_.exec_script(kChangeLogSchema);
        conn_.exec("UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                   Params().text(std::to_string(kSchemaVersion)));
      } else if (found != std::to_string(kSchemaVersion)) {
        throw Error(ErrorCode::kCorruptStore,
                    "schema version " + found + ", expected " + std::to_string(kSchemaVersion));
      }
      tx.commit();
      return;
    }
    if (tables.int64(0, 1) != 0)
      throw Error(ErrorCode::kCorruptStore, "it has an items table but no Lookalike schema version");
    conn_.exec_script(kSchema);
    conn_.exec_script(kChangeLogSchema);
    conn_.exec("INSERT INTO meta(key, value) VALUES ('schema_version', $1)",
               Params().text(std::to_string(kSchemaVersion)));
    tx.commit();
  }

  // Raises a counter in meta by n (in the open write transaction) and returns its new value.
  int64_t take_numbers(const char* key, int64_t n) {
    return conn_
        .exec("UPDATE meta SET value = (value::bigint + $2)::text WHERE key = $1 RETURNING value::bigint",
              Params().text(key).int8(n))
        .int64(0, 0);
  }

  int64_t counter(const char* key) const {
    const Result r = conn_.exec("SELECT value::bigint FROM meta WHERE key = $1", Params().text(key));
    if (r.rows() == 0) throw Error(ErrorCode::kCorruptStore, std::string("catalog database has no ") + key);
    return r.int64(0, 0);
  }

  bool version_exists(int64_t version) const {
    return conn_.exec("SELECT 1 FROM model_versions WHERE version = $1", Params().int8(version)).rows() != 0;
  }

  // Raises the revision in the open write transaction, logs what changed under it, and wakes
  // the listeners when the transaction commits (NOTIFY is delivered at commit, or never).
  void bump_revision(StoreChange::Kind kind, const std::vector<int64_t>& keys = {0}) {
    const int64_t revision =
        conn_
            .exec(
                "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'revision' "
                "RETURNING value::bigint")
            .int64(0, 0);
    // Every revision has a row, so that a follower can tell a complete log from a truncated one.
    const std::vector<int64_t> logged = keys.empty() ? std::vector<int64_t>{0} : keys;
    for (size_t start = 0; start < logged.size(); start += kRowsPerStatement) {
      std::string list;
      for (size_t i = start; i < std::min(logged.size(), start + kRowsPerStatement); ++i)
        list += (list.empty() ? "" : ",") + std::to_string(logged[i]);
      conn_.exec(
          "INSERT INTO changes(revision, kind, key) SELECT $1, $2, unnest(string_to_array($3, ','))::bigint "
          "ON CONFLICT DO NOTHING",
          Params().int8(revision).int8(static_cast<int64_t>(kind)).text(list));
    }
    prune_change_log(revision);
    conn_.exec("SELECT pg_notify($1, $2)", Params().text(kChangeChannel).text(std::to_string(revision)));
  }

  // Keeps the log to its last options_.change_log_revisions revisions, deleting the older ones
  // every hundredth of that (one range delete on the primary key, inside the writer's
  // transaction, so that two writers never prune at once).
  void prune_change_log(int64_t revision) {
    const int64_t keep = std::max<int64_t>(1, options_.change_log_revisions);
    if (revision <= keep || revision % std::max<int64_t>(1, keep / 100) != 0) return;
    conn_.exec("DELETE FROM changes WHERE revision <= $1", Params().int8(revision - keep));
  }

  void write_active_version(int64_t version) {
    conn_.exec("UPDATE meta SET value = $1 WHERE key = 'active_version'",
               Params().text(std::to_string(version)));
  }

  // Many rows per statement (a rebuild writes a million). As SQLite's INSERT OR REPLACE, a key
  // given twice keeps its last descriptor; unlike it, a key whose item is gone (removed by
  // another process meanwhile) is skipped rather than stored for no item.
  void write_descriptors(int64_t version, const KeyedDescriptors& descriptors) {
    std::unordered_map<int64_t, size_t> last;
    for (size_t i = 0; i < descriptors.size(); ++i) last[descriptors[i].first] = i;
    std::vector<size_t> rows;
    for (size_t i = 0; i < descriptors.size(); ++i) {
      if (last[descriptors[i].first] == i) rows.push_back(i);
    }
    for (size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
      Params p;
      p.int8(version);
      std::string values;
      for (size_t j = start; j < std::min(rows.size(), start + kRowsPerStatement); ++j) {
        const auto& [key, v] = descriptors[rows[j]];
        values += (j == start ? "($" : ", ($") + std::to_string(p.size() + 1) + ", $" +
                  std::to_string(p.size() + 2) + ")";
        p.int8(key).floats_or_null(v);
      }
      conn_.exec(
          "INSERT INTO version_descriptors(version, key, descriptor) SELECT $1, v.key, v.descriptor "
          "FROM (VALUES " +
              values +
              ") AS v(key, descriptor) WHERE EXISTS (SELECT 1 FROM items WHERE items.key = v.key) "
              "ON CONFLICT (version, key) DO UPDATE SET descriptor = EXCLUDED.descriptor",
          p);
    }
  }

  std::vector<int64_t> keys(const char* sql, const Params& params) const {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(sql, params);
    std::vector<int64_t> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.int64(i, 0));
    return out;
  }

  std::optional<Item> one(const std::string& sql, const Params& params) const {
    std::lock_guard lock(mutex_);
    const Result r = conn_.exec(sql, params);
    if (r.rows() == 0) return std::nullopt;
    return read_item(r, 0);
  }

  const std::string conninfo_;  // holds the password: never in a message
  const PostgresStoreOptions options_;
  mutable Connection conn_;
  mutable std::mutex mutex_;
};

// LISTEN on a connection of its own (a listening connection must not run the store's queries:
// notifications arrive between them). While the server is unreachable, wait() sleeps out its
// timeout and tries again on the next call.
class PostgresChangeListener final : public ChangeListener {
 public:
  explicit PostgresChangeListener(const std::string& conninfo) : conn_(conninfo) { listen(); }

  bool wait(int timeout_ms) override {
    try {
      if (!listening_) listen();
      return conn_.wait_for_notification(timeout_ms);
    } catch (const Error&) {
      listening_ = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
      return false;
    }
  }

 private:
  void listen() {
    conn_.exec(std::string("LISTEN ") + kChangeChannel);
    listening_ = true;
  }
  Connection conn_;
  bool listening_ = false;
};

}  // namespace

std::unique_ptr<ChangeListener> listen_for_changes(const std::string& spec) {
  for (const char* scheme : {"postgres://", "postgresql://"}) {
    if (spec.rfind(scheme, 0) == 0) return std::make_unique<PostgresChangeListener>(spec);
  }
  return nullptr;
}

std::unique_ptr<CatalogStore> open_postgres_store(const std::string& conninfo, PostgresStoreOptions options) {
  return std::make_unique<PostgresStore>(conninfo, options);
}

std::unique_ptr<CatalogStore> open_store(const std::string& spec) {
  for (const char* scheme : {"postgres://", "postgresql://"}) {
    if (spec.rfind(scheme, 0) == 0) return open_postgres_store(spec);
  }
  return open_sqlite_store(spec);
}

}  // namespace lookalike

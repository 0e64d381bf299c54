// Durable catalog storage: items with their metadata and raw descriptors, plus named blobs
// (PCA, classifier). The vector index is derived from this and can always be rebuilt from it.
// SQLite (sqlite_store.cc), embedded, the default; PostgreSQL (postgres_store.cc) for a catalog
// that several processes or machines share.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lookalike {

struct ItemMetadata {
  std::string title;
  std::optional<double> price;
  std::string url;
  nlohmann::json attributes = nlohmann::json::object();  // free-form string/number/bool values
};

struct Item {
  int64_t key = 0;         // internal, stable; the vector index id
  std::string id;          // external id, unique, URL-safe
  std::string category;    // empty when the catalog has no categories
  std::string file_name;   // original file name, for /static/img/{category}/{file}
  std::string source;      // where it was imported from (path), informational
  std::string sha256;      // of the image bytes
  std::string image_path;  // stored copy, relative to the data directory
  int width = 0;
  int height = 0;
  int64_t added_at = 0;  // unix seconds
  ItemMetadata metadata;
  // The product's dominant colours (image/product_colour.h dominant_colours); empty when not
  // measured yet (an item stored before colours were).
  std::vector<float> colours;
};

// Descriptors of several items, by item key.
using KeyedDescriptors = std::vector<std::pair<int64_t, std::vector<float>>>;

struct NewItem {
  Item item;                      // key is assigned by the store
  std::vector<float> descriptor;  // raw descriptor of the frozen recipe (model version 0)
  // Descriptors of trained versions, by version (the active one at least, when trained).
  std::vector<std::pair<int64_t, std::vector<float>>> version_descriptors;
};

// A trained model version (1, 2, ...): the exported head and its classifier. Version 0 is the
// frozen recipe (PCA-whitening + linear probe in the blobs), always present and never a row.
struct ModelVersion {
  int64_t version = 0;
  int64_t created_at = 0;                          // unix seconds
  std::string head_onnx;                           // model/head_model.h export
  std::string classifier;                          // SoftmaxClassifier JSON
  nlohmann::json info = nlohmann::json::object();  // training figures
};

// Two items whose photos are copies of one product shot (image/copy_fingerprint.h).
struct CopyPair {
  int64_t a = 0, b = 0;   // item keys; the store keeps a < b
  float correlation = 0;  // CopyComparison figures of the pair
  float structure = 0;
};

// One entry of a store's change log: what a committed write changed, under the revision it
// raised. Replicas follow the log to change their in-memory state in place.
struct StoreChange {
  enum class Kind {
    kAdded,    // item `key` was inserted (with its descriptors)
    kRemoved,  // item `key` was removed
    kUpdated,  // item `key`'s metadata, category or colour signature changed
    kCopies,   // copy pairs or checks changed (no vector did)
    kReload,   // anything else: blobs, model versions, descriptors of a version, the active version
  };
  int64_t revision = 0;
  Kind kind = Kind::kReload;
  int64_t key = 0;  // the item, for kAdded / kRemoved / kUpdated
};

struct ListQuery {
  std::string category;  // empty = all
  size_t offset = 0;
  size_t limit = 50;
};

struct CategoryCount {
  std::string name;
  size_t count;
};

// What CatalogStore::compact() did: the store's bytes on disk (with its write-ahead log).
struct CompactResult {
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
};

class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  // Inserts all items in one transaction (all or nothing); returns their keys in order.
  // Throws Error(kConflict) when an id exists.
  virtual std::vector<int64_t> insert(const std::vector<NewItem>& items) = 0;
  virtual bool remove(const std::string& id) = 0;
  virtual bool update_metadata(const std::string& id, const ItemMetadata& metadata,
                               const std::optional<std::string>& category) = 0;

  virtual std::optional<Item> find(const std::string& id) const = 0;
  virtual std::optional<Item> find_by_key(int64_t key) const = 0;
  virtual std::optional<Item> find_by_file(const std::string& category,
                                           const std::string& file_name) const = 0;
  virtual std::optional<int64_t> find_by_hash(const std::string& sha256) const = 0;
  virtual std::vector<Item> list(const ListQuery& query) const = 0;
  virtual std::vector<Item> all_items() const = 0;
  // Calls fn with every item, in key order, without holding them all at once (1M items are
  // about 1 GB as Items): for whoever keeps a part of each. Read kItemPage items at a time,
  // each page in its own statement, so that the store is not held for the whole walk (seconds
  // at 1M items): an item written meanwhile may be seen or not.
  void for_each_item(const std::function<void(Item&&)>& fn) const {
    for (int64_t after = std::numeric_limits<int64_t>::min();;) {
      auto page = items_after(after, kItemPage);
      if (page.empty()) return;
      after = page.back().key;
      for (auto& item : page) fn(std::move(item));
    }
  }
  static constexpr size_t kItemPage = 4096;
  // Up to `limit` items whose keys are above `after`, in key order.
  virtual std::vector<Item> items_after(int64_t after, size_t limit) const = 0;
  virtual size_t count() const = 0;
  virtual std::vector<CategoryCount> categories() const = 0;

  // Descriptors of one model version (0 = frozen recipe); empty / skipped when absent.
  virtual std::vector<float> descriptor(int64_t version, int64_t key) const = 0;
  // Calls fn(key, descriptor, dimension) for every item that has one, in key order.
  virtual void for_each_descriptor(int64_t version,
                                   const std::function<void(int64_t, const float*, size_t)>& fn) const = 0;
  // Descriptors of `version` of the items keyed first_key..last_key (inclusive), in key order, at
  // most `limit` of them: a page of a walk over all descriptors that holds no lock between pages,
  // so that the caller may read other descriptors in between (a rebuild at 1M items).
  virtual KeyedDescriptors descriptor_page(int64_t version, int64_t first_key, int64_t last_key,
                                           size_t limit) const = 0;
  // Keys of items without a descriptor of `version`.
  virtual std::vector<int64_t> keys_missing_descriptor(int64_t version) const = 0;
  virtual void put_descriptors(int64_t version, const KeyedDescriptors& descriptors) = 0;
  // Keys of items without a colour signature, and signatures for them (Item::colours).
  virtual std::vector<int64_t> keys_missing_colours() const = 0;
  virtual void put_colours(const KeyedDescriptors& colours) = 0;

  // Copies of one product shot (service/copy_finder.h): the items not yet compared with their
  // nearest neighbours, in key order; marking items compared and storing the pairs found, in
  // one transaction (items removed meanwhile are skipped); every pair, by (a, b); and a fresh
  // start (`duplicates --rescan`).
  virtual std::vector<int64_t> keys_unchecked_for_copies() const = 0;
  virtual void put_copy_checks(const std::vector<int64_t>& checked, const std::vector<CopyPair>& pairs) = 0;
  virtual std::vector<CopyPair> copy_pairs() const = 0;
  virtual void forget_copy_checks() = 0;

  // Stores a new trained version with its item descriptors, and activates it when `activate`,
  // all in one transaction: readers see the old version or the complete new one. Returns the
  // version number.
  virtual int64_t add_model_version(const ModelVersion& version, const KeyedDescriptors& descriptors,
                                    bool activate) = 0;
  virtual std::vector<ModelVersion> model_versions() const = 0;
  virtual std::optional<ModelVersion> model_version(int64_t version) const = 0;
  virtual int64_t active_version() const = 0;  // 0 = the frozen recipe
  // Evaluation figures of a version (0 = frozen recipe), replacing earlier ones; read back as
  // ModelVersion::info["evaluation"], or evaluation(0) for the frozen recipe.
  virtual void set_evaluation(int64_t version, const nlohmann::json& figures) = 0;
  virtual nlohmann::json evaluation(int64_t version) const = 0;
  // Throws Error(kNotFound) for a version that does not exist.
  virtual void set_active_version(int64_t version) = 0;
  // Deletes a trained version and its descriptors (numbers are never reused). Throws
  // Error(kNotFound) for a version that does not exist (or 0), Error(kConflict) for the active one.
  virtual void remove_model_version(int64_t version) = 0;

  // Named binary values (trained PCA, classifier, settings), written atomically.
  virtual std::optional<std::string> get_blob(const std::string& name) const = 0;
  virtual void put_blobs(const std::vector<std::pair<std::string, std::string>>& blobs) = 0;

  // Increases with every committed change of items or blobs; the vector index file records
  // the revision it was built from, so a stale one is detected and rebuilt.
  virtual int64_t revision() const = 0;
  // The changes committed after revision `after` up to and including `upto`, in commit order
  // (every revision in that range has at least one); nullopt when the store keeps no log that
  // far back (SQLite keeps none): the caller reloads instead.
  virtual std::optional<std::vector<StoreChange>> changes(int64_t after, int64_t upto) const {
    (void)after, (void)upto;
    return std::nullopt;
  }

  // Which store this is, for `info` and /api/v1/stats: "sqlite PATH" or "postgresql
  // postgresql://USER@HOST:PORT/DB" (never a password).
  virtual std::string describe() const = 0;

  // The database engine's own consistency check: empty when sound, else what it found.
  virtual std::vector<std::string> integrity_problems() const = 0;
  // Writes a consistent copy of the whole store to `path` (a new file) while other connections
  // and processes keep reading and writing.
  virtual void backup_to(const std::string& path) const = 0;

  // Rewrites the store so that each table's rows lie together, and returns its size before and
  // after. Why: an import writes each item's row beside its descriptors, so at 1M items the item
  // rows are spread over a 5 GB file and a cold start reads all of it to walk them
  // (docs/benchmarks.md). Atomic: an error, Ctrl-C or kill leaves the store as it was. SQLite
  // only (VACUUM: it builds a temporary copy, then writes it back through the write-ahead log,
  // so it needs free disk about the file's size beside it and again in the temporary folder);
  // Error(kInvalidArgument) for PostgreSQL, whose autovacuum reclaims space and whose tables
  // are separate files already.
  virtual CompactResult compact() = 0;
};

// Wakes a follower of a shared store when another process commits a change (PostgreSQL's
// LISTEN/NOTIFY on its own connection), so that replicas need not poll the revision.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // Waits at most `timeout_ms` for a commit; true when one (or several) happened. A lost
  // connection is re-established on a later call; meanwhile it waits the timeout and returns
  // false, so a caller that also polls keeps working.
  virtual bool wait(int timeout_ms) = 0;
};

// A listener for a PostgreSQL spec, nullptr for SQLite (single machine: the revision is polled).
std::unique_ptr<ChangeListener> listen_for_changes(const std::string& spec);

// Opens or creates `path` (SQLite, WAL). Throws Error(kCorruptStore) when the file exists but
// is not a Lookalike catalog database.
std::unique_ptr<CatalogStore> open_sqlite_store(const std::string& path);

// Connects to PostgreSQL (15 or later) with a libpq connection string, a URI
// ("postgresql://user@host:port/database") or key=value pairs, and creates the catalog's tables
// in an empty database. Fails within connect_timeout (5 s unless the string sets it) with
// Error(kIoError) naming user, host, port and database but never the password; throws
// Error(kCorruptStore) when the database holds another schema. One connection per store object.
struct PostgresStoreOptions {
  // Revisions the change log keeps. Older rows are deleted as writes go on (a hundredth of this
  // at a time); a replica further behind than that reloads its whole state instead of
  // following the log (StoreChange, changes()).
  int64_t change_log_revisions = 100000;
};
std::unique_ptr<CatalogStore> open_postgres_store(const std::string& conninfo,
                                                  PostgresStoreOptions options = {});

// PostgreSQL for a spec starting with postgres:// or postgresql://, else the SQLite file at it.
std::unique_ptr<CatalogStore> open_store(const std::string& spec);

// The items `store` holds in `category` (0 for an unknown one), from its maintained counters.
inline size_t category_size(const CatalogStore& store, const std::string& category) {
  for (const auto& c : store.categories()) {
    if (c.name == category) return c.count;
  }
  return 0;
}

}  // namespace lookalike

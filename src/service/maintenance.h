// Operator tools over a data directory: `lookalike check` (is everything stored consistent?)
// and `lookalike backup` (a consistent copy taken while a server runs).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "service/catalog.h"

namespace lookalike {

struct CheckReport {
  size_t items = 0;
  size_t photos_verified = 0;  // stored photos read back and matched to their SHA-256
  size_t index_vectors = 0;    // index vectors compared with the stored descriptors
  size_t orphan_files = 0;     // files under the data directory that nothing refers to
  // Items stored before colours were measured: not problems (search counts them neutral in
  // colour); the next `lookalike import` measures them.
  size_t items_without_colours = 0;
  // Orphans younger than kOrphanGrace: what a write in flight or one interrupted a moment ago
  // (kill -9 between writing a photo and committing its item) leaves. Not problems: the next
  // import, serve or `check --repair` deletes them once they are older.
  std::vector<std::string> recent_orphans;
  std::vector<std::string> problems;  // one line each; empty when the catalog is sound

  bool ok() const { return problems.empty(); }
  nlohmann::json to_json() const;
};

// A write stores a photo (and its feature map) before it commits the item that refers to it;
// an orphan younger than this may still be about to be referred to.
inline constexpr std::chrono::seconds kOrphanGrace{60};

// Checks, without changing anything: the database's own integrity check; every item has its
// photo (present, matching its SHA-256), a frozen descriptor and one of the active version;
// the loaded index holds exactly the items, each with the vector its stored descriptor gives;
// every stored colour signature is well-formed;
// no orphan files (photos, feature maps or index files nothing refers to, temporaries left by
// a killed process).
CheckReport check_catalog(Catalog& catalog);

// Deletes the orphan files (as check_catalog finds them) older than `grace`: the leftovers of
// interrupted writes. Returns how many.
size_t collect_orphans(Catalog& catalog, std::chrono::seconds grace = kOrphanGrace);

// How long a photo handed to a PostgreSQL store stays even when nothing refers to it: an item
// is stored in another transaction than its photo (a replica's `add`), moments later.
inline constexpr std::chrono::seconds kStoredPhotoGrace{3600};

// With a PostgreSQL store, deletes from it the photos of removed items (WorkQueue::prune_photos)
// and returns how many; 0 for an embedded catalog, whose photos collect_orphans handles.
size_t prune_stored_photos(Catalog& catalog, std::chrono::seconds grace = kStoredPhotoGrace);

struct BackupReport {
  size_t items = 0;
  size_t photos = 0;
  size_t bytes = 0;  // photos and database together
  double seconds = 0;
};

// Copies the catalog database (SQLite's online backup: one committed state, while writers go
// on) and every photo it refers to into `destination`, a new or empty folder; the copy is a
// data directory of its own (`--data destination`). Derived files (index snapshots, cached
// feature maps) are not copied: the copy rebuilds its index when first opened. Throws
// Error(kInvalidArgument) when `destination` holds anything.
BackupReport backup_catalog(Catalog& catalog, const std::string& destination);

struct CompactReport {
  std::string store;  // CatalogStore::describe()
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  double seconds = 0;
};

// `lookalike compact`: rewrites the catalog database so that each table's rows lie together
// (CatalogStore::compact), so that a cold start after a large import reads the item rows, not
// the whole file. Opens the store alone, not the catalog's state. Throws Error(kNotFound) when
// `options.data_dir` holds no catalog database, Error(kNoSpace) when its disk has less free
// than the file (the rewrite passes through the write-ahead log beside it), and
// Error(kInvalidArgument) for a PostgreSQL store.
CompactReport compact_store(const CatalogOptions& options);

}  // namespace lookalike

// Writes a new SQLite catalog row by row, keeping the item keys, model version numbers and
// counters it is given: how another store exports itself to the embedded format
// (PostgresStore::backup_to). Internal to the store layer; the SQL stays in sqlite_store.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/catalog_store.h"

namespace lookalike {

class SqliteCatalogCopy {
 public:
  virtual ~SqliteCatalogCopy() = default;

  // Descriptors and colour signatures are raw float32 bytes, copied as they are.
  virtual void item(const Item& item, std::string_view descriptor, std::string_view colours_or_empty) = 0;
  virtual void version_descriptor(int64_t version, int64_t key, std::string_view descriptor) = 0;
  virtual void model_version(const ModelVersion& version) = 0;
  virtual void blob(const std::string& name, std::string_view value) = 0;
  virtual void copy_pair(const CopyPair& pair) = 0;
  virtual void copy_checked(int64_t key) = 0;
  // The revision and active version, and the largest item key and version number ever handed
  // out, so that the copy never reuses a number the original has used.
  virtual void counters(int64_t revision, int64_t active_version, int64_t last_item_key,
                        int64_t last_model_version) = 0;
  // Everything above is one transaction: without commit() the file holds an empty catalog.
  virtual void commit() = 0;
};

// Creates the catalog file `path` (which must not exist yet) with the current schema.
std::unique_ptr<SqliteCatalogCopy> create_sqlite_catalog_copy(const std::string& path);

}  // namespace lookalike

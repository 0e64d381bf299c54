// What an import reads: a folder with one sub-folder per category (fashion6 layout), a folder
// of loose photos (no categories), or a CSV / JSONL manifest of
// id, image, category, title, price, url and free-form attributes.
#pragma once

#include <string>
#include <vector>

#include "store/catalog_store.h"

namespace lookalike {

struct ImportEntry {
  std::string id;         // external id (from the manifest, or derived from the path)
  std::string path;       // absolute image path
  std::string category;   // may be empty
  std::string file_name;  // base name
  ItemMetadata metadata;
};

// Lists what `path` holds, sorted and deterministic (ids are stable across runs, so a rerun
// resumes). Throws Error(kNotFound / kInvalidArgument) for a missing path, an empty folder,
// or a malformed manifest (with file:line).
std::vector<ImportEntry> scan_import_source(const std::string& path);

// CSV / JSONL manifest text -> entries; image paths are resolved against `base_dir`.
// `name` is used in error messages. Fuzzed in fuzz/manifest_fuzz.cc.
std::vector<ImportEntry> parse_manifest(const std::string& text, bool jsonl, const std::string& base_dir,
                                        const std::string& name);

// Lower-case [a-z0-9._-] form of a name; ids and category names are built with it.
std::string slug(const std::string& text);
// True when `id` is a non-empty, at most 200 chars, URL-path-safe id ([A-Za-z0-9._-]).
bool valid_item_id(const std::string& id);

}  // namespace lookalike

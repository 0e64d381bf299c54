// The files of one data directory: where each kind lives and how it is named. The catalog
// database (catalog.sqlite) is the system of record; beside it, photos stored by content
// (images/), cached feature maps (features/) and vector index snapshots (index/) are files that
// the database refers to or that can be rebuilt from it. Nothing else in the code builds these
// paths or parses these names.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/image_probe.h"

namespace lookalike {

// An index snapshot file: "v{version}-p{projection}-r{revision}.faiss". The projection tag
// names what turned descriptors into index vectors (the frozen recipe's PCA, or "h" for a head),
// so a snapshot is never read with another projection than it was written with.
struct IndexSnapshot {
  int64_t version = 0;
  std::string projection;
  int64_t revision = 0;  // the catalog revision it holds every write of
  std::filesystem::path path;
};

class DataDirectory {
 public:
  // Creates the folders when absent; throws Error (io_error) when it cannot.
  explicit DataDirectory(std::string root);

  const std::string& root() const { return root_; }
  std::string database() const;                             // catalog.sqlite
  static std::string database_in(const std::string& root);  // the same, without creating folders
  std::string feature_directory() const;                    // the mixed7 feature-map cache
  std::string training_lock() const;                        // flock'ed by a training

  // Stores a photo under images/ by its SHA-256 (kept when already there); returns the path
  // relative to the root, as items record it.
  std::string store_photo(std::string_view bytes, const std::string& sha256, ImageFormat format) const;
  std::string photo_path(const std::string& relative) const;  // absolute
  // Deletes a photo and its cached feature maps; absent files are fine.
  void remove_photo(const std::string& relative, const std::string& sha256) const;

  std::string index_snapshot_path(int64_t version, const std::string& projection, int64_t revision) const;
  // Every file in index/ named as a snapshot (temporaries and stray files are left out).
  std::vector<IndexSnapshot> index_snapshots() const;
  // The newest snapshot of `version` with `projection`.
  std::optional<IndexSnapshot> latest_index_snapshot(int64_t version, const std::string& projection) const;
  // Deletes the snapshots of `version` but `keep` (empty: all of them), with their score scales.
  // Temporaries being written ("....faiss.tmp-PID-N") are left alone: another thread may be
  // about to rename one.
  void remove_index_snapshots(int64_t version, const std::filesystem::path& keep = {}) const;
  // The score scale measured on a snapshot's index, kept beside it (ServingStateLoader).
  static std::filesystem::path score_scale_path(const std::filesystem::path& snapshot) {
    return std::filesystem::path(snapshot.string() + ".scale.json");
  }

 private:
  std::string root_;
};

}  // namespace lookalike

#include "service/data_directory.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"
#include "common/files.h"
#include "train/feature_cache.h"

namespace lookalike {
namespace fs = std::filesystem;
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// "v12-pabc-r345.faiss" -> {12, "abc", 345}; the format before projection tags, "v12-r345.faiss",
// -> {12, "", 345} (never loaded, deleted with its version's snapshots); nothing for other names.
std::optional<IndexSnapshot> parse_snapshot_name(const fs::path& path) {
  if (path.extension() != ".faiss") return std::nullopt;
  const std::string name = path.stem().string();
  const auto r = name.rfind("-r");
  if (name.empty() || name[0] != 'v' || r == std::string::npos) return std::nullopt;
  const auto p = name.find("-p");
  const size_t version_end = p != std::string::npos && p < r ? p : r;
  const std::string version = name.substr(1, version_end - 1), revision = name.substr(r + 2);
  if (!all_digits(version) || !all_digits(revision)) return std::nullopt;
  const std::string projection = version_end == p ? name.substr(p + 2, r - p - 2) : "";
  return IndexSnapshot{std::stoll(version), projection, std::stoll(revision), path};
}

}  // namespace

DataDirectory::DataDirectory(std::string root) : root_(std::move(root)) {
  std::error_code ec;
  for (const char* folder : {"images", "index"}) {
    fs::create_directories(fs::path(root_) / folder, ec);
    if (ec) throw io_error("cannot create data directory " + root_, ec.value());
  }
}

std::string DataDirectory::database() const {
  return database_in(root_);
}

std::string DataDirectory::database_in(const std::string& root) {
  return (fs::path(root) / "catalog.sqlite").string();
}

std::string DataDirectory::feature_directory() const {
  return (fs::path(root_) / "features" / "inception_v3_mixed7").string();
}

std::string DataDirectory::training_lock() const {
  return (fs::path(root_) / "training.lock").string();
}

std::string DataDirectory::store_photo(std::string_view bytes, const std::string& sha256,
                                       ImageFormat format) const {
  const fs::path relative =
      fs::path("images") / sha256.substr(0, 2) / (sha256 + image_format_extension(format));
  const fs::path absolute = fs::path(root_) / relative;
  if (!fs::exists(absolute)) {
    std::error_code ec;
    fs::create_directories(absolute.parent_path(), ec);
    if (ec) throw io_error("cannot create " + absolute.parent_path().string(), ec.value());
    write_file_atomic(absolute.string(), bytes);
  }
  return relative.string();
}

std::string DataDirectory::photo_path(const std::string& relative) const {
  return (fs::path(root_) / relative).string();
}

void DataDirectory::remove_photo(const std::string& relative, const std::string& sha256) const {
  std::error_code ec;
  fs::remove(fs::path(root_) / relative, ec);
  FeatureCache::erase(feature_directory(), sha256);
}

std::string DataDirectory::index_snapshot_path(int64_t version, const std::string& projection,
                                               int64_t revision) const {
  return (fs::path(root_) / "index" /
          ("v" + std::to_string(version) + "-p" + projection + "-r" + std::to_string(revision) + ".faiss"))
      .string();
}

std::vector<IndexSnapshot> DataDirectory::index_snapshots() const {
  std::vector<IndexSnapshot> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(root_) / "index", ec)) {
    if (auto snapshot = parse_snapshot_name(entry.path())) found.push_back(std::move(*snapshot));
  }
  return found;
}

std::optional<IndexSnapshot> DataDirectory::latest_index_snapshot(int64_t version,
                                                                  const std::string& projection) const {
  std::optional<IndexSnapshot> best;
  for (auto& s : index_snapshots()) {
    if (s.version == version && s.projection == projection && (!best || s.revision > best->revision)) {
      best = std::move(s);
    }
  }
  return best;
}

void DataDirectory::remove_index_snapshots(int64_t version, const fs::path& keep) const {
  std::error_code ec;
  for (const auto& s : index_snapshots()) {
    if (s.version == version && s.path != keep) {
      fs::remove(s.path, ec);
      fs::remove(score_scale_path(s.path), ec);
    }
  }
}

}  // namespace lookalike

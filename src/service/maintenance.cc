#include "service/maintenance.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_set>

#include "common/allocator.h"
#include "common/error.h"
#include "common/files.h"
#include "image/product_colour.h"
#include "store/work_queue.h"

namespace lookalike {
namespace fs = std::filesystem;
namespace {

std::string megabytes(uint64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20);
}

struct Orphan {
  fs::path path;
  const char* why;
  std::chrono::seconds age;
};

// write_file_atomic's temporaries are "NAME.tmp-PID-N": stale once PID is gone.
bool stale_temporary(const fs::path& file) {
  const std::string name = file.filename().string();
  const auto at = name.rfind(".tmp-");
  if (at == std::string::npos) return false;
  const pid_t pid = static_cast<pid_t>(std::atoll(name.c_str() + at + 5));
  return pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH);
}

void check_photos(const Catalog& catalog, const std::vector<Item>& items, CheckReport& report) {
  for (const auto& item : items) {
    const std::string file = catalog.image_file(item);
    try {
      if (sha256_hex(read_file(file, SIZE_MAX)) != item.sha256) {
        report.problems.push_back("the photo of item '" + item.id + "' (" + item.image_path +
                                  ") does not match its SHA-256");
      }
      ++report.photos_verified;
    } catch (const Error& e) {
      report.problems.push_back("the photo of item '" + item.id + "' cannot be read: " + e.what());
    }
  }
}

void check_descriptors(Catalog& catalog, const std::vector<Item>& items, CheckReport& report) {
  std::unordered_map<int64_t, std::string> id_of;
  for (const auto& item : items) id_of[item.key] = item.id;
  std::set<int64_t> versions{0, catalog.store().active_version()};
  for (const int64_t version : versions) {
    for (const int64_t key : catalog.store().keys_missing_descriptor(version)) {
      report.problems.push_back("item '" + id_of[key] + "' has no descriptor of model version " +
                                std::to_string(version));
    }
  }
}

// The files items refer to: their photos (relative to the data directory) and content hashes.
struct ReferencedFiles {
  std::unordered_set<std::string> photos, hashes;
  void add(const Item& item) {
    photos.insert(fs::path(item.image_path).lexically_normal().string());
    hashes.insert(item.sha256);
  }
};

// Files nothing refers to: photos and feature maps of no item, index snapshots of no version
// or superseded by a newer one, and temporaries of processes that are gone.
std::vector<Orphan> find_orphans(Catalog& catalog, const ReferencedFiles& referenced) {
  const auto& [photos, hashes] = referenced;
  const fs::path root(catalog.data_dir());
  std::vector<Orphan> found;
  std::error_code ec;
  const auto orphan = [&](const fs::path& file, const char* why) {
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(file, ec);
    found.push_back({file, why, std::chrono::duration_cast<std::chrono::seconds>(age)});
  };
  for (auto it = fs::recursive_directory_iterator(root / "images", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    if (stale_temporary(it->path())) {
      orphan(it->path(), "left by a process that was killed");
    } else if (!photos.count(fs::relative(it->path(), root, ec).lexically_normal().string())) {
      orphan(it->path(), "no item has this photo");
    }
  }
  for (auto it = fs::recursive_directory_iterator(catalog.directory().feature_directory(), ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string name = it->path().filename().string();
    if (stale_temporary(it->path())) {
      orphan(it->path(), "left by a process that was killed");
    } else if (!hashes.count(name.substr(0, name.find('.')))) {
      orphan(it->path(), "a feature map of no item's photo");
    }
  }
  std::set<int64_t> versions{0};
  for (const auto& v : catalog.versions()) versions.insert(v.version);
  const auto snapshots = catalog.directory().index_snapshots();
  std::map<std::pair<int64_t, std::string>, int64_t> newest;  // (version, projection) -> revision
  for (const auto& s : snapshots) {
    auto& revision = newest.try_emplace({s.version, s.projection}, s.revision).first->second;
    revision = std::max(revision, s.revision);
  }
  std::unordered_set<std::string> named;  // snapshots, and the score scales kept beside live ones
  for (const auto& s : snapshots) {
    named.insert(s.path.filename().string());
    if (!versions.count(s.version)) {
      orphan(s.path, "an index of a model version that no longer exists");
    } else if (s.projection.empty()) {
      orphan(s.path, "an index snapshot in the format before projection tags");
    } else if (s.revision < newest[{s.version, s.projection}]) {
      orphan(s.path, "superseded by a newer snapshot");
    } else {
      named.insert(DataDirectory::score_scale_path(s.path).filename().string());
    }
  }
  for (const auto& entry : fs::directory_iterator(root / "index", ec)) {
    if (stale_temporary(entry.path())) {
      orphan(entry.path(), "left by a process that was killed");
    } else if (!named.count(entry.path().filename().string())) {
      orphan(entry.path(), "not an index snapshot, nor the score scale of a current one");
    }
  }
  return found;
}

uint64_t copy_file_to(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!ec) fs::copy_file(from, to, fs::copy_options::skip_existing, ec);
  if (ec) throw io_error("cannot copy " + from.string() + " to " + to.string(), ec.value());
  return fs::file_size(to, ec);
}

}  // namespace

nlohmann::json CheckReport::to_json() const {
  return {{"ok", ok()},
          {"items", items},
          {"photos_verified", photos_verified},
          {"index_vectors_compared", index_vectors},
          {"orphan_files", orphan_files},
          {"items_without_colours", items_without_colours},
          {"recent_orphan_files", recent_orphans},
          {"problems", problems}};
}

CheckReport check_catalog(Catalog& catalog) {
  CheckReport report;
  report.problems = catalog.store().integrity_problems();
  const auto items = catalog.store().all_items();
  report.items = items.size();
  check_photos(catalog, items, report);
  check_descriptors(catalog, items, report);
  for (const auto& item : items) {
    if (item.colours.empty()) {
      ++report.items_without_colours;
    } else if (!valid_colour_signature(item.colours)) {
      report.problems.push_back("item " + item.id + " has a damaged colour signature (" +
                                std::to_string(item.colours.size()) + " values)");
    }
  }
  for (auto& p : catalog.index_problems(&report.index_vectors)) report.problems.push_back(std::move(p));
  std::error_code ec;
  ReferencedFiles referenced;
  for (const auto& item : items) referenced.add(item);
  for (const auto& orphan : find_orphans(catalog, referenced)) {
    const std::string line = fs::relative(orphan.path, catalog.data_dir(), ec).string() + ": " + orphan.why;
    if (orphan.age < kOrphanGrace) {
      report.recent_orphans.push_back(line);  // an interrupted or in-flight write
    } else {
      ++report.orphan_files;
      report.problems.push_back("orphan file " + line);
    }
  }
  return report;
}

size_t collect_orphans(Catalog& catalog, std::chrono::seconds grace) {
  size_t removed = 0;
  std::error_code ec;
  {
    // What the items refer to, not the items: a server runs this hourly beside its own state.
    ReferencedFiles referenced;
    catalog.store().for_each_item([&](Item&& item) { referenced.add(item); });
    for (const auto& orphan : find_orphans(catalog, referenced)) {
      if (orphan.age >= grace && fs::remove(orphan.path, ec)) ++removed;
    }
  }
  return_free_memory();
  return removed;
}

size_t prune_stored_photos(Catalog& catalog, std::chrono::seconds grace) {
  WorkQueue* photos = catalog.queue();
  return photos ? photos->prune_photos(grace) : 0;
}

CompactReport compact_store(const CatalogOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  std::unique_ptr<CatalogStore> store;
  if (!options.store.empty()) {
    store = open_store(options.store);
  } else {
    const std::string database = DataDirectory::database_in(options.data_dir);
    std::error_code ec;
    const uint64_t bytes = fs::file_size(database, ec);
    if (ec) throw Error(ErrorCode::kNotFound, "no catalog database at " + database + ": " + ec.message());
    const fs::space_info space = fs::space(options.data_dir, ec);
    if (!ec && space.available < bytes) {
      throw Error(ErrorCode::kNoSpace, "compacting " + database + " needs about " + megabytes(bytes) +
                                           " MB free beside it (its rewrite passes through the write-ahead "
                                           "log); " +
                                           megabytes(space.available) + " MB are free");
    }
    store = open_sqlite_store(database);
  }
  const CompactResult result = store->compact();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return CompactReport{store->describe(), result.bytes_before, result.bytes_after, seconds};
}

BackupReport backup_catalog(Catalog& catalog, const std::string& destination) {
  const auto started = std::chrono::steady_clock::now();
  const fs::path dest(destination);
  std::error_code ec;
  if (fs::exists(dest, ec) && !(fs::is_directory(dest, ec) && fs::is_empty(dest, ec))) {
    throw Error(ErrorCode::kInvalidArgument,
                "backup destination " + destination + " exists and is not empty");
  }
  if (fs::equivalent(dest, catalog.data_dir(), ec)) {
    throw Error(ErrorCode::kInvalidArgument, "the backup destination is the data directory itself");
  }
  fs::create_directories(dest, ec);
  if (ec) throw io_error("cannot create " + destination, ec.value());
  BackupReport report;
  // Photos are stored by content and never rewritten: those of the items stored now are copied
  // first, the database is copied (one committed state), then the photos of items added in
  // between. A photo removed in between is gone from the copy too, unless its item made it in.
  const fs::path root(catalog.data_dir());
  for (const auto& item : catalog.store().all_items()) {
    if (fs::exists(root / item.image_path, ec))
      report.bytes += copy_file_to(root / item.image_path, dest / item.image_path);
  }
  const fs::path database = dest / "catalog.sqlite";
  catalog.store().backup_to(database.string());
  const auto copy = open_sqlite_store(database.string());
  for (const auto& item : copy->all_items()) {
    if (!fs::exists(dest / item.image_path, ec)) {
      report.bytes += copy_file_to(root / item.image_path, dest / item.image_path);
    }
    ++report.items;
  }
  std::unordered_set<std::string> photos;
  for (const auto& item : copy->all_items())
    photos.insert(fs::path(item.image_path).lexically_normal().string());
  for (auto it = fs::recursive_directory_iterator(dest / "images", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() &&
        !photos.count(fs::relative(it->path(), dest, ec).lexically_normal().string())) {
      report.bytes -= fs::file_size(it->path(), ec);  // its item was removed before the snapshot
      fs::remove(it->path(), ec);
    }
  }
  report.photos = photos.size();
  report.bytes += fs::file_size(database, ec);
  ::sync();  // the copy is on disk when the command returns
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace lookalike

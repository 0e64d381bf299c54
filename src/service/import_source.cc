#include "service/import_source.h"

#include <csv.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

namespace lookalike {
namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> kImages{".jpg", ".jpeg", ".png", ".webp", ".gif"};
  return kImages.count(ext) > 0;
}

std::vector<fs::path> sorted_files(const fs::path& dir, bool recursive) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec)) files.push_back(it->path());
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec)) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Ids must stay unique even when two paths slug to the same text.
void make_ids_unique(std::vector<ImportEntry>& entries) {
  std::map<std::string, int> seen;
  for (auto& e : entries) {
    const int n = seen[e.id]++;
    if (n > 0) e.id.append(1, '-').append(std::to_string(n + 1));
  }
}

std::vector<ImportEntry> scan_folder(const fs::path& root) {
  std::vector<ImportEntry> entries;
  size_t skipped = 0;
  auto add = [&](const fs::path& file, const std::string& category) {
    if (!has_image_extension(file)) {
      ++skipped;
      return;
    }
    const std::string relative = file.lexically_relative(root).replace_extension().string();
    entries.push_back({slug(relative), fs::absolute(file).string(), category, file.filename().string(), {}});
  };
  std::vector<fs::path> subdirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory(ec) && e.path().filename().string().front() != '.') subdirs.push_back(e.path());
  }
  std::sort(subdirs.begin(), subdirs.end());
  for (const auto& file : sorted_files(root, false)) add(file, "");
  for (const auto& dir : subdirs) {
    for (const auto& file : sorted_files(dir, true)) add(file, dir.filename().string());
  }
  if (entries.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                root.string() + " holds no photos (.jpg .jpeg .png .webp .gif)" +
                    (skipped ? ", only " + std::to_string(skipped) + " other files" : std::string()));
  }
  make_ids_unique(entries);
  return entries;
}

struct CsvRows {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> current;
};

void csv_field(void* data, size_t size, void* rows) {
  static_cast<CsvRows*>(rows)->current.emplace_back(static_cast<const char*>(data), size);
}
void csv_row(int, void* rows) {
  auto* r = static_cast<CsvRows*>(rows);
  r->rows.push_back(std::move(r->current));
  r->current.clear();
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& name) {
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
    throw Error(ErrorCode::kInternal, "cannot initialise the CSV parser");
  }
  CsvRows rows;
  const size_t used = csv_parse(&parser, text.data(), text.size(), csv_field, csv_row, &rows);
  const bool ok = used == text.size() && csv_fini(&parser, csv_field, csv_row, &rows) == 0;
  const std::string why = csv_strerror(csv_error(&parser));
  csv_free(&parser);
  if (!ok) {
    throw Error(ErrorCode::kInvalidArgument,
                name + ":" + std::to_string(rows.rows.size() + 1) + ": malformed CSV (" + why + ")");
  }
  return rows.rows;
}

std::optional<double> parse_price(const std::string& text, const std::string& where) {
  if (text.empty()) return std::nullopt;
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(value >= 0) || value > 1e12) {
    throw Error(ErrorCode::kInvalidArgument, where + ": price '" + text + "' is not a non-negative number");
  }
  return value;
}

ImportEntry entry_from_fields(const std::map<std::string, nlohmann::json>& fields, const fs::path& base,
                              const std::string& where) {
  auto text = [&](const char* key) -> std::string {
    auto it = fields.find(key);
    if (it == fields.end() || it->second.is_null()) return "";
    if (!it->second.is_string())
      throw Error(ErrorCode::kInvalidArgument, where + ": '" + key + "' must be a string");
    return it->second.get<std::string>();
  };
  ImportEntry e;
  const std::string image = text("image");
  if (image.empty()) throw Error(ErrorCode::kInvalidArgument, where + ": missing 'image' (the photo's path)");
  const fs::path path = fs::path(image).is_absolute() ? fs::path(image) : base / image;
  e.path = path.lexically_normal().string();
  e.file_name = path.filename().string();
  e.id = text("id");
  if (e.id.empty()) e.id = slug(fs::path(image).replace_extension().string());
  if (!valid_item_id(e.id)) {
    throw Error(ErrorCode::kInvalidArgument,
                where + ": id '" + e.id + "' must be 1-200 characters of A-Z a-z 0-9 . _ -");
  }
  e.category = text("category");
  e.metadata.title = text("title");
  e.metadata.url = text("url");
  if (auto it = fields.find("price"); it != fields.end() && !it->second.is_null()) {
    if (it->second.is_number()) {
      e.metadata.price = it->second.get<double>();
      if (!(*e.metadata.price >= 0)) throw Error(ErrorCode::kInvalidArgument, where + ": price must be >= 0");
    } else {
      e.metadata.price = parse_price(text("price"), where);
    }
  }
  static const std::set<std::string> kKnown{"id", "image", "category", "title", "price", "url", "attributes"};
  for (const auto& [key, value] : fields) {
    if (kKnown.count(key)) continue;
    e.metadata.attributes[key] = value;
  }
  if (auto it = fields.find("attributes"); it != fields.end()) {
    if (!it->second.is_object())
      throw Error(ErrorCode::kInvalidArgument, where + ": 'attributes' must be an object");
    for (const auto& [key, value] : it->second.items()) e.metadata.attributes[key] = value;
  }
  for (const auto& [key, value] : e.metadata.attributes.items()) {
    if (value.is_object() || value.is_array()) {
      throw Error(ErrorCode::kInvalidArgument,
                  where + ": attribute '" + key + "' must be a string, number or boolean");
    }
  }
  return e;
}

}  // namespace

std::string slug(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '.' || c == '_') {
      out.push_back(static_cast<char>(std::tolower(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  auto separator = [](char c) { return c == '-' || c == '.'; };
  while (!out.empty() && separator(out.back())) out.pop_back();
  while (!out.empty() && separator(out.front())) out.erase(out.begin());
  if (out.size() > 200) out.resize(200);
  return out.empty() ? "item" : out;
}

bool valid_item_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::vector<ImportEntry> parse_manifest(const std::string& text, bool jsonl, const std::string& base_dir,
                                        const std::string& name) {
  std::vector<ImportEntry> entries;
  const fs::path base(base_dir);
  if (jsonl) {
    std::istringstream lines(text);
    std::string line;
    for (size_t number = 1; std::getline(lines, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = name + ":" + std::to_string(number);
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (!doc.is_object()) throw Error(ErrorCode::kInvalidArgument, where + ": not a JSON object");
      std::map<std::string, nlohmann::json> fields;
      for (const auto& [key, value] : doc.items()) fields[key] = value;
      entries.push_back(entry_from_fields(fields, base, where));
    }
  } else {
    const auto rows = parse_csv(text, name);
    if (rows.empty()) throw Error(ErrorCode::kInvalidArgument, name + ": empty manifest");
    const auto& header = rows.front();
    if (std::find(header.begin(), header.end(), "image") == header.end()) {
      throw Error(ErrorCode::kInvalidArgument, name + ":1: the header needs an 'image' column");
    }
    for (size_t r = 1; r < rows.size(); ++r) {
      const std::string where = name + ":" + std::to_string(r + 1);
      if (rows[r].size() == 1 && rows[r][0].empty()) continue;
      if (rows[r].size() != header.size()) {
        throw Error(ErrorCode::kInvalidArgument, where + ": " + std::to_string(rows[r].size()) +
                                                     " fields, the header has " +
                                                     std::to_string(header.size()));
      }
      std::map<std::string, nlohmann::json> fields;
      for (size_t c = 0; c < header.size(); ++c) {
        if (!rows[r][c].empty()) fields[header[c]] = rows[r][c];
      }
      entries.push_back(entry_from_fields(fields, base, where));
    }
  }
  if (entries.empty()) throw Error(ErrorCode::kInvalidArgument, name + ": the manifest lists no photos");
  std::set<std::string> ids;
  for (const auto& e : entries) {
    if (!ids.insert(e.id).second)
      throw Error(ErrorCode::kInvalidArgument, name + ": id '" + e.id + "' appears twice");
  }
  return entries;
}

std::vector<ImportEntry> scan_import_source(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) throw Error(ErrorCode::kNotFound, "no such file or folder: " + path);
  if (fs::is_directory(p, ec)) return scan_folder(p);
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext != ".csv" && ext != ".jsonl") {
    throw Error(ErrorCode::kInvalidArgument, path + ": expected a folder, a .csv or a .jsonl manifest");
  }
  return parse_manifest(read_file(path, 256 << 20), ext == ".jsonl", fs::absolute(p).parent_path().string(),
                        path);
}

}  // namespace lookalike

// `lookalike recommend`: every item's look-alikes as JSON Lines or CSV, the feed a shop's
// product pages show. Written to FILE.partial batch by batch and renamed to FILE when complete,
// so a pipeline never reads half a feed; run again after Ctrl-C or a crash, it resumes from the
// partial file.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "service/catalog.h"
#include "service/recommender.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

enum class FeedFormat { kJsonl, kCsv };

struct RecommendArgs {
  size_t k = 12;
  std::string category = "same";
  std::string out;  // empty: JSON Lines on stdout
  size_t batch = 256;
  bool overwrite = false;
};

FeedFormat format_of(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".jsonl") return FeedFormat::kJsonl;
  if (ext == ".csv") return FeedFormat::kCsv;
  throw Error(ErrorCode::kInvalidArgument, "--out " + path + ": the name must end in .jsonl or .csv");
}

std::string format_batch(const std::vector<Recommendation>& recs, FeedFormat format) {
  std::string text;
  for (const auto& r : recs) {
    if (format == FeedFormat::kJsonl) {
      nlohmann::json similar = nlohmann::json::array();
      // Six and four decimals, as the CSV has: float noise would only make the feed longer.
      for (const auto& s : r.similar)
        similar.push_back({{"id", s.id},
                           {"score", std::round(static_cast<double>(s.score) * 1e6) / 1e6},
                           {"similarity", std::round(static_cast<double>(s.similarity) * 1e4) / 1e4}});
      text += nlohmann::json{{"id", r.id}, {"category", r.category}, {"similar", similar}}.dump() + "\n";
    } else {
      // Item ids are URL-safe (no commas, quotes or line breaks), so no field needs quoting.
      for (size_t i = 0; i < r.similar.size(); ++i) {
        char scores[64];
        std::snprintf(scores, sizeof scores, "%.6f,%.4f", static_cast<double>(r.similar[i].score),
                      static_cast<double>(r.similar[i].similarity));
        text += r.id + "," + std::to_string(i + 1) + "," + r.similar[i].id + "," + scores + "\n";
      }
    }
  }
  return text;
}

constexpr const char* kCsvHeader = "id,rank,similar_id,score,similarity\n";
constexpr size_t kMaxFeedLine = 1 << 20;

// The ids a partial feed holds complete, after cutting what an interrupted write left: a line
// without its end, and (CSV, where an item spans lines) every line of the last item, which may
// lack some. Throws Error(kInvalidArgument) when the file is not a feed this command wrote.
std::unordered_set<std::string> resume_partial(const std::string& path, FeedFormat format) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIoError, "cannot read " + path + ": " + std::strerror(errno));
  std::unordered_set<std::string> done;
  std::string last_id;
  std::streamoff keep = 0, last_id_start = 0, offset = 0;
  size_t number = 0;
  // A feed line holds one item's look-alikes (at most --k 1000 of them: well under 1 MiB); a
  // longer one is refused before it is held in memory whole.
  std::vector<char> buffer(kMaxFeedLine);
  for (;;) {
    in.getline(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    ++number;
    if (in.eof()) break;  // no line end (or nothing left): the write was cut here
    const auto bad = [&](const std::string& why) {
      return Error(ErrorCode::kInvalidArgument,
                   path + ":" + std::to_string(number) + ": " + why +
                       "; not a feed `recommend` wrote: delete it or choose another --out");
    };
    if (in.fail()) throw bad("a line longer than 1 MiB");
    const std::string line(buffer.data(), static_cast<size_t>(got - 1));  // without its '\n'
    const std::streamoff next = offset + got;
    if (format == FeedFormat::kJsonl) {
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (!doc.is_object() || !doc.contains("id") || !doc["id"].is_string())
        throw bad("not a JSON object with an id");
      done.insert(doc["id"].get<std::string>());
      keep = next;
    } else if (number == 1) {
      if (line + "\n" != kCsvHeader) throw bad("the header is not id,rank,similar_id,score,similarity");
      keep = next;
    } else {
      const auto comma = line.find(',');
      if (comma == std::string::npos || comma == 0) throw bad("no id before a comma");
      const std::string id = line.substr(0, comma);
      if (id != last_id) {
        if (!last_id.empty()) done.insert(last_id);
        last_id = id;
        last_id_start = offset;
      }
      keep = last_id_start;  // the last item may be incomplete: rewritten on resume
    }
    offset = next;
  }
  in.close();
  fs::resize_file(path, static_cast<uintmax_t>(keep));
  return done;
}

int run_recommend(const GlobalOptions& g, const RecommendArgs& a) {
  if (a.category != "same" && a.category != "all")
    throw Error(ErrorCode::kInvalidArgument, "--category must be same or all, not '" + a.category + "'");
  const bool to_file = !a.out.empty();
  const FeedFormat format = to_file ? format_of(a.out) : FeedFormat::kJsonl;
  if (to_file && fs::exists(a.out) && !a.overwrite)
    throw Error(ErrorCode::kConflict, a.out + " exists; pass --overwrite to write it again");
  const std::string partial = a.out + ".partial";

  Catalog catalog(catalog_options(g), /*load_model=*/false);
  std::vector<std::string> order = catalog.recommendation_order();
  std::FILE* sink = stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(nullptr, &std::fclose);
  if (to_file) {
    std::unordered_set<std::string> done;
    if (fs::exists(partial)) done = resume_partial(partial, format);
    if (!done.empty()) {
      std::erase_if(order, [&](const std::string& id) { return done.count(id) != 0; });
      std::fprintf(stderr, "resuming %s: %zu items done, %zu to go\n", partial.c_str(), done.size(),
                   order.size());
    }
    file.reset(std::fopen(partial.c_str(), "ab"));
    if (!file) throw Error(ErrorCode::kIoError, "cannot write " + partial + ": " + std::strerror(errno));
    if (format == FeedFormat::kCsv && std::ftell(file.get()) == 0) std::fputs(kCsvHeader, file.get());
    sink = file.get();
  }
  catch_interrupts();
  RecommendOptions options{a.k, a.category == "same"};
  ProgressBar bar("recommend", "items/s");
  const auto started = std::chrono::steady_clock::now();
  size_t written = 0;
  for (size_t begin = 0; begin < order.size() && !g_interrupted; begin += a.batch) {
    const std::vector<std::string> ids(
        order.begin() + static_cast<std::ptrdiff_t>(begin),
        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), begin + a.batch)));
    const std::string text = format_batch(catalog.recommend(ids, options), format);
    if (std::fwrite(text.data(), 1, text.size(), sink) != text.size() || std::fflush(sink) != 0)
      throw Error(ErrorCode::kIoError, "cannot write " + (to_file ? partial : std::string("stdout")) + ": " +
                                           std::strerror(errno));
    written += ids.size();
    bar.update(written, order.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), written);
  }
  bar.finish();
  if (g_interrupted) {
    std::fprintf(stderr, "interrupted: %zu items written%s; run the same command again to resume\n", written,
                 to_file ? (" to " + partial).c_str() : "");
    return 130;
  }
  if (to_file) {
    file.reset();
    fs::rename(partial, a.out);
    std::fprintf(stderr, "wrote the look-alikes of %zu items to %s\n", written, a.out.c_str());
  }
  return 0;
}

}  // namespace

void add_recommend(CLI::App& app, const GlobalOptions& g) {
  auto* cmd = app.add_subcommand(
      "recommend", "Every item's look-alikes (the 'you may also like' feed), as JSON Lines or CSV");
  auto a = std::make_shared<RecommendArgs>();
  cmd->add_option("--k", a->k, "Look-alikes per item")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd->add_option("--category", a->category, "same: from the item's own category; all: from any")
      ->check(CLI::IsMember({"same", "all"}))
      ->capture_default_str();
  cmd->add_option("--out", a->out,
                  "FILE.jsonl or FILE.csv (written as FILE.partial, renamed when complete; a rerun "
                  "resumes it). Default: JSON Lines on stdout");
  cmd->add_option("--batch", a->batch, "Items searched per index call")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd->add_flag("--overwrite", a->overwrite, "Write FILE again when it exists");
  cmd->callback([&g, a] { run(g, [&] { return run_recommend(g, *a); }); });
}

}  // namespace lookalike

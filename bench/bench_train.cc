// Training benchmark: one new head version trained on an imported catalog, exactly as
// `lookalike train --head-only` does it, feature-map extraction included; then the query cost
// of the frozen recipe and of the new version (head alone and blended with the frozen probe),
// with and without flip averaging.
//   bench_train --data DIR [--cold flips|all|none] [--epochs N] [--seed N] [--queries N]
//   bench_train --data DIR --search-only VERSION [--queries N]   (latencies only)
// --cold removes cached maps first: `flips` (default) leaves the originals an import keeps, so
// the run extracts what a real `train` after an import extracts; `all` extracts everything.
// Prints one line per figure and a final JSON object.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/allocator.h"
#include "common/files.h"
#include "service/catalog.h"

namespace fs = std::filesystem;
using namespace lookalike;
using Clock = std::chrono::steady_clock;

namespace {

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

size_t drop_cached_maps(const std::string& data_dir, const std::string& which) {
  size_t removed = 0;
  const fs::path dir = fs::path(data_dir) / "features";
  if (which == "none" || !fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const bool flip = name.find(".flip.") != std::string::npos;
    if (e.is_regular_file() && (which == "all" || flip)) removed += fs::remove(e.path());
  }
  return removed;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Latency {
  double total_ms = 0;   // median per query, CNN included
  double search_ms = 0;  // median of the index search part alone
};

// Median search latencies over the first `n` catalog photos, for one version and query setting.
Latency search_ms(const std::string& data_dir, int64_t version, bool flip, bool blend,
                  const std::vector<Item>& items, size_t n,
                  float instance_threshold = kDefaultInstanceThreshold) {
  CatalogOptions options;
  options.data_dir = data_dir;
  options.pinned_version = version;
  options.flip_queries = flip;
  options.blend_frozen = blend;
  options.instance_threshold = instance_threshold;
  Catalog catalog(options, false);
  QueryOptions query;
  query.k = 12;
  std::vector<double> total, search;
  for (size_t i = 0; i <= std::min(n, items.size() - 1); ++i) {
    const std::string bytes = read_file(catalog.image_file(items[i]), SIZE_MAX);
    const auto r = catalog.search_image(bytes, query);
    if (i == 0) continue;  // the first one pays for loading the networks
    total.push_back(r.timings.total_ms);
    search.push_back(r.timings.search_ms);
  }
  return {median(total), median(search)};
}

// Median search latencies of the frozen recipe and of `version`: its head alone, blended with the
// frozen probe (the whole CNN runs), and both with flip averaging; ratios to the frozen recipe.
// The default (blended, flip-averaged) runs once more without the instance tier, whose cost is
// the second index search.
nlohmann::json search_latencies(const std::string& data_dir, int64_t version, const std::vector<Item>& all,
                                size_t queries) {
  const double frozen = search_ms(data_dir, 0, false, false, all, queries).total_ms;
  nlohmann::json out = {{"frozen", frozen}};
  std::printf("search median: frozen %.1f ms", frozen);
  for (const auto& [name, flip, blend] :
       {std::tuple{"head", false, false}, std::tuple{"blended", false, true},
        std::tuple{"head_flip_averaged", true, false}, std::tuple{"blended_flip_averaged", true, true}}) {
    const double ms = search_ms(data_dir, version, flip, blend, all, queries).total_ms;
    out[name] = ms;
    std::printf(", version %lld %s %.1f ms (%.2fx)", static_cast<long long>(version), name, ms, ms / frozen);
  }
  const Latency tier = search_ms(data_dir, version, true, true, all, queries);
  const Latency no_tier = search_ms(data_dir, version, true, true, all, queries, 0.0f);
  out["index_search_ms"] = {{"instance_tier", tier.search_ms}, {"no_instance_tier", no_tier.search_ms}};
  std::printf("\nindex search median (default query): with the instance tier %.2f ms, without %.2f ms\n",
              tier.search_ms, no_tier.search_ms);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  lookalike::tune_allocator_for_large_batches();
  CLI::App app{"bench_train: train a head version and time it"};
  std::string data_dir, cold = "flips";
  HeadTrainingRequest request;
  size_t queries = 20;
  app.add_option("--data", data_dir, "Imported catalog (lookalike import --no-head)")->required();
  app.add_option("--cold", cold, "Cached maps to remove first")
      ->check(CLI::IsMember({"flips", "all", "none"}));
  app.add_option("--epochs", request.head.max_epochs, "Most epochs");
  app.add_option("--seed", request.head.seed, "Seed");
  app.add_option("--queries", queries, "Searches per latency figure");
  int64_t search_only = 0;
  app.add_option("--search-only", search_only,
                 "Train nothing: time the searches of this stored version against the frozen recipe");
  CLI11_PARSE(app, argc, argv);
  if (search_only > 0) {
    CatalogOptions options;
    options.data_dir = data_dir;
    const auto all = Catalog(options, false).store().all_items();
    std::printf("%s\n", search_latencies(data_dir, search_only, all, queries).dump().c_str());
    return 0;
  }

  const size_t removed = drop_cached_maps(data_dir, cold);
  std::printf("removed %zu cached maps (--cold %s)\n", removed, cold.c_str());
  CatalogOptions options;
  options.data_dir = data_dir;
  Catalog catalog(options, false);
  const size_t items = catalog.stats().items;
  request.on_stage = [](const std::string&, size_t, size_t) {};
  request.callbacks.on_epoch = [](const EpochReport& e) {
    std::printf("epoch %d: loss %.3f, validation accuracy %.3f, %.1f s\n", e.epoch, e.train_loss,
                e.val_accuracy, e.seconds);
    std::fflush(stdout);
  };
  const auto started = Clock::now();
  const auto outcome = catalog.train_head(request);
  const double total = std::chrono::duration<double>(Clock::now() - started).count();
  if (!outcome.trained) {
    std::printf("no head trained: %s\n", outcome.summary.c_str());
    return 1;
  }
  const auto& info = outcome.info;
  std::printf("catalog: %zu items, %zu training + %zu validation photos\n", items,
              info["train_photos"].get<size_t>(), info["validation_photos"].get<size_t>());
  std::printf("extract %zu maps: %.1f s\n", info["maps_extracted"].get<size_t>(),
              info["extract_seconds"].get<double>());
  std::printf("train: %.1f s (%zu epochs, best %d, validation accuracy %.3f)\n",
              info["train_seconds"].get<double>(), info["epochs"].size(), info["best_epoch"].get<int>(),
              info["validation_accuracy"].get<double>());
  std::printf("descriptors: %.1f s\n", info["descriptor_seconds"].get<double>());
  std::printf("total: %.1f s (%.1f min), peak RSS %.0f MB\n", total, total / 60, peak_rss_mb());

  std::printf("frozen probe blended in at weight %.2f: validation accuracy %.3f\n",
              info["frozen_blend_weight"].get<double>(), info["blended_validation_accuracy"].get<double>());
  const auto latencies = search_latencies(data_dir, outcome.version, catalog.store().all_items(), queries);
  nlohmann::json out = {{"items", items},         {"cold", cold},
                        {"total_seconds", total}, {"peak_rss_mb", peak_rss_mb()},
                        {"training", info},       {"search_median_ms", latencies}};
  out["training"].erase("epochs");
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

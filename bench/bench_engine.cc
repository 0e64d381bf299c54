// Engine benchmark: bare model forward (batch 1 and 8, 1 and 2 threads), full import
// pipeline throughput, and search latency, in one run on the same machine.
//   bench_engine [--dataset DIR] [--images N] [--queries N]
// Prints one line per figure and a final JSON object.
#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/allocator.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "model/embedder.h"
#include "service/catalog.h"
#include "service/import_source.h"
#include "service/importer.h"

namespace fs = std::filesystem;
using namespace lookalike;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median per-image forward time over `rounds` batches of `batch` real photos.
double forward_ms(GemEmbedder& embedder, const std::vector<cv::Mat>& photos, int batch, int rounds) {
  std::vector<double> per_image;
  for (int r = 0; r < rounds; ++r) {
    std::vector<cv::Mat> images;
    for (int i = 0; i < batch; ++i) images.push_back(photos[(r * batch + i) % photos.size()]);
    const auto t = Clock::now();
    embedder.embed(images);
    per_image.push_back(seconds_since(t) * 1000 / batch);
  }
  return median(per_image);
}

}  // namespace

int main(int argc, char** argv) {
  lookalike::tune_allocator_for_large_batches();
  std::string dataset = "../shared/datasets/fashion6-dev";
  size_t import_images = 240, queries = 40;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dataset")
      dataset = argv[i + 1];
    else if (flag == "--images")
      import_images = std::stoul(argv[i + 1]);
    else if (flag == "--queries")
      queries = std::stoul(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_engine [--dataset DIR] [--images N] [--queries N]\n");
      return 2;
    }
  }
  if (!fs::is_directory(dataset)) {
    std::fprintf(stderr, "bench_engine: dataset %s not found\n", dataset.c_str());
    return 2;
  }
  auto entries = scan_import_source(dataset);
  // Every 5th photo of the listing is a query, the rest feed the import.
  std::vector<ImportEntry> catalog_entries, query_entries;
  for (size_t i = 0; i < entries.size(); ++i)
    (i % 5 == 4 ? query_entries : catalog_entries).push_back(entries[i]);
  std::vector<ImportEntry> import_set;
  for (size_t i = 0; i < catalog_entries.size() && import_set.size() < import_images;
       i += std::max<size_t>(1, catalog_entries.size() / import_images)) {
    import_set.push_back(catalog_entries[i]);
  }
  std::vector<cv::Mat> photos;
  for (size_t i = 0; i < 16; ++i)
    photos.push_back(decode_image_or_throw(read_file(query_entries[i * 7].path, 10 << 20)).rgb);

  const auto manifest = ModelManifest::load(default_model_manifest());
  GemEmbedder embedder(manifest);
  nlohmann::json out;
  out["nproc"] = cv::getNumberOfCPUs();
  for (int threads : {1, 2}) {
    cv::setNumThreads(threads);
    forward_ms(embedder, photos, 1, 2);  // warm-up at this thread count
    for (int batch : {1, 8}) {
      const double ms = forward_ms(embedder, photos, batch, batch == 1 ? 15 : 4);
      std::printf("forward  threads=%d batch=%d: %.1f ms/image (%.2f images/s)\n", threads, batch, ms,
                  1000 / ms);
      out["forward_ms"]["threads" + std::to_string(threads)]["batch" + std::to_string(batch)] = ms;
    }
  }
  const int threads = cv::getNumberOfCPUs();
  cv::setNumThreads(threads);

  const fs::path data = fs::temp_directory_path() / ("lookalike-bench-" + std::to_string(::getpid()));
  fs::remove_all(data);
  CatalogOptions options;
  options.data_dir = data.string();
  // One forward per query, as in the figures recorded since stop 2; flip averaging (the product
  // default) doubles the model time: bench_train times every query mode.
  options.flip_queries = false;
  {
    Catalog catalog(options, true);
    ImportOptions import_options;
    import_options.train = true;
    const auto started = Clock::now();
    const auto report = import_entries(catalog, import_set, import_options);
    const double total = seconds_since(started);
    const double bare =
        out["forward_ms"]["threads" + std::to_string(std::min(threads, 2))]["batch8"].get<double>();
    const double ratio = report.images_per_second / (1000 / bare);
    std::printf(
        "import   %zu images: %.2f images/s embedding+storing (%.1f s), %.1f s with training; "
        "%.2f x bare batch-8 forward throughput\n",
        report.imported, report.images_per_second, report.seconds, total, ratio);
    out["import"] = {{"images", report.imported},
                     {"images_per_second", report.images_per_second},
                     {"seconds", report.seconds},
                     {"seconds_with_training", total},
                     {"ratio_to_bare_batch8", ratio}};

    std::vector<double> search_ms, model_ms, index_ms;
    for (size_t i = 0; i < std::min(queries, query_entries.size()); ++i) {
      const std::string bytes = read_file(query_entries[i].path, 10 << 20);
      const auto r = catalog.search_image(bytes, QueryOptions{});
      search_ms.push_back(r.timings.total_ms);
      model_ms.push_back(r.timings.model_ms);
      index_ms.push_back(r.timings.search_ms + r.timings.classify_ms);
    }
    std::printf(
        "search   %zu queries on %zu items: median %.1f ms/query (model %.1f ms, classify+index %.3f ms)\n",
        search_ms.size(), report.imported, median(search_ms), median(model_ms), median(index_ms));
    out["search"] = {{"queries", search_ms.size()},
                     {"median_ms", median(search_ms)},
                     {"median_model_ms", median(model_ms)},
                     {"median_index_ms", median(index_ms)}};
  }
  fs::remove_all(data);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

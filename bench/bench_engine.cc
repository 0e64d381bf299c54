// Engine benchmark: bare model forward of the inference engines side by side (OpenCV DNN fp32,
// oneDNN fp32, oneDNN int8 calibrated on 32 catalog photos; batch 1, 2 and 8; 1 and 2 threads;
// rounds interleaved so all see the same machine), then full import pipeline throughput and
// search latency on the default engine, in one run on the same machine.
//   bench_engine [--dataset DIR] [--images N] [--queries N] [--forward-only 1] [--import-only 1]
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

#include "bench_flags.h"
#include "common/allocator.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "model/dnnl_network.h"
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

std::vector<cv::Mat> batch_of(const std::vector<cv::Mat>& photos, int batch, int round) {
  std::vector<cv::Mat> images;
  for (int i = 0; i < batch; ++i) images.push_back(photos[(round * batch + i) % photos.size()]);
  return images;
}

// Median per-image forward time of each embedder over `rounds` batches of `batch` real photos,
// the embedders taking turns within a round so that a noisy neighbour slows all of them alike.
std::vector<double> forward_ms(const std::vector<GemEmbedder*>& embedders, const std::vector<cv::Mat>& photos,
                               int batch, int rounds) {
  std::vector<std::vector<double>> per_image(embedders.size());
  for (int r = 0; r < rounds; ++r) {
    const auto images = batch_of(photos, batch, r);
    for (size_t e = 0; e < embedders.size(); ++e) {
      const auto t = Clock::now();
      embedders[e]->embed(images);
      per_image[e].push_back(seconds_since(t) * 1000 / batch);
    }
  }
  std::vector<double> medians;
  for (auto& times : per_image) medians.push_back(median(times));
  return medians;
}

// An int8 embedder calibrated on `calibration` (photos other than the timed ones).
std::unique_ptr<GemEmbedder> int8_embedder(const ModelManifest& manifest,
                                           const std::vector<cv::Mat>& calibration) {
  DnnlNetwork fp32(manifest);
  std::vector<cv::Mat> blobs;
  for (const auto& photo : calibration) blobs.push_back(fp32.make_blob({preprocess_image(photo, manifest)}));
  DnnlOptions options;
  options.int8 = fp32.calibrate(blobs);
  return std::make_unique<GemEmbedder>(std::make_unique<DnnlNetwork>(manifest, options));
}

// OpenCV DNN fp32 vs oneDNN fp32 vs oneDNN int8, side by side; fills
// out["forward_ms"][engine][threadsT][batchB] and the speedups over OpenCV.
void compare_engines(const ModelManifest& manifest, const std::vector<cv::Mat>& photos,
                     const std::vector<cv::Mat>& calibration, nlohmann::json& out) {
  ModelManifest opencv_manifest = manifest, dnnl_manifest = manifest;
  opencv_manifest.engine = InferenceEngine::kOpenCv;
  dnnl_manifest.engine = InferenceEngine::kDnnl;
  GemEmbedder opencv(opencv_manifest), dnnl(dnnl_manifest);
  const auto int8 = int8_embedder(dnnl_manifest, calibration);
  const std::vector<GemEmbedder*> all{&opencv, &dnnl, int8.get()};
  for (int threads : {1, 2}) {
    cv::setNumThreads(threads);  // OpenCV's pool; DnnlNetwork follows cv::getNumThreads()
    for (int batch : {1, 2, 8}) {
      forward_ms(all, photos, batch, 1);  // warm-up: builds the oneDNN plans of this shape
      const auto ms = forward_ms(all, photos, batch, batch == 1 ? 15 : batch == 2 ? 8 : 3);
      std::printf(
          "forward  threads=%d batch=%d: opencv %.1f, dnnl fp32 %.1f (%.2fx), dnnl int8 %.1f (%.2fx) "
          "ms/image\n",
          threads, batch, ms[0], ms[1], ms[0] / ms[1], ms[2], ms[0] / ms[2]);
      const std::string t = "threads" + std::to_string(threads), b = "batch" + std::to_string(batch);
      out["forward_ms"]["opencv"][t][b] = ms[0];
      out["forward_ms"]["dnnl"][t][b] = ms[1];
      out["forward_ms"]["dnnl_int8"][t][b] = ms[2];
      out["forward_speedup"]["dnnl"][t][b] = ms[0] / ms[1];
      out["forward_speedup"]["dnnl_int8"][t][b] = ms[0] / ms[2];
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  lookalike::tune_allocator_for_large_batches();
  std::string dataset = "../shared/datasets/fashion6-dev";
  size_t import_images = 240, queries = 40;
  bool forward_only = false, import_only = false;
  if (!lookalike::bench::every_flag_has_a_value(argc, argv)) return 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dataset")
      dataset = argv[i + 1];
    else if (flag == "--images")
      import_images = std::stoul(argv[i + 1]);
    else if (flag == "--queries")
      queries = std::stoul(argv[i + 1]);
    else if (flag == "--forward-only")
      forward_only = std::string(argv[i + 1]) != "0";
    else if (flag == "--import-only")
      import_only = std::string(argv[i + 1]) != "0";
    else {
      std::fprintf(stderr,
                   "usage: bench_engine [--dataset DIR] [--images N] [--queries N] [--forward-only 1] "
                   "[--import-only 1]\n");
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
  nlohmann::json out;
  out["nproc"] = cv::getNumberOfCPUs();
  out["dnnl_isa"] = DnnlNetwork::cpu_isa();
  out["default_engine"] = std::string(engine_name(manifest.engine));
  std::printf("nproc %d, oneDNN ISA %s, default engine %s\n", cv::getNumberOfCPUs(),
              DnnlNetwork::cpu_isa().c_str(), std::string(engine_name(manifest.engine)).c_str());
  std::vector<cv::Mat> calibration;  // catalog photos, none of them timed
  for (size_t i = 0; i < 32; ++i)
    calibration.push_back(
        decode_image_or_throw(read_file(catalog_entries[i * catalog_entries.size() / 32].path, 10 << 20))
            .rgb);
  if (!import_only) compare_engines(manifest, photos, calibration, out);
  if (forward_only) {
    std::printf("%s\n", out.dump().c_str());
    return 0;
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
    // The bare batch-8 forward of the engine the import ran on, when this run measured it.
    const auto bare_ms = out["forward_ms"][std::string(engine_name(manifest.engine))]
                            ["threads" + std::to_string(std::min(threads, 2))]["batch8"];
    const double ratio = bare_ms.is_number() ? report.images_per_second * bare_ms.get<double>() / 1000 : 0;
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

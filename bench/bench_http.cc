// HTTP load benchmark against a running `lookalike serve`: latency p50/p99 and requests/s of
// POST /api/v1/search at 1, 4 and 16 concurrent keep-alive clients, next to the bare model
// forward time measured in the same run (on the same photos, while the server is idle).
//   bench_http --port PORT [--dataset DIR] [--seconds 20] [--threads N]
#include <httplib.h>
#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench_flags.h"
#include "common/allocator.h"
#include "common/files.h"
#include "common/percentile.h"
#include "image/image_decoder.h"
#include "model/embedder.h"
#include "service/catalog.h"
#include "service/import_source.h"

using namespace lookalike;
using Clock = std::chrono::steady_clock;

namespace {

struct LoadResult {
  std::vector<double> latencies_ms;
  size_t errors = 0;
  double seconds = 0;
};

LoadResult load(int port, const std::vector<std::string>& photos, int clients, double seconds) {
  LoadResult result;
  std::mutex mutex;
  std::atomic<size_t> next{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_read_timeout(60, 0);
      std::vector<double> mine;
      size_t errors = 0;
      while (Clock::now() < deadline) {
        const std::string& photo = photos[next++ % photos.size()];
        httplib::MultipartFormDataItems items{{"image", photo, "q.jpg", "image/jpeg"},
                                              {"options", R"({"k": 12})", "", ""}};
        const auto t = Clock::now();
        const auto res = client.Post("/api/v1/search", items);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
        if (res && res->status == 200) {
          mine.push_back(ms);
        } else {
          ++errors;
        }
      }
      std::lock_guard lock(mutex);
      result.latencies_ms.insert(result.latencies_ms.end(), mine.begin(), mine.end());
      result.errors += errors;
    });
  }
  for (auto& t : threads) t.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  lookalike::tune_allocator_for_large_batches();
  int port = 0;
  double seconds = 20;
  int threads = cv::getNumberOfCPUs();
  std::string dataset = "../shared/datasets/fashion6-dev";
  if (!lookalike::bench::every_flag_has_a_value(argc, argv)) return 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port")
      port = std::stoi(argv[i + 1]);
    else if (flag == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else if (flag == "--dataset")
      dataset = argv[i + 1];
    else if (flag == "--threads")
      threads = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_http --port PORT [--dataset DIR] [--seconds 20] [--threads N]\n");
      return 2;
    }
  }
  if (port <= 0) {
    std::fprintf(stderr, "bench_http: --port of a running `lookalike serve` is required\n");
    return 2;
  }
  if (!std::filesystem::is_directory(dataset)) {
    std::fprintf(stderr, "bench_http: dataset %s not found (--dataset DIR)\n", dataset.c_str());
    return 2;
  }
  const auto entries = scan_import_source(dataset);
  std::vector<std::string> photos;
  for (size_t i = 4; i < entries.size() && photos.size() < 64; i += entries.size() / 64) {
    photos.push_back(read_file(entries[i].path, 10 << 20));
  }

  // Bare forward: the same network and preprocessing, no HTTP, no decode, no index. This
  // machine's speed drifts by 20% over minutes, so it is measured right before and right
  // after each load level and the level is compared with the mean of the two.
  cv::setNumThreads(threads);
  GemEmbedder embedder(ModelManifest::load(default_model_manifest()));
  std::vector<cv::Mat> decoded;
  for (size_t i = 0; i < 8; ++i) decoded.push_back(decode_image_or_throw(photos[i]).rgb);
  auto bare_forward = [&] {
    std::vector<double> ms;
    for (size_t i = 0; i < 13; ++i) {
      const auto t = Clock::now();
      embedder.embed({decoded[i % decoded.size()]});
      if (i >= 1) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    }
    return percentile(ms, 0.5);
  };
  nlohmann::json out{{"threads", threads}};
  for (int clients : {1, 4, 16}) {
    const double before = bare_forward();
    const auto r = load(port, photos, clients, seconds);
    const double bare = (before + bare_forward()) / 2;
    const double p50 = percentile(r.latencies_ms, 0.5), p99 = percentile(r.latencies_ms, 0.99);
    const double rps = double(r.latencies_ms.size()) / r.seconds;
    const double ideal_rps = 1000 / bare;  // one forward at a time already uses every core
    std::printf(
        "clients=%2d: %zu requests, %zu errors, p50 %.1f ms, p99 %.1f ms, %.2f req/s | bare forward %.1f ms "
        "(%d threads): p50/bare %.2f, req/s x bare %.2f\n",
        clients, r.latencies_ms.size(), r.errors, p50, p99, rps, bare, threads, p50 / bare, rps / ideal_rps);
    out["clients" + std::to_string(clients)] = {{"requests", r.latencies_ms.size()},
                                                {"errors", r.errors},
                                                {"p50_ms", p50},
                                                {"p99_ms", p99},
                                                {"rps", rps},
                                                {"bare_forward_ms", bare},
                                                {"p50_over_bare", p50 / bare},
                                                {"rps_times_bare", rps / ideal_rps}};
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

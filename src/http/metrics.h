// Prometheus text-format metrics: request counters by route and status, latency histograms
// per route and per search stage, and the catalog size. Debian 12 packages no Prometheus C++
// client, and the exposition format is a few lines of text, so it is written here.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

namespace lookalike {

class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,   0.5,   1,    2.5,   5};
  void observe(double seconds);
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  uint64_t total_ = 0;
};

class Metrics {
 public:
  void record_request(const std::string& route, int status, double seconds);
  void record_stage(const std::string& stage, double seconds);
  std::string render(size_t catalog_items) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, Histogram> stages_;
};

}  // namespace lookalike

#include "http/metrics.h"

#include <cstdio>

namespace lookalike {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void Histogram::observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += seconds;
  ++total_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(kBounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(total_) + "\n";
}

void Metrics::record_request(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  latency_[route].observe(seconds);
}

void Metrics::record_stage(const std::string& stage, double seconds) {
  std::lock_guard lock(mutex_);
  stages_[stage].observe(seconds);
}

std::string Metrics::render(size_t catalog_items) const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP lookalike_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE lookalike_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "lookalike_http_requests_total{route=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP lookalike_http_request_duration_seconds Request latency by route.\n";
  out += "# TYPE lookalike_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    h.render(out, "lookalike_http_request_duration_seconds", "route=\"" + route + "\"");
  }
  out += "# HELP lookalike_search_stage_duration_seconds Search latency by stage.\n";
  out += "# TYPE lookalike_search_stage_duration_seconds histogram\n";
  for (const auto& [stage, h] : stages_) {
    h.render(out, "lookalike_search_stage_duration_seconds", "stage=\"" + stage + "\"");
  }
  out += "# HELP lookalike_catalog_items Items in the catalog.\n# TYPE lookalike_catalog_items gauge\n";
  out += "lookalike_catalog_items " + std::to_string(catalog_items) + "\n";
  return out;
}

}  // namespace lookalike

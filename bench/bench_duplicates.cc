// Measures whether a descriptor can tell copies of one product shot from look-alikes (issue 16,
// item 2): how close the frozen recipe's whitened descriptors (what the index keeps) and its raw
// GeM descriptors (what the store keeps) of two copies of the same product shot are, against how
// close different products' are. Positives: the catalog's byte-identical pairs, and variants of N catalog
// photos as shops and aggregators re-publish them (half size, JPEG quality 50-95, a 5% crop, a mirror image);
// negatives: every other item among each variant's 12 nearest. Prints precision and recall of
// pair detection per threshold, and the closest negatives (to look at: some may be real
// duplicates the catalog holds under two names). Third signal, the candidate copy fingerprint:
// a 16 x 16 L*a*b* thumbnail of the whole photo, centred and normalised, compared in both
// orientations (the better correlation counts), so that a mirrored copy matches and a colour
// variant of the same shot does not.
//
//   build/bench/bench_duplicates --data /tmp/acc [--photos 200] [--seed 7]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/files.h"
#include "image/image_decoder.h"
#include "service/catalog.h"

namespace {
using namespace lookalike;

std::string jpeg(const cv::Mat& rgb, int quality) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> bytes;
  cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
  return {bytes.begin(), bytes.end()};
}

// The four ways a copy of a product shot differs from the shop's own file.
std::vector<std::pair<std::string, std::string>> variants(const cv::Mat& rgb, std::mt19937& rng) {
  std::vector<std::pair<std::string, std::string>> out;
  cv::Mat half;
  cv::resize(rgb, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  out.emplace_back("resize 0.5", jpeg(half, 90));
  out.emplace_back("jpeg 50-95", jpeg(rgb, std::uniform_int_distribution<int>(50, 95)(rng)));
  const int w = static_cast<int>(rgb.cols * 0.95), h = static_cast<int>(rgb.rows * 0.95);
  const int x = std::uniform_int_distribution<int>(0, rgb.cols - w)(rng);
  const int y = std::uniform_int_distribution<int>(0, rgb.rows - h)(rng);
  out.emplace_back("crop 5%", jpeg(rgb(cv::Rect(x, y, w, h)).clone(), 90));
  cv::Mat mirrored;
  cv::flip(rgb, mirrored, 1);
  out.emplace_back("mirror", jpeg(mirrored, 90));
  return out;
}

constexpr int kThumbnailSide = 16;

// The thumbnail fingerprint of a photo, plain and mirrored: 16 x 16 x 3 L*a*b* values, each
// channel's mean removed, the whole vector scaled to unit length.
std::pair<std::vector<float>, std::vector<float>> fingerprints(const cv::Mat& rgb) {
  cv::Mat small, lab;
  cv::resize(rgb, small, cv::Size(kThumbnailSide, kThumbnailSide), 0, 0, cv::INTER_AREA);
  small.convertTo(small, CV_32FC3, 1.0 / 255);
  cv::cvtColor(small, lab, cv::COLOR_RGB2Lab);
  const auto flatten = [](const cv::Mat& m) {
    cv::Mat centred = m - cv::mean(m);
    std::vector<float> v(centred.ptr<float>(0), centred.ptr<float>(0) + centred.total() * 3);
    double norm = 0;
    for (float x : v) norm += double(x) * x;
    const float scale = norm > 0 ? static_cast<float>(1 / std::sqrt(norm)) : 0.0f;
    for (float& x : v) x *= scale;
    return v;
  };
  cv::Mat mirrored;
  cv::flip(lab, mirrored, 1);
  return {flatten(lab), flatten(mirrored)};
}

float fingerprint_similarity(const std::pair<std::vector<float>, std::vector<float>>& a,
                             const std::pair<std::vector<float>, std::vector<float>>& b) {
  float plain = 0, mirror = 0;
  for (size_t i = 0; i < a.first.size(); ++i) {
    plain += a.first[i] * b.first[i];
    mirror += a.first[i] * b.second[i];
  }
  return std::max(plain, mirror);
}

}  // namespace

int main(int argc, char** argv) {
  std::string data;
  size_t photos = 200;
  unsigned seed = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data") {
      data = argv[i + 1];
    } else if (flag == "--photos") {
      photos = std::stoul(argv[i + 1]);
    } else if (flag == "--seed") {
      seed = static_cast<unsigned>(std::stoul(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: bench_duplicates --data DIR [--photos 200] [--seed 7]\n");
      return 2;
    }
  }
  if (data.empty()) {
    std::fprintf(stderr, "bench_duplicates: --data DIR (an imported catalog) is required\n");
    return 2;
  }
  CatalogOptions options;
  options.data_dir = data;
  options.pinned_version = 0;    // the frozen recipe: its cosine is the one the index keeps for every version
  options.flip_queries = false;  // as catalog photos are embedded
  options.instance_threshold = 0;
  options.read_only = true;
  Catalog catalog(options, true);
  const auto items = catalog.store().all_items();

  std::unordered_map<std::string, std::vector<const Item*>> by_hash;
  for (const auto& item : items) by_hash[item.sha256].push_back(&item);
  size_t twin_pairs = 0;
  std::vector<const Item*> chosen;
  for (const auto& [hash, same] : by_hash) {
    if (same.size() < 2) continue;
    twin_pairs += same.size() * (same.size() - 1) / 2;
    chosen.push_back(same.front());  // the byte-identical photos' variants are measured too
  }
  for (size_t i = 0; chosen.size() < photos + twin_pairs && i < photos; ++i)
    chosen.push_back(&items[i * items.size() / photos]);

  std::mt19937 rng(seed);
  struct Pair {
    std::string kind, a, b;
    float cosine;      // whitened frozen descriptors (what the index keeps)
    float raw_cosine;  // the raw GeM descriptors (5,632 values, unwhitened: what the store keeps)
    float thumbnail;   // fingerprint_similarity of the two photos
  };
  std::unordered_map<int64_t, std::pair<std::vector<float>, std::vector<float>>> stored_fingerprints;
  const auto stored_fingerprint = [&](const Item& item) -> const auto& {
    auto it = stored_fingerprints.find(item.key);
    if (it == stored_fingerprints.end()) {
      const cv::Mat rgb = decode_image_or_throw(read_file(catalog.image_file(item), 64 << 20)).rgb;
      it = stored_fingerprints.emplace(item.key, fingerprints(rgb)).first;
    }
    return it->second;
  };
  const auto raw_cosine = [&](const cv::Mat& query, int64_t key) {
    const auto stored = catalog.store().descriptor(0, key);
    double dot = 0, qq = 0, ss = 0;
    for (size_t i = 0; i < stored.size(); ++i) {
      dot += query.at<float>(0, static_cast<int>(i)) * stored[i];
      qq += query.at<float>(0, static_cast<int>(i)) * query.at<float>(0, static_cast<int>(i));
      ss += stored[i] * stored[i];
    }
    return static_cast<float>(dot / std::sqrt(qq * ss));
  };
  std::vector<Pair> positives, negatives;
  for (const Item* item : chosen) {
    const cv::Mat rgb = decode_image_or_throw(read_file(catalog.image_file(*item), 64 << 20)).rgb;
    for (const auto& [kind, bytes] : variants(rgb, rng)) {
      QueryOptions q;
      q.k = 12;
      q.category = "all";
      const auto result = catalog.search_image(bytes, q);
      const cv::Mat variant_rgb = decode_image_or_throw(bytes).rgb;
      const cv::Mat raw = catalog.embedders().lease()->embed({variant_rgb});
      const auto variant_fingerprint = fingerprints(variant_rgb);
      float own = -1;  // not among the 12 nearest: missed at any useful threshold
      for (const auto& hit : result.hits) {
        if (hit.item.sha256 == item->sha256) {
          own = std::max(own, hit.score);
        } else {
          negatives.push_back({kind, item->id, hit.item.id, hit.score, raw_cosine(raw, hit.item.key),
                               fingerprint_similarity(variant_fingerprint, stored_fingerprint(hit.item))});
        }
      }
      positives.push_back({kind, item->id, item->id, own, raw_cosine(raw, item->key),
                           fingerprint_similarity(variant_fingerprint, stored_fingerprint(*item))});
    }
  }
  nlohmann::json out{{"catalog_items", items.size()},
                     {"photos", chosen.size()},
                     {"byte_identical_pairs", twin_pairs},
                     {"variant_pairs", positives.size()},
                     {"negative_pairs", negatives.size()}};
  std::printf(
      "%zu photos x 4 variants; %zu byte-identical pairs (cosine 1: one stored descriptor); %zu negatives\n",
      chosen.size(), twin_pairs, negatives.size());
  std::printf("threshold | recall (all) | resize | jpeg | crop | mirror | precision\n");
  for (int t = 70; t <= 99; ++t) {
    const float threshold = static_cast<float>(t) / 100;
    std::unordered_map<std::string, std::pair<size_t, size_t>> by_kind;
    size_t found = twin_pairs;
    for (const auto& p : positives) {
      auto& [hit, all] = by_kind[p.kind];
      ++all;
      if (p.cosine >= threshold) ++hit, ++found;
    }
    size_t false_hits = 0;
    for (const auto& n : negatives) false_hits += n.cosine >= threshold;
    const double recall = static_cast<double>(found) / static_cast<double>(positives.size() + twin_pairs);
    const double precision =
        found + false_hits ? static_cast<double>(found) / static_cast<double>(found + false_hits) : 1;
    const auto share = [&](const char* kind) {
      const auto& [hit, all] = by_kind[kind];
      return all ? static_cast<double>(hit) / static_cast<double>(all) : 0.0;
    };
    std::printf("%.2f | %.3f | %.3f | %.3f | %.3f | %.3f | %.4f (%zu false)\n", threshold, recall,
                share("resize 0.5"), share("jpeg 50-95"), share("crop 5%"), share("mirror"), precision,
                false_hits);
    out["sweep"].push_back({{"threshold", threshold},
                            {"recall", recall},
                            {"precision", precision},
                            {"false_pairs", false_hits},
                            {"recall_by_kind",
                             {{"resize", share("resize 0.5")},
                              {"jpeg", share("jpeg 50-95")},
                              {"crop", share("crop 5%")},
                              {"mirror", share("mirror")}}}});
  }
  // Precision and recall of the variant pairs (byte-identical ones left out) by one signal, for
  // thresholds from/100 to to/100 (minus `below`, so that a stored cosine of exactly 1 counts).
  // With `only_candidates`, a variant the index did not return among the 12 nearest is missed:
  // a fingerprint would re-check the index's candidates, so its recall is its own times the index's.
  const auto variant_sweep = [&](const char* prefix, float Pair::*signal, int from, int to, float below,
                                 bool only_candidates) {
    for (int t = from; t <= to; ++t) {
      const float threshold = static_cast<float>(t) / 100 - below;
      std::unordered_map<std::string, std::pair<size_t, size_t>> by_kind;
      size_t found = 0, false_hits = 0;
      for (const auto& p : positives) {
        auto& [hit, all] = by_kind[p.kind];
        ++all;
        if (p.*signal >= threshold && (!only_candidates || p.cosine > -1)) ++hit, ++found;
      }
      for (const auto& n : negatives) false_hits += n.*signal >= threshold;
      const auto share = [&](const char* kind) {
        const auto& [hit, all] = by_kind[kind];
        return all ? static_cast<double>(hit) / static_cast<double>(all) : 0.0;
      };
      const double precision =
          found + false_hits ? static_cast<double>(found) / static_cast<double>(found + false_hits) : 1;
      std::printf("%s %.2f | %.3f | %.3f | %.3f | %.3f | %.3f | %.4f (%zu false)\n", prefix,
                  static_cast<double>(t) / 100,
                  static_cast<double>(found) / static_cast<double>(positives.size()), share("resize 0.5"),
                  share("jpeg 50-95"), share("crop 5%"), share("mirror"), precision, false_hits);
    }
  };
  std::printf("raw GeM cosine: threshold | recall (variants) | resize | jpeg | crop | mirror | precision\n");
  variant_sweep("raw", &Pair::raw_cosine, 80, 100, 0.0001f, false);
  std::printf("thumbnail: threshold | recall (variants) | resize | jpeg | crop | mirror | precision\n");
  variant_sweep("thumb", &Pair::thumbnail, 80, 99, 0, true);
  std::vector<Pair> by_thumbnail = negatives;
  std::sort(by_thumbnail.begin(), by_thumbnail.end(),
            [](const Pair& a, const Pair& b) { return a.thumbnail > b.thumbnail; });
  for (size_t i = 0; i < std::min<size_t>(15, by_thumbnail.size()); ++i)
    std::printf("closest negative by thumbnail %zu: %s (%s) ~ %s: %.4f\n", i + 1, by_thumbnail[i].a.c_str(),
                by_thumbnail[i].kind.c_str(), by_thumbnail[i].b.c_str(),
                static_cast<double>(by_thumbnail[i].thumbnail));
  float lowest_thumbnail = 2;
  for (const auto& p : positives) lowest_thumbnail = std::min(lowest_thumbnail, p.thumbnail);
  std::printf("lowest positive thumbnail similarity: %.4f\n", static_cast<double>(lowest_thumbnail));
  std::vector<Pair> by_raw = negatives;
  std::sort(by_raw.begin(), by_raw.end(),
            [](const Pair& a, const Pair& b) { return a.raw_cosine > b.raw_cosine; });
  for (size_t i = 0; i < std::min<size_t>(15, by_raw.size()); ++i)
    std::printf("closest negative by raw cosine %zu: %s (%s) ~ %s: %.4f\n", i + 1, by_raw[i].a.c_str(),
                by_raw[i].kind.c_str(), by_raw[i].b.c_str(), static_cast<double>(by_raw[i].raw_cosine));
  std::fflush(stdout);
  std::sort(negatives.begin(), negatives.end(),
            [](const Pair& a, const Pair& b) { return a.cosine > b.cosine; });
  for (size_t i = 0; i < std::min<size_t>(15, negatives.size()); ++i) {
    std::printf("closest negative %zu: %s (%s) ~ %s: %.4f\n", i + 1, negatives[i].a.c_str(),
                negatives[i].kind.c_str(), negatives[i].b.c_str(), static_cast<double>(negatives[i].cosine));
    out["closest_negatives"].push_back({{"query", negatives[i].a},
                                        {"kind", negatives[i].kind},
                                        {"item", negatives[i].b},
                                        {"cosine", negatives[i].cosine}});
  }
  float lowest = 2;
  for (const auto& p : positives) lowest = std::min(lowest, p.cosine);
  out["lowest_positive"] = lowest;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

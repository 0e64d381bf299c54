// Measures whether a descriptor can tell copies of one product shot from look-alikes (issue 16,
// item 2): how close the frozen recipe's whitened descriptors (what the index keeps) and its raw
// GeM descriptors (what the store keeps) of two copies of the same product shot are, against how
// close different products' are. Positives: the catalog's byte-identical pairs, and variants of N catalog
// photos as shops and aggregators re-publish them (half size, JPEG quality 50-95, a 5% crop, a mirror image);
// negatives: every other item among each variant's 12 nearest. Prints precision and recall of
// pair detection per threshold, and the closest negatives (to look at: some may be real
// duplicates the catalog holds under two names). Third signal, the one `duplicates` ships: the
// copy fingerprint (image/copy_fingerprint.h), swept over its two thresholds.
//
//   build/bench/bench_duplicates --data /tmp/acc [--photos 200] [--seed 7]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "bench_flags.h"
#include "common/files.h"
#include "image/copy_fingerprint.h"
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

}  // namespace

int main(int argc, char** argv) {
  std::string data, sheet;
  size_t photos = 200, skip = 0;
  unsigned seed = 7;
  if (!lookalike::bench::every_flag_has_a_value(argc, argv)) return 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data") {
      data = argv[i + 1];
    } else if (flag == "--photos") {
      photos = std::stoul(argv[i + 1]);
    } else if (flag == "--skip") {
      skip = std::stoul(argv[i + 1]);
    } else if (flag == "--sheet") {
      sheet = argv[i + 1];
    } else if (flag == "--seed") {
      seed = static_cast<unsigned>(std::stoul(argv[i + 1]));
    } else {
      std::fprintf(stderr,
                   "usage: bench_duplicates --data DIR [--photos 200] [--seed 7] [--skip K] [--sheet PNG]\n");
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
    chosen.push_back(&items[(i * items.size() / photos + skip) % items.size()]);

  std::mt19937 rng(seed);
  struct Pair {
    std::string kind, a, b;
    float cosine;         // whitened frozen descriptors (what the index keeps)
    float raw_cosine;     // the raw GeM descriptors (5,632 values, unwhitened: what the store keeps)
    CopyComparison copy;  // compare_copies of the two photos' copy fingerprints
  };
  std::unordered_map<int64_t, CopyFingerprint> stored_fingerprints;
  const auto stored_fingerprint = [&](const Item& item) -> const auto& {
    auto it = stored_fingerprints.find(item.key);
    if (it == stored_fingerprints.end()) {
      const cv::Mat rgb = decode_image_or_throw(read_file(catalog.image_file(item), 64 << 20)).rgb;
      it = stored_fingerprints.emplace(item.key, copy_fingerprint(rgb)).first;
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
  std::vector<double> compare_ms;
  const auto timed_compare = [&](const CopyFingerprint& a, const CopyFingerprint& b) {
    const auto started = std::chrono::steady_clock::now();
    const CopyComparison c = compare_copies(a, b);
    compare_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
    return c;
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
      const auto variant_fingerprint = copy_fingerprint(variant_rgb);
      float own = -1;  // not among the 12 nearest: missed at any useful threshold
      for (const auto& hit : result.hits) {
        if (hit.item.sha256 == item->sha256) {
          own = std::max(own, hit.score);
        } else {
          negatives.push_back({kind, item->id, hit.item.id, hit.score, raw_cosine(raw, hit.item.key),
                               timed_compare(variant_fingerprint, stored_fingerprint(hit.item))});
        }
      }
      positives.push_back({kind, item->id, item->id, own, raw_cosine(raw, item->key),
                           timed_compare(variant_fingerprint, stored_fingerprint(*item))});
    }
  }
  std::sort(compare_ms.begin(), compare_ms.end());
  double total_ms = 0;
  for (double ms : compare_ms) total_ms += ms;
  std::printf("compare_copies: %zu pairs, median %.3f ms, mean %.3f ms, p99 %.3f ms\n", compare_ms.size(),
              compare_ms[compare_ms.size() / 2], total_ms / static_cast<double>(compare_ms.size()),
              compare_ms[compare_ms.size() * 99 / 100]);
  nlohmann::json out{{"catalog_items", items.size()},
                     {"photos", chosen.size()},
                     {"byte_identical_pairs", twin_pairs},
                     {"variant_pairs", positives.size()},
                     {"negative_pairs", negatives.size()}};
  std::printf(
      "%zu photos x 4 variants; %zu byte-identical pairs (cosine 1: one stored descriptor); %zu negatives\n",
      chosen.size(), twin_pairs, negatives.size());
  // Recall of each kind of variant, as the JSON output reports it; share(kind) is a sweep row's.
  const auto recall_by_kind = [](const auto& share) {
    return nlohmann::json{{"resize", share("resize 0.5")},
                          {"jpeg", share("jpeg 50-95")},
                          {"crop", share("crop 5%")},
                          {"mirror", share("mirror")}};
  };
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
                            {"recall_by_kind", recall_by_kind(share)}});
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
  // The copy fingerprint: a pair is a copy when its aligned correlation reaches `min_correlation`
  // and its structured difference is at most `max_structure`. Recall counts a variant only when the index
  // returned its original among the 12 nearest (the fingerprint re-checks the index's candidates).
  const auto is_copy_at = [&](const CopyComparison& c, float min_correlation, float max_structure) {
    return c.correlation >= min_correlation && c.structure <= max_structure;
  };
  std::printf(
      "copy fingerprint: correlation >= | structure <= | recall (variants) | resize | jpeg | crop | mirror | "
      "precision\n");
  for (const float min_correlation : {0.90f, 0.95f, 0.96f, 0.97f}) {
    for (int tenths = 30; tenths <= 80; tenths += 5) {
      const float max_structure = static_cast<float>(tenths) / 10;
      std::unordered_map<std::string, std::pair<size_t, size_t>> by_kind;
      size_t found = 0, false_hits = 0;
      for (const auto& p : positives) {
        auto& [hit, all] = by_kind[p.kind];
        ++all;
        if (p.cosine > -1 && is_copy_at(p.copy, min_correlation, max_structure)) ++hit, ++found;
      }
      for (const auto& n : negatives) false_hits += is_copy_at(n.copy, min_correlation, max_structure);
      const auto share = [&](const char* kind) {
        const auto& [hit, all] = by_kind[kind];
        return all ? static_cast<double>(hit) / static_cast<double>(all) : 0.0;
      };
      const double recall = static_cast<double>(found) / static_cast<double>(positives.size());
      const double precision =
          found + false_hits ? static_cast<double>(found) / static_cast<double>(found + false_hits) : 1;
      std::printf("copy %.2f | %.1f | %.3f | %.3f | %.3f | %.3f | %.3f | %.4f (%zu false)\n",
                  static_cast<double>(min_correlation), static_cast<double>(max_structure), recall,
                  share("resize 0.5"), share("jpeg 50-95"), share("crop 5%"), share("mirror"), precision,
                  false_hits);
      out["copy_sweep"].push_back({{"min_correlation", min_correlation},
                                   {"max_structure", max_structure},
                                   {"recall", recall},
                                   {"precision", precision},
                                   {"false_pairs", false_hits},
                                   {"recall_by_kind", recall_by_kind(share)}});
    }
  }
  // The negatives closest to passing, by worst block among those with a high correlation, and the
  // positives furthest from it: the pairs to look at by eye.
  std::vector<Pair> by_block = negatives;
  std::sort(by_block.begin(), by_block.end(),
            [](const Pair& a, const Pair& b) { return a.copy.structure < b.copy.structure; });
  for (size_t i = 0; i < std::min<size_t>(20, by_block.size()); ++i)
    std::printf(
        "closest negative by copy fingerprint %zu: %s (%s) ~ %s: correlation %.4f, structure %.2f%s\n", i + 1,
        by_block[i].a.c_str(), by_block[i].kind.c_str(), by_block[i].b.c_str(),
        static_cast<double>(by_block[i].copy.correlation), static_cast<double>(by_block[i].copy.structure),
        by_block[i].copy.mirrored ? " (mirrored)" : "");
  // --sheet: the 20 closest negatives side by side (a row each: the original photo, the other item),
  // to judge by eye which are real copies the catalog holds under two ids.
  if (!sheet.empty()) {
    std::vector<cv::Mat> rows;
    const auto photo = [&](const std::string& id) {
      const auto item = catalog.store().find(id);
      cv::Mat rgb = decode_image_or_throw(read_file(catalog.image_file(*item), 64 << 20)).rgb, bgr;
      cv::resize(rgb, rgb, cv::Size(125, 150));
      cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
      return bgr;
    };
    for (size_t i = 0; i < std::min<size_t>(20, by_block.size()); ++i) {
      cv::Mat row;
      cv::hconcat(photo(by_block[i].a), photo(by_block[i].b), row);
      rows.push_back(row);
    }
    std::vector<cv::Mat> columns;
    for (size_t i = 0; i < rows.size(); i += 5) {
      cv::Mat column;
      std::vector<cv::Mat> part(rows.begin() + static_cast<std::ptrdiff_t>(i),
                                rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + 5)));
      while (part.size() < 5) part.push_back(cv::Mat(rows[0].size(), rows[0].type(), cv::Scalar::all(255)));
      cv::vconcat(part, column);
      cv::copyMakeBorder(column, column, 0, 0, 0, 12, cv::BORDER_CONSTANT, cv::Scalar::all(255));
      columns.push_back(column);
    }
    cv::Mat all;
    if (!columns.empty()) cv::hconcat(columns, all);
    if (!all.empty()) cv::imwrite(sheet, all);
  }
  std::vector<Pair> worst_positives = positives;
  std::sort(worst_positives.begin(), worst_positives.end(),
            [](const Pair& a, const Pair& b) { return a.copy.structure > b.copy.structure; });
  for (size_t i = 0; i < std::min<size_t>(10, worst_positives.size()); ++i)
    std::printf("hardest positive %zu: %s (%s): correlation %.4f, structure %.2f\n", i + 1,
                worst_positives[i].a.c_str(), worst_positives[i].kind.c_str(),
                static_cast<double>(worst_positives[i].copy.correlation),
                static_cast<double>(worst_positives[i].copy.structure));
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

// Recipe benchmark for the trained head: trains heads on an imported catalog's cached maps and
// scores a folder of held-out query photos, without the CNN forward of `lookalike eval` on each
// run (query maps are extracted once and cached in --query-cache).
//   bench_head_recipe --data DIR --queries FOLDER --query-cache DIR [--seeds 42,7] [recipe options]
// Prints, per seed: validation accuracy, held-out accuracy (and flip-averaged), p_at_10 and
// category_precision_at_12 as `lookalike eval` defines them (auto mode: threshold 0.5).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/allocator.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "model/embedder.h"
#include "model/head_model.h"
#include "model/model_manifest.h"
#include "service/catalog.h"
#include "service/import_source.h"
#include "store/catalog_store.h"
#include "train/head_trainer.h"

namespace fs = std::filesystem;
using namespace lookalike;
using Clock = std::chrono::steady_clock;

namespace {

struct Labelled {
  std::string sha256;
  int label = 0;
};

// Query maps (original and mirrored) into `cache`, extracted once.
std::vector<Labelled> prepare_queries(const std::string& folder, const FeatureCache& cache,
                                      const std::string& trunk_manifest,
                                      const std::map<std::string, int>& labels) {
  std::vector<Labelled> out;
  std::unique_ptr<FeatureMapExtractor> extractor;
  for (const auto& e : scan_import_source(folder)) {
    const std::string bytes = read_file(e.path, SIZE_MAX);
    const std::string sha = sha256_hex(bytes);
    const auto label = labels.find(e.category);
    if (label == labels.end())
      throw std::runtime_error(e.path + ": category '" + e.category + "' is not one of the catalog's");
    out.push_back({sha, label->second});
    for (bool flip : {false, true}) {
      if (cache.contains(sha, flip)) continue;
      if (!extractor) extractor = std::make_unique<FeatureMapExtractor>(ModelManifest::load(trunk_manifest));
      const auto rgb = decode_image_or_throw(bytes).rgb;
      const cv::Mat map = extractor->extract({rgb}, flip);
      cache.put(sha, flip, map.ptr<float>(0));
    }
  }
  return out;
}

struct Outputs {
  cv::Mat gem, logits;  // n rows
};

Outputs run_head(HeadNetwork& net, const FeatureCache& cache, const std::vector<Labelled>& samples,
                 bool flip) {
  Outputs o;
  const auto& s = cache.shape();
  const size_t batch = 32;
  for (size_t b = 0; b < samples.size(); b += batch) {
    const int n = static_cast<int>(std::min(batch, samples.size() - b));
    const int dims[] = {n, s[0], s[1], s[2]};
    cv::Mat maps(4, dims, CV_32F);
    for (int i = 0; i < n; ++i) {
      if (!cache.get(samples[b + i].sha256, flip, maps.ptr<float>(0) + i * cache.values()))
        throw std::runtime_error("missing map " + samples[b + i].sha256);
    }
    auto out = net.forward(maps);
    o.gem.push_back(out.gem.reshape(1, n));
    o.logits.push_back(out.logits.reshape(1, n));
  }
  return o;
}

cv::Mat normalised(const cv::Mat& m) {
  cv::Mat out = m.clone();
  for (int i = 0; i < out.rows; ++i) cv::normalize(out.row(i), out.row(i));
  return out;
}

struct Scores {
  double accuracy = 0, p10 = 0, cp12 = 0, cp12_top1 = 0, cp12_set90 = 0;
};

// Category precision of the first 12 hits among the items whose label passes `allowed`.
double precision_12(const float* row, const std::vector<Labelled>& catalog, int truth,
                    const std::vector<bool>& allowed) {
  std::vector<std::pair<float, int>> ranked;
  for (size_t j = 0; j < catalog.size(); ++j)
    if (allowed[catalog[j].label]) ranked.emplace_back(row[j], catalog[j].label);
  const size_t k = std::min<size_t>(12, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + k, ranked.end(),
                    [](auto& a, auto& b) { return a.first > b.first; });
  double good = 0;
  for (size_t j = 0; j < k; ++j) good += ranked[j].second == truth;
  return good / 12;
}

Scores score(const cv::Mat& q_gem, const cv::Mat& q_logits, const std::vector<Labelled>& queries,
             const cv::Mat& c_desc, const std::vector<Labelled>& catalog, float temperature) {
  Scores s;
  const cv::Mat q = normalised(q_gem);
  const cv::Mat sims = q * c_desc.t();
  const int classes = q_logits.cols;
  for (int i = 0; i < q.rows; ++i) {
    const int truth = queries[i].label;
    const float* l = q_logits.ptr<float>(i);
    std::vector<double> prob(classes);
    double z = 0;
    for (int c = 0; c < classes; ++c) z += prob[c] = std::exp(l[c] / temperature);
    for (auto& p : prob) p /= z;
    std::vector<int> by_prob(classes);
    for (int c = 0; c < classes; ++c) by_prob[c] = c;
    std::sort(by_prob.begin(), by_prob.end(), [&](int a, int b) { return prob[a] > prob[b]; });
    const int pred = by_prob[0];
    s.accuracy += pred == truth;
    const float* row = sims.ptr<float>(i);
    std::vector<bool> all(classes, true), top1(classes, false), set90(classes, false);
    top1[pred] = true;
    double mass = 0;
    for (int c : by_prob) {
      if (mass >= 0.9) break;
      set90[c] = true;
      mass += prob[c];
    }
    std::vector<int> order(sims.cols);
    for (int j = 0; j < sims.cols; ++j) order[j] = j;
    std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                      [&](int a, int b) { return row[a] > row[b]; });
    double good = 0;
    for (int j = 0; j < 10; ++j) good += catalog[order[j]].label == truth;
    s.p10 += good / 10;
    const double unrestricted = precision_12(row, catalog, truth, all);
    s.cp12 += prob[pred] >= 0.5 ? (pred == truth) : unrestricted;
    s.cp12_top1 += pred == truth;
    s.cp12_set90 += precision_12(row, catalog, truth, set90);
  }
  const double n = q.rows;
  return {s.accuracy / n, s.p10 / n, s.cp12 / n, s.cp12_top1 / n, s.cp12_set90 / n};
}

std::vector<uint32_t> parse_seeds(const std::string& text) {
  std::vector<uint32_t> seeds;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) seeds.push_back(static_cast<uint32_t>(std::stoul(part)));
  return seeds;
}

int run(int argc, char** argv) {
  CLI::App app{"bench_head_recipe: held-out quality of head recipes"};
  std::string data_dir, queries_dir, query_cache_dir, seeds_text = "42";
  double validation = 0.05;
  HeadTrainOptions o;
  app.add_option("--data", data_dir, "Imported catalog whose maps are cached (lookalike import)")->required();
  app.add_option("--queries", queries_dir, "Folder of category sub-folders: held-out query photos")
      ->required();
  app.add_option("--query-cache", query_cache_dir, "Where the queries' maps are cached between runs")
      ->required();
  app.add_option("--seeds", seeds_text, "Comma-separated seeds, one training each")->capture_default_str();
  app.add_option("--validation", validation, "Validation share per category")
      ->check(CLI::Range(0.02, 0.5))
      ->capture_default_str();
  app.add_option("--epochs", o.max_epochs, "Most epochs")->check(CLI::Range(1, 200))->capture_default_str();
  app.add_option("--patience", o.patience, "Early-stopping patience")
      ->check(CLI::Range(1, 200))
      ->capture_default_str();
  app.add_option("--lr", o.learning_rate, "Peak learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--wd", o.weight_decay, "AdamW weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--smoothing", o.label_smoothing, "Label smoothing")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  app.add_option("--map-dropout", o.map_dropout, "Dropout2d on the maps")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app.add_option("--dropout", o.dropout, "Dropout before the linear layer")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app.add_option("--channels", o.channels, "Width of the 1x1 conv")
      ->check(CLI::Range(8, 4096))
      ->capture_default_str();
  app.add_option("--batch", o.batch_size, "Batch size")->check(CLI::Range(2, 1024))->capture_default_str();
  int heads = 1;
  app.add_option("--heads", heads, "Ensemble of this many heads (logits averaged, GeMs concatenated)")
      ->check(CLI::Range(1, 8))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto store = open_sqlite_store((fs::path(data_dir) / "catalog.sqlite").string());
  std::vector<std::string> classes;
  for (const auto& c : store->categories()) classes.push_back(c.name);
  std::sort(classes.begin(), classes.end());
  std::map<std::string, int> labels;
  for (size_t i = 0; i < classes.size(); ++i) labels[classes[i]] = static_cast<int>(i);

  const std::string trunk = default_trunk_manifest(default_model_manifest());
  const auto shape = FeatureMapExtractor(ModelManifest::load(trunk)).map_shape();
  const FeatureCache cache((fs::path(data_dir) / "features" / "inception_v3_mixed7").string(), shape);
  const FeatureCache query_cache(query_cache_dir, shape);
  std::vector<Labelled> catalog;
  std::vector<TrainSample> samples;
  std::set<std::string> seen;  // each distinct photo trains once, as in Catalog::train_head
  for (const auto& item : store->all_items()) {
    catalog.push_back({item.sha256, labels.at(item.category)});
    if (seen.insert(item.sha256).second) samples.push_back({item.sha256, labels.at(item.category)});
  }
  auto started = Clock::now();
  const auto queries = prepare_queries(queries_dir, query_cache, trunk, labels);
  std::printf("%zu catalog photos, %zu queries (maps ready in %.0f s)\n", catalog.size(), queries.size(),
              std::chrono::duration<double>(Clock::now() - started).count());

  for (uint32_t seed : parse_seeds(seeds_text)) {
    const auto [train, val] = split_validation(samples, validation, seed);
    started = Clock::now();
    HeadTrainResult result;
    cv::Mat c_desc, q_gem[2], q_logits[2];
    for (int h = 0; h < heads; ++h) {
      o.seed = seed + 1000u * static_cast<uint32_t>(h);
      result = train_head(cache, train, val, classes, o);
      HeadNetwork net(export_head_onnx(result.weights));
      const cv::Mat c = normalised(run_head(net, cache, catalog, false).gem);
      c_desc = h == 0 ? c : [&] {
        cv::Mat m;
        cv::hconcat(c_desc, c, m);
        return m;
      }();
      for (int f = 0; f < 2; ++f) {
        const auto out = run_head(net, query_cache, queries, f == 1);
        const cv::Mat g = normalised(out.gem), l = out.logits / result.temperature;
        if (h == 0) {
          q_gem[f] = g, q_logits[f] = l;
        } else {
          cv::hconcat(q_gem[f], g, q_gem[f]);
          q_logits[f] += l;
        }
      }
    }
    for (int f = 0; f < 2; ++f) q_logits[f] /= heads;
    c_desc = normalised(c_desc);
    const double train_s = std::chrono::duration<double>(Clock::now() - started).count();
    const Scores a = score(q_gem[0], q_logits[0], queries, c_desc, catalog, 1.0f);
    const Scores f =
        score(q_gem[0] + q_gem[1], (q_logits[0] + q_logits[1]) / 2, queries, c_desc, catalog, 1.0f);
    std::printf(
        "seed %u: best epoch %d/%zu val %.3f T %.2f | acc %.3f p10 %.3f cp12 %.3f/%.3f/%.3f | flip acc %.3f "
        "p10 %.3f cp12 %.3f/%.3f/%.3f | %.0f s\n",
        seed, result.best_epoch, result.epochs.size(), result.val_accuracy, result.temperature, a.accuracy,
        a.p10, a.cp12, a.cp12_top1, a.cp12_set90, f.accuracy, f.p10, f.cp12, f.cp12_top1, f.cp12_set90,
        train_s);
    std::fflush(stdout);
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  tune_allocator_for_large_batches();
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_head_recipe: %s\n", e.what());
    return 1;
  }
}

#include "service/evaluator.h"

#include <chrono>
#include <map>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "service/import_source.h"

namespace lookalike {
namespace {

struct Tally {
  size_t queries = 0, classified = 0, correct = 0;
  double p1 = 0, p10 = 0, cp12 = 0;
  size_t dup_queries = 0, dup_first = 0;
  double ms = 0;
  std::map<std::string, std::map<std::string, size_t>> confusion;  // truth -> predicted -> n

  static double precision(const std::vector<Hit>& hits, const std::string& truth, size_t k) {
    if (k == 0) return 0;
    size_t good = 0;
    for (size_t i = 0; i < std::min(k, hits.size()); ++i) good += hits[i].item.category == truth;
    return double(good) / double(k);
  }

  void add(const std::string& truth, const std::string& sha256, bool has_twin, const QueryResult& all,
           const QueryResult& automatic, bool count_prediction) {
    ++queries;
    p1 += precision(all.hits, truth, 1);
    p10 += precision(all.hits, truth, 10);
    cp12 += precision(automatic.hits, truth, 12);
    if (has_twin) {
      ++dup_queries;
      dup_first += !all.hits.empty() && all.hits.front().item.sha256 == sha256;
    }
    if (count_prediction && !all.prediction.category.empty()) {
      ++classified;
      correct += all.prediction.category == truth;
      ++confusion[truth][all.prediction.category];
    }
  }

  nlohmann::json to_json(const std::string& mode) const {
    const double n = queries ? double(queries) : 1;
    std::vector<std::string> classes;
    for (const auto& [truth, row] : confusion) {
      if (std::find(classes.begin(), classes.end(), truth) == classes.end()) classes.push_back(truth);
      for (const auto& [pred, c] : row) {
        if (std::find(classes.begin(), classes.end(), pred) == classes.end()) classes.push_back(pred);
      }
    }
    std::sort(classes.begin(), classes.end());
    nlohmann::json matrix = nlohmann::json::array(), per_category = nlohmann::json::object();
    for (const auto& truth : classes) {
      nlohmann::json row = nlohmann::json::array();
      size_t total = 0, right = 0;
      for (const auto& pred : classes) {
        size_t c = 0;
        if (auto r = confusion.find(truth); r != confusion.end()) {
          if (auto p = r->second.find(pred); p != r->second.end()) c = p->second;
        }
        row.push_back(c);
        total += c;
        if (pred == truth) right = c;
      }
      matrix.push_back(row);
      if (total) per_category[truth] = double(right) / double(total);
    }
    return {{"mode", mode},
            {"queries", queries},
            {"accuracy", classified ? double(correct) / double(classified) : 0.0},
            {"p_at_1", p1 / n},
            {"p_at_10", p10 / n},
            {"category_precision_at_12", cp12 / n},
            {"duplicate_queries", dup_queries},
            {"duplicates_first", dup_queries ? double(dup_first) / double(dup_queries) : 1.0},
            {"confusion", {{"classes", classes}, {"matrix", matrix}}},
            {"per_category_accuracy", per_category},
            {"ms_per_query", ms / n}};
  }
};

using Clock = std::chrono::steady_clock;

nlohmann::json leave_one_out(Catalog& catalog, const EvalOptions& options) {
  const auto items = catalog.store().all_items();
  std::unordered_map<std::string, size_t> per_hash;
  for (const auto& item : items) ++per_hash[item.sha256];
  Tally tally;
  const size_t total = options.limit ? std::min(options.limit, items.size()) : items.size();
  for (size_t i = 0; i < total; ++i) {
    const Item& item = items[i];
    const auto started = Clock::now();
    QueryOptions all;
    all.k = 10;
    all.category = "all";
    const auto r_all = catalog.similar(item.id, all);
    QueryOptions automatic;
    automatic.k = 12;
    const auto r_auto = catalog.similar(item.id, automatic);
    tally.ms += std::chrono::duration<double, std::milli>(Clock::now() - started).count() / 2;
    tally.add(item.category, item.sha256, per_hash[item.sha256] > 1, r_all, r_auto, false);
    if (options.on_progress) options.on_progress(i + 1, total);
  }
  auto out = tally.to_json("leave_one_out");
  const auto stats = catalog.stats();
  out["accuracy"] = stats.classifier_cv_accuracy;
  out["accuracy_method"] = stats.model_version == 0
                               ? "5-fold cross-validation of the linear probe at training time"
                               : "accuracy of the trained head on its validation split at training time";
  return out;
}

nlohmann::json with_queries(Catalog& catalog, const EvalOptions& options) {
  auto entries = scan_import_source(options.queries);
  if (options.limit && entries.size() > options.limit) entries.resize(options.limit);
  std::unordered_map<std::string, bool> catalog_hashes;
  for (const auto& item : catalog.store().all_items()) catalog_hashes[item.sha256] = true;
  Tally tally;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (e.category.empty())
      throw Error(ErrorCode::kInvalidArgument, e.path + " is not inside a category sub-folder");
    const std::string bytes = read_file(e.path, catalog.options().max_image_bytes);
    const std::string sha = sha256_hex(bytes);
    QueryOptions all;
    all.k = 10;
    all.category = "all";
    const auto r_all = catalog.search_image(bytes, all);
    QueryOptions automatic;
    automatic.k = 12;
    const auto r_auto = catalog.search_embedding(r_all.embedding, automatic);
    tally.ms += r_all.timings.total_ms;
    tally.add(e.category, sha, catalog_hashes.count(sha) > 0, r_all, r_auto, true);
    if (options.on_progress) options.on_progress(i + 1, entries.size());
  }
  return tally.to_json("queries");
}

}  // namespace

nlohmann::json evaluate(Catalog& catalog, const EvalOptions& options) {
  if (!catalog.ready())
    throw Error(ErrorCode::kNotReady, "the catalog is empty or not trained; nothing to evaluate");
  return options.queries.empty() ? leave_one_out(catalog, options) : with_queries(catalog, options);
}

}  // namespace lookalike

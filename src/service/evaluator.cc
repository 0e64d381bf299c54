#include "service/evaluator.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <unordered_map>

#include "common/error.h"
#include "common/files.h"
#include "image/image_decoder.h"
#include "image/product_colour.h"
#include "service/import_source.h"

namespace lookalike {
namespace {

constexpr size_t kColourDepth = 12;  // results whose colour is compared with the query's

// Product colours of catalog items, measured once per item from its stored photo.
class ColourCache {
 public:
  explicit ColourCache(Catalog& catalog) : catalog_(catalog) {}
  const LabColour& of(const Item& item) {
    auto it = colours_.find(item.key);
    if (it == colours_.end()) {
      const std::string bytes = read_file(catalog_.image_file(item), catalog_.options().max_image_bytes);
      it = colours_
               .emplace(item.key, product_colour(decode_image_or_throw(bytes, catalog_.options().decode).rgb))
               .first;
    }
    return it->second;
  }
  // Mean CIE76 distance between `query` and the first kColourDepth hits; -1 without hits.
  double mean_distance(const LabColour& query, const std::vector<Hit>& hits) {
    const size_t n = std::min(kColourDepth, hits.size());
    if (n == 0) return -1;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += delta_e76(query, of(hits[i].item));
    return sum / static_cast<double>(n);
  }

 private:
  Catalog& catalog_;
  std::unordered_map<int64_t, LabColour> colours_;
};

// The mean of the queries' colour distances; a query without hits (distance -1) is left out.
struct MeanDistance {
  size_t queries = 0;
  double sum = 0;
  void add(double distance) {
    if (distance < 0) return;
    ++queries;
    sum += distance;
  }
  double mean() const { return queries ? sum / double(queries) : 0.0; }
};

struct Tally {
  size_t queries = 0, classified = 0, correct = 0;
  double p1 = 0, p10 = 0, cp12 = 0;
  MeanDistance colour, category_colour;  // of the results of mode all / mode auto
  size_t dup_queries = 0, dup_first = 0;
  size_t with_same_item = 0;  // queries with a hit taken for their very product shot
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
    with_same_item += std::any_of(all.hits.begin(), all.hits.end(), [](const Hit& h) { return h.same_item; });
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
            {"colour_distance_at_12", colour.mean()},
            {"category_colour_distance_at_12", category_colour.mean()},
            {"same_item_rate", double(with_same_item) / n},
            {"confusion", {{"classes", classes}, {"matrix", matrix}}},
            {"per_category_accuracy", per_category},
            {"ms_per_query", ms / n}};
  }
};

using Clock = std::chrono::steady_clock;

nlohmann::json leave_one_out(Catalog& catalog, const EvalOptions& options, ColourCache& colours) {
  const auto items = catalog.store().all_items();
  std::unordered_map<std::string, size_t> per_hash;
  for (const auto& item : items) ++per_hash[item.sha256];
  Tally tally;
  const size_t total = options.limit ? std::min(options.limit, items.size()) : items.size();
  for (size_t i = 0; i < total; ++i) {
    const Item& item = items[i];
    const auto started = Clock::now();
    QueryOptions all;
    all.k = kColourDepth;
    all.category = "all";
    all.colour_weight = options.colour_weight;
    const auto r_all = catalog.similar(item.id, all);
    QueryOptions automatic;
    automatic.k = 12;
    automatic.colour_weight = options.colour_weight;
    const auto r_auto = catalog.similar(item.id, automatic);
    tally.ms += std::chrono::duration<double, std::milli>(Clock::now() - started).count() / 2;
    tally.add(item.category, item.sha256, per_hash[item.sha256] > 1, r_all, r_auto, false);
    tally.colour.add(colours.mean_distance(colours.of(item), r_all.hits));
    tally.category_colour.add(colours.mean_distance(colours.of(item), r_auto.hits));
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

nlohmann::json with_queries(Catalog& catalog, const EvalOptions& options, ColourCache& colours) {
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
    all.k = kColourDepth;
    all.category = "all";
    all.colour_weight = options.colour_weight;
    const auto r_all = catalog.search_image(bytes, all);
    QueryOptions automatic;
    automatic.k = 12;
    automatic.colour_weight = options.colour_weight;
    const auto r_auto = catalog.search_embedding(r_all.embedding, automatic);
    tally.ms += r_all.timings.total_ms;
    tally.add(e.category, sha, catalog_hashes.count(sha) > 0, r_all, r_auto, true);
    const LabColour query_colour = product_colour(decode_image_or_throw(bytes, catalog.options().decode).rgb);
    tally.colour.add(colours.mean_distance(query_colour, r_all.hits));
    tally.category_colour.add(colours.mean_distance(query_colour, r_auto.hits));
    if (options.on_progress) options.on_progress(i + 1, entries.size());
  }
  return tally.to_json("queries");
}

// The catalog items used as instance queries: a seeded sample, the same for every version.
std::vector<Item> instance_sample(Catalog& catalog, size_t n, std::mt19937& rng) {
  auto items = catalog.store().all_items();
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  std::shuffle(items.begin(), items.end(), rng);
  if (items.size() > n) items.resize(n);
  return items;
}

nlohmann::json instance_retrieval(Catalog& catalog, const EvalOptions& options, ColourCache& colours) {
  std::mt19937 rng(options.seed);
  const auto sample = instance_sample(catalog, options.instance_queries, rng);
  size_t first = 0, in_top = 0, recognised = 0;
  MeanDistance colour;
  double ms = 0;
  for (size_t i = 0; i < sample.size(); ++i) {
    const Item& item = sample[i];
    const std::string stored = read_file(catalog.image_file(item), catalog.options().max_image_bytes);
    const std::string altered =
        alter_photo(decode_image_or_throw(stored, catalog.options().decode).rgb, options.alterations, rng);
    QueryOptions all;
    all.k = kColourDepth;
    all.category = "all";
    all.colour_weight = options.colour_weight;
    const auto result = catalog.search_image(altered, all);
    ms += result.timings.total_ms;
    // Byte-identical twins are the same photo: finding either is finding the item.
    const auto hit = std::find_if(result.hits.begin(), result.hits.end(),
                                  [&](const Hit& h) { return h.item.sha256 == item.sha256; });
    first += hit == result.hits.begin() && hit != result.hits.end();
    in_top += hit != result.hits.end();
    recognised += hit != result.hits.end() && hit->same_item;
    colour.add(colours.mean_distance(
        product_colour(decode_image_or_throw(altered, catalog.options().decode).rgb), result.hits));
    if (options.on_progress) options.on_progress(i + 1, sample.size());
  }
  const double n = sample.empty() ? 1 : static_cast<double>(sample.size());
  return {{"queries", sample.size()},
          {"seed", options.seed},
          {"recall_at_1", static_cast<double>(first) / n},
          {"recall_at_12", static_cast<double>(in_top) / n},
          {"same_item_recall", static_cast<double>(recognised) / n},
          {"colour_distance_at_12", colour.mean()},
          {"ms_per_query", ms / n}};
}

}  // namespace

nlohmann::json evaluate(Catalog& catalog, const EvalOptions& options) {
  if (!catalog.ready())
    throw Error(ErrorCode::kNotReady, "the catalog is empty or not trained; nothing to evaluate");
  ColourCache colours(catalog);
  auto result = options.queries.empty() ? leave_one_out(catalog, options, colours)
                                        : with_queries(catalog, options, colours);
  if (options.instance_queries > 0) result["instance"] = instance_retrieval(catalog, options, colours);
  result["color_weight"] = options.colour_weight;
  return result;
}

}  // namespace lookalike

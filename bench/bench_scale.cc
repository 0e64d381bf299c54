// The vector index at scale (issue 14): for 100k and 1M items and each index type, build time,
// bytes per item in RAM and on disk, single-thread search p50/p99 for k = 12 (unfiltered, a 1/6
// category filter, a 1% filter), recall@12 against exact search on the same vectors, add and
// remove latency, start-up (snapshot read) time and recommend throughput.
//
//   build/bench/bench_scale --data DIR [--sizes 100000,1000000] [--kinds flat,ivfpq,hnsw]
//                           [--queries 200] [--noise 1.2] [--hnsw-max 200000] [--flat-queries 20]
//                           [--query-part both|head|frozen] [--nprobe N] [--nlist N] [--rerank N]
//                           [--pq-bytes N] [--pq-bits 4|8] [--ef-search N] [--exact-subset N] [--parts
//                           512,512] [--write-catalog COPY_OF_DIR]
//                           [--noise-shape catalog|isotropic] [--sweep 32:128,64:256]
// A size of 0 runs on the real catalog itself (its first vectors as queries).
//
// It cannot embed a million photos here (about 28 hours of CNN), so it grows the real catalog
// in DIR (its active version's index vectors and categories) into N synthetic vectors. Each is
//     normalise_parts((1 - l) a + l b + s * sum_t w_t (r_t - mean) / sqrt(8))
// for a random real item a, a random real item b of a's category, l ~ U(0, 0.5), 8 random real
// items r_t with weights w_t ~ N(0, 1), and s = --noise: a continuum between same-category
// products, blurred along the directions the catalog's products really differ in (the noise has
// the catalog's covariance; --noise-shape isotropic adds white noise instead, which no index can
// compress), each part scaled to the length it has in the real vectors (--parts). s is chosen so
// that the similarity of a synthetic item to its nearest neighbour resembles the real
// catalog's; the program prints both distributions.
// Queries are fresh synthetic vectors (not in the index), shaped by --query-part as the service
// shapes a blended version's ranking query. Filters: the 1/6 filter is a category (inherited
// from a), asked for as the rows' tags (`category`, as the service asks) and as a filter function
// (`cat_by_fn`, as price and attribute filters run); the 1% filter accepts ids whose hash falls
// in 1% (like a price range). `recommend` is 1,000 stored items queried as `lookalike recommend`
// queries them (same category, and all).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <omp.h>

#include "bench_flags.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/percentile.h"
#include "common/vectors.h"
#include "index/vector_index.h"
#include "service/data_directory.h"
#include "store/catalog_store.h"

namespace {

// The process's resident memory, its own (anonymous) and file pages mapped into it, from
// /proc/self/status.
struct Rss {
  double anon_mb = 0, file_mb = 0;
};
Rss rss() {
  Rss r;
  std::ifstream status("/proc/self/status");
  double kb = 0;
  for (std::string line; std::getline(status, line);) {
    if (std::sscanf(line.c_str(), "RssAnon: %lf", &kb) == 1) r.anon_mb = kb / 1e3;
    if (std::sscanf(line.c_str(), "RssFile: %lf", &kb) == 1) r.file_mb = kb / 1e3;
  }
  return r;
}
using namespace lookalike;
using Clock = std::chrono::steady_clock;

struct Real {
  size_t d = 0;
  std::vector<float> vectors;
  std::vector<int64_t> keys;                     // per real row: the item's key
  std::vector<int> category;                     // per real row
  std::vector<std::vector<size_t>> by_category;  // rows of each category
  std::vector<std::string> names;
  std::vector<size_t> parts;      // the index's parts (one: the whole vector)
  std::vector<float> part_norms;  // the mean length of each part in the real vectors
};

Real load_real(const std::string& root, const std::vector<size_t>& parts) {
  DataDirectory directory(root);
  auto store = open_sqlite_store(directory.database());
  const int64_t version = store->active_version();
  std::optional<IndexSnapshot> newest;
  for (const auto& s : directory.index_snapshots()) {
    if (s.version == version && (!newest || s.revision > newest->revision)) newest = s;
  }
  if (!newest) throw std::runtime_error("no index snapshot of the active version in " + root);
  const auto index = load_index_file(newest->path.string());
  std::unordered_map<int64_t, std::string> category_of;
  for (const auto& item : store->all_items()) category_of[item.key] = item.category;
  Real real;
  real.d = index->dimension();
  std::map<std::string, int> numbers;
  for (const int64_t id : index->ids()) {
    const auto v = index->vector(id);
    const auto it = category_of.find(id);
    if (it == category_of.end()) continue;
    const auto [entry, fresh] = numbers.emplace(it->second, static_cast<int>(numbers.size()));
    if (fresh) real.names.push_back(it->second);
    real.vectors.insert(real.vectors.end(), v.begin(), v.end());
    real.keys.push_back(id);
    real.category.push_back(entry->second);
  }
  real.parts = parts.empty() ? std::vector<size_t>{real.d} : parts;
  size_t offset = 0;
  for (const size_t width : real.parts) {
    double sum = 0;
    for (size_t i = 0; i < real.category.size(); ++i)
      sum += std::sqrt(
          dot(real.vectors.data() + i * real.d + offset, real.vectors.data() + i * real.d + offset, width));
    real.part_norms.push_back(static_cast<float>(sum / static_cast<double>(real.category.size())));
    offset += width;
  }
  real.by_category.resize(numbers.size());
  for (size_t i = 0; i < real.category.size(); ++i)
    real.by_category[static_cast<size_t>(real.category[i])].push_back(i);
  return real;
}

struct Synthetic {
  std::vector<float> vectors;
  std::vector<int> category;
};

// Gives each part of v the length it has in the real vectors (a blended version's index
// vectors are two unit halves scaled by 1/sqrt(2); a plain version's are unit vectors).
void normalise_parts(float* v, const Real& real) {
  size_t offset = 0;
  for (size_t p = 0; p < real.parts.size(); ++p) {
    const size_t width = real.parts[p];
    l2_normalise(v + offset, width);
    for (size_t j = 0; j < width; ++j) v[offset + j] *= real.part_norms[p];
    offset += width;
  }
}

// The catalog's own directions of variation: each real vector minus the mean.
std::vector<float> deviations(const Real& real) {
  const size_t rows = real.category.size();
  std::vector<double> mean(real.d, 0.0);
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < real.d; ++j) mean[j] += real.vectors[i * real.d + j];
  std::vector<float> out(real.vectors);
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < real.d; ++j)
      out[i * real.d + j] -= static_cast<float>(mean[j] / static_cast<double>(rows));
  return out;
}

Synthetic generate(const Real& real, size_t n, float noise, const std::string& shape, uint32_t seed) {
  Synthetic s;
  s.vectors.resize(n * real.d);
  s.category.resize(n);
  const size_t rows = real.category.size();
  const auto spread = deviations(real);
  // Catalog-shaped noise sums kTerms random deviations with Gaussian weights: its covariance is
  // the catalog's, so it blurs items along the directions products really differ in.
  constexpr size_t kTerms = 8;
  const float scale = shape == "isotropic" ? noise / std::sqrt(static_cast<float>(real.d))
                                           : noise / std::sqrt(static_cast<float>(kTerms));
#pragma omp parallel
  {
    std::mt19937 rng(seed + 7919u * static_cast<uint32_t>(omp_get_thread_num()));
    std::normal_distribution<float> g(0.0f, scale);
    std::uniform_real_distribution<float> mix(0.0f, 0.5f);
#pragma omp for schedule(static)
    for (size_t i = 0; i < n; ++i) {
      const size_t a = rng() % rows;
      const auto& same = real.by_category[static_cast<size_t>(real.category[a])];
      const size_t b = same[rng() % same.size()];
      const float l = mix(rng);
      float* out = s.vectors.data() + i * real.d;
      for (size_t j = 0; j < real.d; ++j)
        out[j] = (1 - l) * real.vectors[a * real.d + j] + l * real.vectors[b * real.d + j];
      if (shape == "isotropic") {
        for (size_t j = 0; j < real.d; ++j) out[j] += g(rng);
      } else {
        for (size_t t = 0; t < kTerms; ++t) {
          const float w = g(rng);
          const float* dev = spread.data() + (rng() % rows) * real.d;
          for (size_t j = 0; j < real.d; ++j) out[j] += w * dev[j];
        }
      }
      normalise_parts(out, real);
      s.category[i] = real.category[a];
    }
  }
  return s;
}

bool in_one_percent(int64_t id) {
  return (static_cast<uint64_t>(id) * 2654435761u) % 100 == 0;
}

// Deciles of the similarity of `probes` rows to their nearest other row.
std::string nn_deciles(const float* vectors, size_t n, size_t d, size_t probes) {
  auto index = make_flat_index(d);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i);
  index->add(n, ids.data(), vectors);
  std::vector<float> queries;
  std::vector<int64_t> self;
  for (size_t p = 0; p < std::min(probes, n); ++p) {
    const size_t row = p * n / std::min(probes, n);
    self.push_back(static_cast<int64_t>(row));
    queries.insert(queries.end(), vectors + row * d, vectors + (row + 1) * d);
  }
  SearchParams params;
  params.k = 2;
  std::vector<double> best;
  const auto found = index->search(self.size(), queries.data(), params);
  for (size_t q = 0; q < found.size(); ++q) {
    for (const auto& nb : found[q]) {
      if (nb.id != self[q]) {
        best.push_back(nb.score);
        break;
      }
    }
  }
  std::ostringstream out;
  out.precision(3);
  for (double p : {0.1, 0.25, 0.5, 0.75, 0.9})
    out << " p" << static_cast<int>(p * 100) << "=" << percentile(best, p);
  return out.str();
}

struct Mode {
  const char* name;
  std::function<bool(int64_t)> accept;
  uint32_t tag;  // SearchParams::tag: the category filter is a tag, as the service's is
  size_t expected;
  // Each query restricted to its own category (tag and expected count per query), the search
  // widened for it or not (SearchParams::filter_follows_query).
  bool own_category = false;
  bool follows = false;
};

// Every row tagged with its category + 1 (0 is "untagged"), as the service tags rows.
void tag_rows(VectorIndex& index, const std::vector<int64_t>& ids, const std::vector<int>& category) {
  std::vector<uint32_t> tags(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) tags[i] = static_cast<uint32_t>(category[i] + 1);
  index.set_tags(ids.size(), ids.data(), tags.data());
}

// Each query's exact answers within its own category: one batch per category.
std::vector<std::vector<Neighbour>> own_category_answers(const VectorIndex& exact, const Synthetic& queries,
                                                         size_t d, size_t k,
                                                         const std::function<size_t(int)>& category_count) {
  std::map<int, std::vector<size_t>> by_category;
  for (size_t q = 0; q < queries.category.size(); ++q) by_category[queries.category[q]].push_back(q);
  std::vector<std::vector<Neighbour>> answers(queries.category.size());
  for (const auto& [c, members] : by_category) {
    std::vector<float> batch;
    for (size_t q : members) {
      const auto first = queries.vectors.begin() + static_cast<std::ptrdiff_t>(q * d);
      batch.insert(batch.end(), first, first + static_cast<std::ptrdiff_t>(d));
    }
    SearchParams params;
    params.k = k;
    params.tag = static_cast<uint32_t>(c + 1);
    params.expected_accepted = category_count(c);
    auto found = exact.search(members.size(), batch.data(), params);
    for (size_t i = 0; i < members.size(); ++i) answers[members[i]] = std::move(found[i]);
  }
  return answers;
}

double recall(const std::vector<std::vector<Neighbour>>& want,
              const std::vector<std::vector<Neighbour>>& got) {
  double sum = 0;
  for (size_t q = 0; q < want.size(); ++q) {
    size_t hit = 0;
    for (const auto& w : want[q]) {
      for (const auto& g : got[q]) hit += g.id == w.id;
    }
    sum += want[q].empty() ? 1.0 : static_cast<double>(hit) / static_cast<double>(want[q].size());
  }
  return sum / static_cast<double>(want.size());
}

struct Settings {
  std::vector<IndexKind> kinds;
  size_t query_count = 200, flat_queries = 20, hnsw_max = 200000;
  float noise = 1.2f;
  std::string noise_shape = "catalog";
  // Search settings to measure on each build: "nprobe-or-ef:rerank" pairs (empty: the defaults).
  std::vector<std::pair<size_t, size_t>> sweep;
  // Which part of the vectors the queries weigh: "both" (a plain unit vector), or "head" /
  // "frozen": only the first / second half, scaled by sqrt(2), as a blended version's ranking
  // query (frozen search weight 0) and its instance query are.
  std::string query_part = "both";
  std::string index_cache;    // folder of built indexes to reuse (--index-cache)
  std::string write_catalog;  // grow this copy of --data into a catalog to serve (--write-catalog)
  IndexOptions index;
};

// Queries shaped as the service shapes them for a blended version (see Settings::query_part).
void shape_queries(std::vector<float>& queries, size_t d, const std::string& part) {
  if (part == "both") return;
  const size_t half = d / 2;
  for (size_t q = 0; q < queries.size() / d; ++q) {
    float* v = queries.data() + q * d;
    for (size_t j = 0; j < d; ++j) {
      const bool kept = (j < half) == (part == "head");
      v[j] = kept ? v[j] * std::sqrt(2.0f) : 0.0f;
    }
  }
}

// --write-catalog DIR: DIR, a copy of the --data directory, grows by the n synthetic items as
// catalog rows (`lookalike serve` can then serve n + the real items): each row copies the
// fields and the active version's raw descriptor of the first real item of its category, with
// its own id and SHA-256 (its photo is that item's). Its frozen-recipe descriptor is a
// placeholder of one value: the synthetic vectors were never embedded, so only an item added
// later is embedded from descriptors, and `check` reports these. The index snapshot of the
// active version is replaced by an IVF-PQ index of the n synthetic vectors under their keys and
// the real items' vectors, at the store's revision: what `serve` would have saved.
void write_catalog(const Real& real, const Synthetic& data, const Settings& settings) {
  const size_t n = data.category.size();
  DataDirectory directory(settings.write_catalog);
  auto store = open_sqlite_store(directory.database());
  const int64_t version = store->active_version();
  std::vector<Item> templates;
  std::vector<std::vector<float>> descriptors;
  for (const auto& name : real.names) {
    templates.push_back(store->list({name, 0, 1}).at(0));
    descriptors.push_back(store->descriptor(version, templates.back().key));
  }
  const auto started = Clock::now();
  std::vector<int64_t> keys;
  constexpr size_t kBatch = 10000;
  for (size_t first = 0; first < n; first += kBatch) {
    std::vector<NewItem> batch;
    for (size_t i = first; i < std::min(n, first + kBatch); ++i) {
      const auto c = static_cast<size_t>(data.category[i]);
      NewItem item;
      item.item = templates[c];
      item.item.id = "synthetic-" + std::to_string(i);
      char sha[65];
      std::snprintf(sha, sizeof sha, "%064zx", i);
      item.item.sha256 = sha;
      item.descriptor = {0.0f};
      item.version_descriptors = {{version, descriptors[c]}};
      batch.push_back(std::move(item));
    }
    const auto added = store->insert(batch);
    store->put_copy_checks(added, {});
    keys.insert(keys.end(), added.begin(), added.end());
  }
  std::printf("wrote %zu catalog rows in %.1f s\n", n, ms_since(started) / 1e3);
  std::optional<IndexSnapshot> old;
  for (const auto& snapshot : directory.index_snapshots()) {
    if (snapshot.version == version) old = snapshot;
  }
  if (!old) throw std::runtime_error("no index snapshot of the active version to replace");
  IndexOptions options = settings.index;
  options.kind = IndexKind::kIvfPq;
  const auto built = Clock::now();
  const auto index = build_index(options, real.d, n, keys.data(), data.vectors.data());
  index->add(real.keys.size(), real.keys.data(), real.vectors.data());
  const std::string path = directory.index_snapshot_path(version, old->projection, store->revision());
  save_index_file(*index, path);
  directory.remove_index_snapshots(version, path);
  std::printf("built and saved the index of %zu items in %.1f s: %s\n", n, ms_since(built) / 1e3,
              path.c_str());
}

void run_size(const Real& real, size_t n, const Settings& settings) {
  const size_t query_count = settings.query_count, flat_queries = settings.flat_queries;
  std::printf("\n== %zu items (%zu dimensions) ==\n", n, real.d);
  auto started = Clock::now();
  // n = 0: the real catalog itself, queried by its own first vectors.
  const bool real_only = n == 0;
  Synthetic data, fresh;
  if (real_only) {
    n = real.category.size();
    data = {real.vectors, real.category};
    fresh.vectors.assign(real.vectors.begin(),
                         real.vectors.begin() + static_cast<std::ptrdiff_t>(query_count * real.d));
    fresh.category.assign(real.category.begin(),
                          real.category.begin() + static_cast<std::ptrdiff_t>(query_count));
  } else {
    data = generate(real, n, settings.noise, settings.noise_shape, 1);
    fresh = generate(real, query_count, settings.noise, settings.noise_shape, 2);
  }
  shape_queries(fresh.vectors, real.d, settings.query_part);
  std::printf("generated in %.1f s; nearest-neighbour similarity, synthetic:%s\n", ms_since(started) / 1e3,
              nn_deciles(data.vectors.data(), n, real.d, 400).c_str());
  if (!settings.write_catalog.empty()) return write_catalog(real, data, settings);
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(i);
  const int category = fresh.category.front();  // the 1/6 filter: one category for every query
  const auto category_count = [&](int c) {
    return static_cast<size_t>(std::count(data.category.begin(), data.category.end(), c));
  };
  // The category filter twice: as the service asks for it (the rows' tags), and as a filter
  // function reading the category of the id (how price and attribute filters run).
  std::vector<Mode> modes = {
      {"unfiltered", nullptr, 0, SIZE_MAX},
      {"category", nullptr, static_cast<uint32_t>(category + 1), category_count(category)},
      {"cat_by_fn", [&](int64_t id) { return data.category[static_cast<size_t>(id)] == category; }, 0,
       category_count(category)},
      {"1%", in_one_percent, 0, n / 100},
      {"own_cat", nullptr, 0, 0, true, true},
      {"own_cat_w", nullptr, 0, 0, true, false}};
  const auto restrict_to_own = [&](SearchParams& p, size_t q) {
    p.tag = static_cast<uint32_t>(fresh.category[q] + 1);
    p.expected_accepted = category_count(fresh.category[q]);
  };
  SearchParams params;
  params.k = 12;
  // Exact answers, with every core (FAISS's flat search uses BLAS for many queries).
  std::vector<std::vector<std::vector<Neighbour>>> truth;
  started = Clock::now();
  {
    auto exact = make_flat_index(real.d);
    exact->add(n, ids.data(), data.vectors.data());
    tag_rows(*exact, ids, data.category);
    std::vector<std::vector<Neighbour>> own;  // every own-category mode has the same answers
    for (const auto& mode : modes) {
      params.accept = mode.accept;
      params.tag = mode.tag;
      if (!mode.own_category) {
        truth.push_back(exact->search(query_count, fresh.vectors.data(), params));
        continue;
      }
      if (own.empty()) own = own_category_answers(*exact, fresh, real.d, params.k, category_count);
      truth.push_back(own);
    }
  }
  std::printf("exact answers for %zu queries in %.1f s\n", query_count, ms_since(started) / 1e3);
  std::printf("%-6s %9s %8s %8s %8s | %-10s %8s %8s %7s\n", "index", "build_s", "ram_B/it", "f16_B/it",
              "disk_B/it", "search", "p50_ms", "p99_ms", "recall");
  for (const IndexKind kind : settings.kinds) {
    if (kind == IndexKind::kHnsw && n > settings.hnsw_max) {
      std::printf("%-6s skipped above %zu items (--hnsw-max)\n", index_kind_name(kind), settings.hnsw_max);
      continue;
    }
    IndexOptions options = settings.index;
    options.kind = kind;
    omp_set_num_threads(2);
    // With --index-cache, an index built by an earlier run on the same vectors is loaded instead
    // of built again (build_s then reads 0): for comparing search code, not for build figures.
    const bool cached = !settings.index_cache.empty();
    const auto path = cached ? std::filesystem::path(settings.index_cache) /
                                   (std::string(index_kind_name(kind)) + "-" + std::to_string(n) + ".index")
                             : std::filesystem::temp_directory_path() / "bench_scale.index";
    started = Clock::now();
    std::unique_ptr<VectorIndex> index;
    if (!cached || !std::filesystem::exists(path)) {
      if (cached) std::filesystem::create_directories(settings.index_cache);
      index = build_index(options, real.d, n, ids.data(), data.vectors.data());
      save_index_file(*index, path.string());
    }
    const double build_s = index ? ms_since(started) / 1e3 : 0.0;
    const double disk = static_cast<double>(std::filesystem::file_size(path));
    // Searched as `serve` searches it: loaded from its snapshot, float16 copies mapped from it.
    index.reset();
    const Rss before_load = rss();
    started = Clock::now();
    index = load_index_file(path.string());
    const double start_s = ms_since(started) / 1e3;
    if (!cached) std::filesystem::remove(path);  // the mapping keeps the file's pages
    index->set_search_options(options);          // the file keeps the settings it was built with
    started = Clock::now();
    tag_rows(*index, ids, data.category);  // tags are not in snapshots: `serve` tags at start-up
    const double tag_s = ms_since(started) / 1e3;
    const Rss after_load = rss();
    // Recommend as `lookalike recommend` does it: 1,000 stored items, each queried by its own
    // vector shaped as the ranking query (--query-part), k = 16, every core, one batch per
    // category restricted to it (--category same) and one batch unrestricted (--category all).
    // Measured for each search setting below.
    std::map<int, std::vector<float>> batches;
    std::vector<float> all;
    for (size_t i = 0; i < 1000; ++i) {
      const size_t row = i * (n / 1000);
      const auto first = data.vectors.begin() + static_cast<std::ptrdiff_t>(row * real.d);
      batches[data.category[row]].insert(batches[data.category[row]].end(), first,
                                         first + static_cast<std::ptrdiff_t>(real.d));
      all.insert(all.end(), first, first + static_cast<std::ptrdiff_t>(real.d));
    }
    for (auto& [c, batch] : batches) shape_queries(batch, real.d, settings.query_part);
    shape_queries(all, real.d, settings.query_part);
    const auto recommend_per_s = [&](bool same_category) {
      omp_set_num_threads(2);
      SearchParams rec;
      rec.k = 16;
      const auto t = Clock::now();
      if (same_category) {
        for (const auto& [c, batch] : batches) {
          rec.tag = static_cast<uint32_t>(c + 1);
          rec.expected_accepted = category_count(c);
          rec.filter_follows_query = true;  // as `lookalike recommend` asks
          index->search(batch.size() / real.d, batch.data(), rec);
        }
      } else {
        index->search(all.size() / real.d, all.data(), rec);
      }
      omp_set_num_threads(1);
      return 1000 / (ms_since(t) / 1e3);
    };
    // Single-thread search latency and recall, for each search setting swept.
    omp_set_num_threads(1);
    const size_t queries = kind == IndexKind::kFlat ? std::min(flat_queries, query_count) : query_count;
    auto sweep = settings.sweep;
    if (sweep.empty() || kind == IndexKind::kFlat) sweep = {{0, 0}};
    for (const auto& [breadth, rerank] : sweep) {
      // 0:0 (and no --sweep) searches with the options' own settings (automatic by default),
      // also on a cached index, whose file keeps the settings it was built with.
      IndexOptions tuned = options;
      if (breadth > 0) {
        tuned.nprobe = tuned.ef_search = breadth;
        tuned.rerank = rerank;
      }
      index->set_search_options(tuned);
      const double same = recommend_per_s(true);
      std::printf("%-6s search settings: %s; recommend %.0f items/s same category, %.0f all (2 threads)\n",
                  "", index->parameters().c_str(), same, recommend_per_s(false));
      for (size_t m = 0; m < modes.size(); ++m) {
        params.accept = modes[m].accept;
        params.tag = modes[m].tag;
        params.expected_accepted = modes[m].expected;
        params.filter_follows_query = modes[m].follows;
        std::vector<double> ms;
        std::vector<std::vector<Neighbour>> got;
        for (size_t q = 0; q < queries; ++q) {
          if (modes[m].own_category) restrict_to_own(params, q);
          const auto t = Clock::now();
          got.push_back(index->search(1, fresh.vectors.data() + q * real.d, params).front());
          ms.push_back(ms_since(t));
        }
        const std::vector<std::vector<Neighbour>> want(
            truth[m].begin(), truth[m].begin() + static_cast<std::ptrdiff_t>(queries));
        if (m == 0) {
          std::printf("%-6s %9.1f %8.0f %8.0f %8.0f | ", index_kind_name(kind), build_s,
                      static_cast<double>(index->index_bytes()) / static_cast<double>(n),
                      static_cast<double>(index->exact_copy_bytes()) / static_cast<double>(n),
                      disk / static_cast<double>(n));
        } else {
          std::printf("%-6s %9s %8s %8s %8s | ", "", "", "", "", "");
        }
        std::printf("%-10s %8.3f %8.3f %7.3f\n", modes[m].name, percentile(ms, 0.5), percentile(ms, 0.99),
                    recall(want, got));
        std::fflush(stdout);
      }
    }
    // Add and remove, one item at a time (what an HTTP add or delete does to the index), after
    // the searches: the filters read the category of the original ids.
    std::vector<double> add_ms, remove_ms;
    // (A flat index compacts its rows on every remove: 1 s each at 1M, so fewer there.)
    const size_t writes = kind == IndexKind::kFlat && n > 100000 ? 10 : 100;
    for (size_t i = 0; i < writes; ++i) {
      const int64_t id = ids[(i * 7919) % n];
      auto t = Clock::now();
      index->remove({id});
      remove_ms.push_back(ms_since(t));
      t = Clock::now();
      const int64_t fresh_id = static_cast<int64_t>(n + i);
      index->add(1, &fresh_id, data.vectors.data() + static_cast<size_t>(id) * real.d);
      add_ms.push_back(ms_since(t));
    }
    std::printf(
        "%-6s add p50 %.3f ms, p99 %.3f ms; remove p50 %.4f ms; start-up (read + load snapshot + tag rows) "
        "%.2f s (tagging %.2f s)\n",
        "", percentile(add_ms, 0.5), percentile(add_ms, 0.99), percentile(remove_ms, 0.5), start_s + tag_s,
        tag_s);
    const Rss after_use = rss();
    std::printf(
        "%-6s memory: loading and tagging took %.0f MB of the process's own memory (RssAnon), "
        "searches and writes since %.0f MB more; float16 copies %.0f MB in memory, %.0f MB mapped "
        "from the snapshot, of which %.0f MB were paged in (RssFile)\n",
        "", after_load.anon_mb - before_load.anon_mb, after_use.anon_mb - after_load.anon_mb,
        static_cast<double>(index->exact_copy_bytes()) / 1e6,
        static_cast<double>(index->mapped_copy_bytes()) / 1e6, after_use.file_mb - before_load.file_mb);
    std::printf("%-6s parameters: %s\n", "", index->parameters().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string data, sizes = "100000,1000000", kinds = "flat,ivfpq,hnsw";
  Settings settings;
  if (!lookalike::bench::every_flag_has_a_value(argc, argv)) return 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data")
      data = value;
    else if (flag == "--sizes")
      sizes = value;
    else if (flag == "--kinds")
      kinds = value;
    else if (flag == "--queries")
      settings.query_count = std::stoul(value);
    else if (flag == "--flat-queries")
      settings.flat_queries = std::stoul(value);
    else if (flag == "--hnsw-max")
      settings.hnsw_max = std::stoul(value);
    else if (flag == "--noise")
      settings.noise = std::stof(value);
    else if (flag == "--noise-shape")
      settings.noise_shape = value;
    else if (flag == "--sweep") {
      std::stringstream ps(value);
      for (std::string pair; std::getline(ps, pair, ',');) {
        const auto colon = pair.find(':');
        settings.sweep.emplace_back(std::stoul(pair.substr(0, colon)), std::stoul(pair.substr(colon + 1)));
      }
    } else if (flag == "--query-part")
      settings.query_part = value;
    else if (flag == "--nprobe")
      settings.index.nprobe = std::stoul(value);
    else if (flag == "--nlist")
      settings.index.nlist = std::stoul(value);
    else if (flag == "--pq-bytes")
      settings.index.pq_bytes = std::stoul(value);
    else if (flag == "--pq-bits")
      settings.index.pq_bits = std::stoul(value);
    else if (flag == "--rerank")
      settings.index.rerank = std::stoul(value);
    else if (flag == "--ef-search")
      settings.index.ef_search = std::stoul(value);
    else if (flag == "--exact-subset")
      settings.index.exact_subset = std::stoul(value);
    else if (flag == "--index-cache")
      settings.index_cache = value;
    else if (flag == "--write-catalog")
      settings.write_catalog = value;
    else if (flag == "--parts") {
      std::stringstream ps(value);
      for (std::string part; std::getline(ps, part, ',');) settings.index.parts.push_back(std::stoul(part));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (data.empty()) {
    std::fprintf(stderr, "usage: bench_scale --data DIR (a trained catalog) [--sizes 100000,1000000] ...\n");
    return 2;
  }
  try {
    const Real real = load_real(data, settings.index.parts);
    std::printf(
        "real catalog: %zu vectors of %zu dimensions, %zu categories; nearest-neighbour similarity:%s\n",
        real.category.size(), real.d, real.by_category.size(),
        nn_deciles(real.vectors.data(), real.category.size(), real.d, 400).c_str());
    std::stringstream ks(kinds);
    for (std::string k; std::getline(ks, k, ',');) settings.kinds.push_back(parse_index_kind(k));
    std::stringstream ss(sizes);
    for (std::string s; std::getline(ss, s, ',');) run_size(real, std::stoul(s), settings);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_scale: %s\n", e.what());
    return 1;
  }
  return 0;
}

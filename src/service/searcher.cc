#include "service/searcher.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "common/clock.h"
#include "common/error.h"
#include "common/vectors.h"
#include "image/product_colour.h"

namespace lookalike {
namespace {

using Clock = std::chrono::steady_clock;

cv::Mat crop_image(const cv::Mat& rgb, const cv::Rect& crop) {
  const cv::Rect clipped = crop & cv::Rect(0, 0, rgb.cols, rgb.rows);
  if (clipped.width < 1 || clipped.height < 1) {
    throw Error(ErrorCode::kInvalidArgument, "crop {x,y,w,h} lies outside the " + std::to_string(rgb.cols) +
                                                 "x" + std::to_string(rgb.rows) + " image");
  }
  return rgb(clipped).clone();
}

std::vector<float> mean_row(cv::Mat rows) {
  if (rows.rows > 1) cv::reduce(rows, rows, 0, cv::REDUCE_AVG);
  return std::vector<float>(rows.ptr<float>(0), rows.ptr<float>(0) + rows.cols);
}

// The vectors one query searches with: `ranking` orders the results; `instance` finds the very
// product shot (cos_frozen alone) when the version has an instance tier. Empty there, the
// ranking is by the frozen descriptor already (the frozen recipe) and serves both.
struct SearchQueries {
  std::vector<float> ranking, instance;
};

SearchQueries search_queries(const ServingState& state, const std::vector<float>& projected,
                             const std::vector<float>& frozen) {
  if (!state.searches_frozen()) return {projected, {}};
  if (frozen.size() != state.frozen_pca->input_dimension()) {
    throw Error(ErrorCode::kInternal,
                "the query lacks the frozen recipe's descriptor this version searches by");
  }
  const auto whitened = state.frozen_pca->apply(1, frozen.data());
  const float w = state.frozen_search_weight;
  SearchQueries q{state.weighted_query(projected.data(), whitened.data(), 1 - w, w), {}};
  if (state.has_instance_tier()) q.instance = state.weighted_query(projected.data(), whitened.data(), 0, 1);
  return q;
}

// The ranking score of an indexed item (for hits the instance search found).
float ranking_score(const ServingState& state, const SearchQueries& queries, int64_t key) {
  const auto indexed = state.index->vector(key);
  return dot(queries.ranking.data(), indexed.data(), std::min(indexed.size(), queries.ranking.size()));
}

// Whether the frozen descriptor takes the i-th of `found` (by decreasing cos_frozen) for the
// query's very product shot: a cosine at the threshold, or the best match standing clear of
// the next one (heavily altered copies of a photo can score low but still far above the rest).
bool same_item(const ServingState& state, const std::vector<Neighbour>& found, size_t i) {
  if (found[i].score >= state.instance_threshold) return true;
  if (i != 0 || found[0].score < kInstanceFloor) return false;
  const float next = found.size() > 1 ? found[1].score : 0.0f;
  return found[0].score - next >= state.instance_margin;
}

// Alpha query expansion: the ranking query plus its best `expansion.neighbours` candidates'
// ranking queries weighted by score^power, each part scaled back to the query's own length so
// that the parts keep their weights (a part the query does not weigh stays zero). The
// candidates are then rescored by the expanded query and reordered, so that the scores shown
// fall down the list as the order does. Reordering the first search's pool instead of
// searching again keeps the cost at a few hundred dot products: a second flat scan of a
// 4k-item catalog cost about 3 ms.
std::vector<Neighbour> reordered_by_expansion(const ServingState& state, const std::vector<float>& query,
                                              const std::vector<Neighbour>& candidates,
                                              const QueryExpansion& expansion) {
  std::vector<std::vector<float>> vectors;
  vectors.reserve(candidates.size());
  for (const auto& c : candidates) vectors.push_back(state.ranking_query_of(state.index->vector(c.id)));
  std::vector<float> expanded(query);
  for (size_t i = 0; i < std::min(expansion.neighbours, candidates.size()); ++i) {
    const float weight = std::pow(std::max(candidates[i].score, 0.0f), expansion.power);
    if (vectors[i].size() != expanded.size()) continue;
    for (size_t d = 0; d < expanded.size(); ++d) expanded[d] += weight * vectors[i][d];
  }
  const size_t head = state.searches_frozen() ? state.descriptor_dimension : query.size();
  for (const auto& [begin, end] : {std::pair{size_t{0}, head}, std::pair{head, query.size()}}) {
    const float wanted = std::sqrt(dot(query.data() + begin, query.data() + begin, end - begin));
    const float length = std::sqrt(dot(expanded.data() + begin, expanded.data() + begin, end - begin));
    for (size_t d = begin; d < end; ++d) expanded[d] = length > 0 ? expanded[d] * wanted / length : 0.0f;
  }
  std::vector<std::pair<float, size_t>> order;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const bool comparable = vectors[i].size() == expanded.size();
    order.emplace_back(comparable ? dot(expanded.data(), vectors[i].data(), expanded.size()) : -2.0f, i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<Neighbour> reordered;
  for (const auto& [score, i] : order) reordered.push_back({candidates[i].id, score});
  return reordered;
}

// Up to `limit` hits: first the items the frozen descriptor recognises as the query's very
// product shot (same_item), by that cosine, with their ranking score for the photo's own query;
// then the rest by their ranking score, for the expanded query with `expansion`.
std::vector<Hit> ranked_hits(const ServingState& state, const SearchQueries& queries,
                             const SearchParams& params, size_t limit, const QueryExpansion& expansion) {
  std::vector<Hit> hits;
  std::unordered_set<int64_t> taken;
  auto add = [&](int64_t key, float score, bool same_item) {
    if (hits.size() >= limit || !taken.insert(key).second) return;
    hits.push_back(
        {state.items.at(key), score, state.score_scale.similarity(score), same_item, std::nullopt, {}});
  };
  const bool expand = expansion.neighbours > 0;
  SearchParams first_params = params;
  if (expand) first_params.k = std::max(params.k, expansion.pool);
  const auto first = state.index->search(1, queries.ranking.data(), first_params).front();
  const auto ranked = expand ? reordered_by_expansion(state, queries.ranking, first, expansion) : first;
  if (state.has_instance_tier()) {
    const bool own_search = !queries.instance.empty();
    const auto found = own_search ? state.index->search(1, queries.instance.data(), params).front() : first;
    for (size_t i = 0; i < found.size() && same_item(state, found, i); ++i)
      add(found[i].id, own_search ? ranking_score(state, queries, found[i].id) : found[i].score, true);
  }
  for (const auto& n : ranked) add(n.id, n.score, false);
  return hits;
}

// Orders the hits after the very-item ones by (1 - w) similarity + w colour_similarity. A hit
// without stored colours counts its similarity for both, so it neither gains nor loses.
void rerank_by_colour(std::vector<Hit>& hits, const std::vector<float>& query_colours, float weight) {
  const auto blended = [weight](const Hit& h) {
    return (1 - weight) * h.similarity + weight * h.colour_similarity.value_or(h.similarity);
  };
  for (Hit& h : hits) {
    if (valid_colour_signature(h.item.colours))
      h.colour_similarity = colour_similarity(colour_distance(query_colours, h.item.colours));
  }
  const auto rest = std::find_if(hits.begin(), hits.end(), [](const Hit& h) { return !h.same_item; });
  std::stable_sort(rest, hits.end(), [&](const Hit& a, const Hit& b) { return blended(a) > blended(b); });
}

// Keeps the best-ranked hit of each group of copies and names on it the group's other members
// that the search could have returned (`accept`). Copies of the `exclude`d item (`similar`'s own
// item) are dropped: a copy of the item is not a look-alike of it.
void collapse_copies(const ServingState& state, std::vector<Hit>& hits,
                     const std::function<bool(int64_t)>& accept, std::optional<int64_t> exclude) {
  std::unordered_set<const std::vector<int64_t>*> seen;
  if (exclude) seen.insert(state.copies.group_of(*exclude));
  std::vector<Hit> kept;
  for (Hit& hit : hits) {
    const std::vector<int64_t>* group = state.copies.group_of(hit.item.key);
    if (group && !seen.insert(group).second) continue;
    for (const int64_t key : group ? *group : std::vector<int64_t>{}) {
      if (key != hit.item.key && state.items.contains(key) && (!accept || accept(key)))
        hit.copies.emplace_back(state.items.id_of(key));
    }
    kept.push_back(std::move(hit));
  }
  hits = std::move(kept);
}

}  // namespace

Searcher::Searcher(LiveState& live, const CatalogStore& store, ModelPools& models, SearcherOptions options)
    : live_(live), store_(store), models_(models), options_(std::move(options)) {}

QueryEmbedding Searcher::embed_query(const cv::Mat& rgb) {
  QueryEmbedding e;
  std::shared_ptr<HeadPool> heads;
  bool frozen_too = false;
  live_.read([&](const ServingState& state) {
    e.version = state.version;
    heads = state.heads;
    frozen_too = state.needs_frozen();
  });
  // Mirrored twin second in the batch when flip averaging is on; rows are averaged.
  std::vector<cv::Mat> images{rgb};
  if (options_.flip_queries) {
    images.emplace_back();
    cv::flip(rgb, images.back(), 1);
  }
  if (!heads) {
    e.raw = mean_row(models_.embedders().lease()->embed(images));
    return e;
  }
  cv::Mat maps;
  if (frozen_too) {
    e.frozen = mean_row(models_.embedders().lease()->embed_keeping(images, kHeadInputBlock, &maps));
  } else {
    maps = models_.extractors().lease()->extract(images, false);
  }
  e.raw = mean_row(heads->lease()->forward(maps).gem);
  return e;
}

QueryResult Searcher::search_image(std::string_view image_bytes, const QueryOptions& options) {
  const auto started = Clock::now();
  Timings timings;
  const ModelPools::ImageSlot slot(models_);
  DecodedImage decoded = decode_image_or_throw(image_bytes, options_.decode);
  if (options.crop) decoded.rgb = crop_image(decoded.rgb, *options.crop);
  const std::vector<float> colours =
      options.colour_weight > 0 ? dominant_colours(decoded.rgb) : std::vector<float>();
  timings.decode_ms = ms_since(started);
  return with_version_retries([&] {
    const auto model_started = Clock::now();
    QueryEmbedding e = embed_query(decoded.rgb);
    e.colours = colours;
    timings.model_ms = ms_since(model_started);
    return run_query(e, options, std::nullopt, timings, started);
  });
}

QueryResult Searcher::search_embedding(const QueryEmbedding& embedding, const QueryOptions& options) {
  try {
    return run_query(embedding, options, std::nullopt, Timings{}, Clock::now());
  } catch (const VersionChanged&) {
    throw Error(ErrorCode::kConflict, "the embedding is of model version " +
                                          std::to_string(embedding.version) + ", which is no longer active");
  }
}

QueryResult Searcher::similar(const std::string& id, const QueryOptions& options) {
  const auto started = Clock::now();
  QueryOptions widened = options;
  widened.k = options.k + 1;  // the item itself is dropped
  return with_version_retries([&] {
    std::optional<int64_t> key;
    QueryEmbedding e;
    bool frozen_too = false;
    live_.read([&](const ServingState& state) {
      e.version = state.version;
      frozen_too = state.needs_frozen();
      key = state.items.key_of(id);
      if (key) e.colours = state.items.at(*key).colours;
    });
    if (!key) throw Error(ErrorCode::kNotFound, "no catalog item with id '" + id + "'");
    e.raw = store_.descriptor(e.version, *key);
    if (frozen_too) e.frozen = store_.descriptor(0, *key);
    return run_query(e, widened, key, Timings{}, started);
  });
}

// "all", the predicted category (or "all" when `auto` falls back), or a named one, validated.
std::string Searcher::category_to_search(const ServingState& state, const QueryOptions& options,
                                         QueryResult& result) const {
  const float threshold =
      options.min_confidence.value_or(options_.min_confidence.value_or(state.min_confidence));
  if (options.category == "all" || (options.category == "auto" && state.classifier.empty())) return "all";
  if (options.category == "auto") {
    result.fallback_used = options.allow_fallback && result.prediction.confidence < threshold;
    return result.fallback_used ? "all" : result.prediction.category;
  }
  const auto& classes = state.classifier.classes();
  const auto cats = store_.categories();
  const bool known =
      std::any_of(cats.begin(), cats.end(), [&](auto& c) { return c.name == options.category; }) ||
      std::find(classes.begin(), classes.end(), options.category) != classes.end();
  if (!known) {
    std::string names;
    for (const auto& c : cats) names += (names.empty() ? "" : ", ") + c.name;
    throw Error(ErrorCode::kInvalidArgument,
                "unknown category '" + options.category + "'; use auto, all or one of: " + names);
  }
  return options.category;
}

QueryResult Searcher::run_query(const QueryEmbedding& embedding, const QueryOptions& options,
                                std::optional<int64_t> exclude, Timings timings,
                                Clock::time_point started) const {
  return live_.read([&](const ServingState& state) {
    if (state.version != embedding.version) throw VersionChanged{};
    const std::vector<float>& raw = embedding.raw;
    if (!state.trained() || !state.index) {
      throw Error(ErrorCode::kNotReady,
                  state.items.empty() ? "the catalog is empty; import photos first (lookalike import FOLDER)"
                                      : "the catalog is not trained yet; run `lookalike train`");
    }
    if (raw.size() != state.descriptor_dimension) {
      throw Error(ErrorCode::kInternal, "descriptor has " + std::to_string(raw.size()) +
                                            " values, the catalog expects " +
                                            std::to_string(state.descriptor_dimension));
    }
    const auto classify_started = Clock::now();
    const auto projected = state.project(raw);
    const SearchQueries queries = search_queries(state, projected, embedding.frozen);
    QueryResult result;
    result.prediction = state.predict(embedding, projected);
    timings.classify_ms = ms_since(classify_started);
    result.searched = category_to_search(state, options, result);

    const auto search_started = Clock::now();
    SearchParams params;
    const bool restrict = result.searched != "all";
    if (restrict) params.expected_accepted = category_size(store_, result.searched);
    // The category is the index's tag of the row (ServingState tags every row), checked before
    // `accept`, which runs only for the other filters and looks the item up (the index holds the
    // live items alone). A category no item has gets a tag no row holds.
    const CategoryTags::Tag tag = restrict ? state.categories.tag(result.searched) : CategoryTags::kNone;
    params.tag = restrict ? (tag == CategoryTags::kNone ? CategoryTags::kUnused : tag) : CategoryTags::kNone;
    // The predicted category is the photo's own: its nearest rows are mostly of it, and the index
    // need not widen its search (a category the caller names may be any).
    params.filter_follows_query = restrict && options.category == "auto";
    if (!options.filter.empty() || exclude) {
      params.accept = [&](int64_t key) {
        if (exclude && key == *exclude) return false;
        if (options.filter.empty()) return true;
        const auto facts = state.items.facts(key);
        return facts && options.filter.matches(*facts);
      };
    }
    const size_t wanted = options.k - (exclude ? 1 : 0);
    const bool by_colour = options.colour_weight > 0 && valid_colour_signature(embedding.colours);
    const bool collapse = options.collapse_duplicates && !state.copies.empty();
    // Collapsing hides copies: fetch as many more as there can be (bounded), then trim.
    const size_t candidates = (by_colour ? wanted * kColourPoolFactor : wanted) +
                              (collapse ? std::min(state.copies.hideable(), 2 * wanted + 8) : 0);
    params.k = candidates + (exclude ? 1 : 0);
    if (params.k > 0) result.hits = ranked_hits(state, queries, params, candidates, options_.expansion);
    if (by_colour) rerank_by_colour(result.hits, embedding.colours, options.colour_weight);
    if (collapse) {
      collapse_copies(
          state, result.hits,
          [&](int64_t key) {
            return (!restrict || state.categories.has(key, tag)) && (!params.accept || params.accept(key));
          },
          exclude);
    }
    if (result.hits.size() > wanted) result.hits.resize(wanted);
    timings.search_ms = ms_since(search_started);
    timings.total_ms = ms_since(started);
    result.timings = timings;
    result.embedding = embedding;
    return result;
  });
}

}  // namespace lookalike

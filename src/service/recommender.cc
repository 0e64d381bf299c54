#include "service/recommender.h"

#include <algorithm>
#include <map>
#include <unordered_set>

#include "common/error.h"
#include "service/catalog.h"

namespace lookalike {

namespace {

// Hits beyond k that a batch asks for, to make up for the item itself and its byte-identical
// twins, which are dropped after the search (copies of one photo are added on top, below).
constexpr size_t kSpareHits = 4;

// Drops the item itself, its byte-identical twins and the copies of its photo (service/
// copy_finder.h), and keeps one item of each other group of copies: a feed of look-alikes
// shows a product once.
std::vector<SimilarItem> keep_recommendable(const ServingState& state, const Item& item,
                                            const std::vector<Neighbour>& hits, size_t k) {
  std::vector<SimilarItem> kept;
  std::unordered_set<const std::vector<int64_t>*> shown;
  if (const auto* own = state.copies.group_of(item.key)) shown.insert(own);
  for (const auto& hit : hits) {
    if (kept.size() == k) break;
    if (hit.id == item.key) continue;
    const std::optional<Item> other = state.items.find(hit.id);
    if (!other || other->sha256 == item.sha256) continue;
    if (const auto* group = state.copies.group_of(hit.id); group && !shown.insert(group).second) continue;
    kept.push_back({other->id, hit.score, state.score_scale.similarity(hit.score)});
  }
  return kept;
}

}  // namespace

std::vector<std::string> Catalog::recommendation_order() const {
  return live_->read([](const ServingState& state) {
    std::vector<std::string> ids;  // in key order
    ids.reserve(state.items.size());
    for (const int64_t key : state.items.keys()) ids.emplace_back(state.items.id_of(key));
    return ids;
  });
}

std::vector<Recommendation> Catalog::recommend(const std::vector<std::string>& ids,
                                               const RecommendOptions& options) {
  if (options.k == 0) throw Error(ErrorCode::kInvalidArgument, "k must be at least 1");
  return live_->read([&](const ServingState& state) {
    if (!state.index)
      throw Error(ErrorCode::kNotReady, "the catalog is not trained yet: run `lookalike train`");
    const VectorIndex& index = *state.index;
    std::vector<Recommendation> out(ids.size());
    // One search per category present in the batch (one for all with --category all).
    std::map<std::string, std::vector<size_t>> groups;
    std::vector<Item> items(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::optional<int64_t> key = state.items.key_of(ids[i]);
      if (!key) throw Error(ErrorCode::kNotFound, "no catalog item with id '" + ids[i] + "'");
      items[i] = state.items.at(*key);
      out[i].id = items[i].id;
      out[i].category = items[i].category;
      groups[options.same_category ? items[i].category : std::string()].push_back(i);
    }
    for (const auto& [category, members] : groups) {
      std::vector<float> queries;
      queries.reserve(members.size() * index.dimension());
      for (size_t i : members) {
        const auto query = state.ranking_query_of(index.vector(items[i].key));
        if (query.size() != index.dimension())
          throw Error(ErrorCode::kInternal, "item '" + items[i].id + "' has no vector in the index");
        queries.insert(queries.end(), query.begin(), query.end());
      }
      SearchParams params;
      params.k = options.k + kSpareHits + std::min(state.copies.hideable(), options.k);
      if (!category.empty()) {
        params.expected_accepted = category_size(*store_, category);
        const CategoryTags::Tag tag = state.categories.tag(category);  // the rows' tags in the index
        params.tag = tag == CategoryTags::kNone ? CategoryTags::kUnused : tag;
        params.filter_follows_query = true;  // each item's own category
      }
      const auto hits = index.search(members.size(), queries.data(), params);
      for (size_t j = 0; j < members.size(); ++j) {
        out[members[j]].similar = keep_recommendable(state, items[members[j]], hits[j], options.k);
      }
    }
    return out;
  });
}

}  // namespace lookalike

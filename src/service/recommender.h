// Every item's look-alikes: the shop's precomputed "you may also like" feed, what product pages
// show without running the CNN (`lookalike recommend`). Implemented as Catalog::recommend
// (service/recommender.cc): the items' own index vectors are the queries, searched in batches,
// so one FAISS call answers a whole batch with one matrix product.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lookalike {

struct RecommendOptions {
  size_t k = 12;
  // Only items of the item's own category (an item without a category gets items of all).
  bool same_category = true;
};

struct SimilarItem {
  std::string id;
  float score = 0;       // the ranking score, as `search` reports it
  float similarity = 0;  // the score's place among the catalog's typical neighbours, 0..1
};

struct Recommendation {
  std::string id;
  std::string category;
  // Up to k, best first. Never the item itself, nor an item with a byte-identical photo (the
  // same product shot listed twice is not a recommendation).
  std::vector<SimilarItem> similar;
};

}  // namespace lookalike

// What a search asks for, apart from the image, and what it answers: shared by the engine and the
// request parsers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/types.hpp>

#include "service/item_table.h"
#include "store/catalog_store.h"

namespace lookalike {

// Metadata filters of a search; an item must pass all that are set.
struct ItemFilter {
  std::vector<std::string> categories;
  std::optional<double> price_min, price_max;
  std::map<std::string, nlohmann::json> attributes;  // equality
  bool empty() const { return categories.empty() && !price_min && !price_max && attributes.empty(); }
  bool matches(const Item& item) const;
  bool matches(const ItemTable::Facts& item) const;
};

struct QueryOptions {
  size_t k = 12;
  std::string category = "auto";        // "auto" | "all" | a category name
  std::optional<float> min_confidence;  // overrides CatalogOptions::min_confidence
  bool allow_fallback = true;           // false: `auto` never widens (the seed API's on_cnn)
  ItemFilter filter;
  std::optional<cv::Rect> crop;  // in source pixels, clipped to the image
  // 0..1: how much the product's colours count against the CNN's look. 0 (default) ranks by
  // the CNN alone; above 0 the best kColourPoolFactor x k candidates are re-ranked by
  // (1 - w) similarity + w colour_similarity (the "same style in this colour" slider).
  float colour_weight = 0;
  // Copies of one product shot (service/copy_finder.h) come back as one hit, the best ranked,
  // which names the others (Hit::copies). Off: every copy is a hit of its own.
  bool collapse_duplicates = true;
};

// Candidates per requested result that colour re-ranking chooses from (docs/quality.md).
inline constexpr size_t kColourPoolFactor = 4;

struct Timings {
  double decode_ms = 0, model_ms = 0, classify_ms = 0, search_ms = 0, total_ms = 0;
};

struct Hit {
  Item item;
  float score;             // the ranking score: cosine, or (1-w) cos_head + w cos_frozen (ServingState)
  float similarity;        // the score on the catalog's own scale (ScoreScale): 0..1, for people
  bool same_item = false;  // recognised as the query's very product shot; ranked first
  // How close the item's colours are to the query's, 0..1 (image/product_colour.h
  // colour_similarity); set when the search weighed colour and both sides have colours.
  std::optional<float> colour_similarity;
  // Ids of the copies of this item's photo the search also matched and hid (collapse_duplicates).
  std::vector<std::string> copies;
};

struct Prediction {
  std::string category;  // top class, empty when the catalog has no classifier
  float confidence = 0;
  std::vector<std::pair<std::string, float>> probabilities;  // by decreasing probability
};

// A query photo's model outputs, reusable for another search while `version` stays active.
struct QueryEmbedding {
  int64_t version = 0;        // the model version that embedded it
  std::vector<float> raw;     // that version's raw descriptor
  std::vector<float> frozen;  // the frozen recipe's raw descriptor when the version blends its probe
  // The query product's dominant colours (image/product_colour.h); measured only when a search
  // weighs colour, and version-independent.
  std::vector<float> colours;
};

struct QueryResult {
  Prediction prediction;
  std::string searched;  // "all" or the category searched
  bool fallback_used = false;
  std::vector<Hit> hits;
  Timings timings;
  // Reusable for another search (search_embedding); embedding.version is the model version that
  // embedded, classified and searched the query.
  QueryEmbedding embedding;
};

}  // namespace lookalike

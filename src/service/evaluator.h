// Retrieval and classification quality of a catalog, as one JSON object:
// queries, accuracy, p_at_1, p_at_10 (mode all), category_precision_at_12 (mode auto),
// duplicates_first, colour_distance_at_12 (mode all) and category_colour_distance_at_12 (mode
// auto): mean CIE76 distance between the query's and the top 12's product_colour, color_weight,
// confusion, per_category, ms_per_query, and
// `instance`: whether catalog photos, altered as a shopper's photo would be, find the very item
// (recall_at_1, recall_at_12) and how close the results' colours are.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "image/alteration.h"
#include "service/catalog.h"

namespace lookalike {

struct EvalOptions {
  // Folder of category sub-folders whose photos are the queries. Empty: leave-one-out over
  // the catalog itself (each item queries the others; accuracy is then the classifier's
  // 5-fold cross-validated accuracy, since the head was trained on every item).
  std::string queries;
  size_t limit = 0;  // evaluate at most this many queries (0 = all)
  // Catalog photos altered (AlterationRecipe) and searched for, chosen and altered with `seed`.
  // 0: no instance figures.
  size_t instance_queries = 150;
  uint32_t seed = 42;
  AlterationRecipe alterations;
  float colour_weight = 0;  // QueryOptions::colour_weight of every search
  std::function<void(size_t done, size_t total)> on_progress;
};

nlohmann::json evaluate(Catalog& catalog, const EvalOptions& options);

}  // namespace lookalike

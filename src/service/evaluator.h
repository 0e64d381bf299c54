// Retrieval and classification quality of a catalog, as one JSON object:
// queries, accuracy, p_at_1, p_at_10 (mode all), category_precision_at_12 (mode auto),
// duplicates_first, confusion, per_category, ms_per_query.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "service/catalog.h"

namespace lookalike {

struct EvalOptions {
  // Folder of category sub-folders whose photos are the queries. Empty: leave-one-out over
  // the catalog itself (each item queries the others; accuracy is then the classifier's
  // 5-fold cross-validated accuracy, since the head was trained on every item).
  std::string queries;
  size_t limit = 0;  // evaluate at most this many queries (0 = all)
  std::function<void(size_t done, size_t total)> on_progress;
};

nlohmann::json evaluate(Catalog& catalog, const EvalOptions& options);

}  // namespace lookalike

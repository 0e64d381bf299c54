// JSON views of catalog objects, shared by the CLI (--json) and the HTTP API so both speak
// the same shapes.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "service/catalog.h"

namespace lookalike {

using ImageUrlFn = std::function<std::string(const Item&)>;

// [{"share", "lab": [L, a, b], "hex": "#rrggbb"}, ...]: a colour signature (Item::colours,
// image/product_colour.h), largest share first; [] when there is none.
nlohmann::json colours_json(const std::vector<float>& signature);

nlohmann::json item_json(const Item& item, const ImageUrlFn& image_url);
nlohmann::json prediction_json(const Prediction& p);
nlohmann::json timings_json(const Timings& t);
// {query: {...}, results: [...], timings_ms: {...}}
nlohmann::json query_result_json(const QueryResult& r, const ImageUrlFn& image_url);
nlohmann::json stats_json(const CatalogStats& s);
// {"groups": [{"items": [...]}, ...], "offset", "limit", "total" (groups), "items_in_groups"}:
// groups[offset, offset + limit) of copies of one product shot (Catalog::copy_groups).
nlohmann::json copy_groups_json(const std::vector<std::vector<Item>>& groups, size_t offset, size_t limit,
                                const ImageUrlFn& image_url);
// {"engine", "precision", "isa"[, "note"]}: what runs the CNN.
nlohmann::json inference_json(const InferenceInfo& inference);
// {"active": N, "versions": [...]}: version 0 (the frozen recipe) first, then each trained
// version's headline figures (validation, the frozen probe on the same photos, auto's threshold,
// the last recorded evaluation).
nlohmann::json versions_json(const Catalog& catalog);

}  // namespace lookalike

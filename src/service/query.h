// What a search asks for, apart from the image: shared by the engine and the request parsers.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/types.hpp>

#include "store/catalog_store.h"

namespace lookalike {

// Metadata filters of a search; an item must pass all that are set.
struct ItemFilter {
  std::vector<std::string> categories;
  std::optional<double> price_min, price_max;
  std::map<std::string, nlohmann::json> attributes;  // equality
  bool empty() const { return categories.empty() && !price_min && !price_max && attributes.empty(); }
  bool matches(const Item& item) const;
};

struct QueryOptions {
  size_t k = 12;
  std::string category = "auto";        // "auto" | "all" | a category name
  std::optional<float> min_confidence;  // overrides CatalogOptions::min_confidence
  bool allow_fallback = true;           // false: `auto` never widens (the seed API's on_cnn)
  ItemFilter filter;
  std::optional<cv::Rect> crop;  // in source pixels, clipped to the image
};

}  // namespace lookalike

// What a shopper can filter a catalog by: the price range and each attribute's values with how
// many items have them (GET /api/v1/attributes, the page's filters).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "service/item_table.h"

namespace lookalike {

// An attribute's most common values are listed; a free-text attribute (a description, an SKU)
// would otherwise list every item.
inline constexpr size_t kMaxFacetValues = 50;

struct AttributeFacet {
  std::string name;
  size_t items = 0;                                       // items that have the attribute
  size_t distinct = 0;                                    // distinct values, listed or not
  std::vector<std::pair<nlohmann::json, size_t>> values;  // by decreasing count, then value
};

struct CatalogFacets {
  size_t priced = 0;  // items with a price
  std::optional<double> price_min, price_max;
  std::vector<AttributeFacet> attributes;  // by name
};

// Facets of `items` (the served catalog). Attribute values that are objects, arrays or null are
// not filterable (ItemFilter compares scalars) and are left out.
CatalogFacets catalog_facets(const ItemTable& items);

nlohmann::json facets_json(const CatalogFacets& facets);

}  // namespace lookalike

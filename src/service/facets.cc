#include "service/facets.h"

#include <algorithm>
#include <map>

namespace lookalike {

CatalogFacets catalog_facets(const ItemTable& items) {
  CatalogFacets out;
  // Values keyed by their JSON text, so that 38 and "38" stay apart as ItemFilter keeps them.
  std::map<std::string, std::pair<size_t, std::map<std::string, size_t>>> by_name;
  items.for_each_facts([&](int64_t, const ItemTable::Facts& item) {
    if (const auto price = item.price) {
      ++out.priced;
      out.price_min = std::min(out.price_min.value_or(*price), *price);
      out.price_max = std::max(out.price_max.value_or(*price), *price);
    }
    for (const auto& [name, value] : item.attributes.items()) {
      if (!value.is_primitive() || value.is_null()) continue;
      auto& [count, values] = by_name[name];
      ++count;
      ++values[value.dump()];
    }
  });
  for (auto& [name, entry] : by_name) {
    AttributeFacet facet{name, entry.first, entry.second.size(), {}};
    for (const auto& [text, count] : entry.second)
      facet.values.emplace_back(nlohmann::json::parse(text), count);
    std::stable_sort(facet.values.begin(), facet.values.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (facet.values.size() > kMaxFacetValues) facet.values.resize(kMaxFacetValues);
    out.attributes.push_back(std::move(facet));
  }
  return out;
}

nlohmann::json facets_json(const CatalogFacets& facets) {
  nlohmann::json attributes = nlohmann::json::array();
  for (const auto& a : facets.attributes) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& [value, count] : a.values) values.push_back({{"value", value}, {"count", count}});
    attributes.push_back(
        {{"name", a.name}, {"items", a.items}, {"distinct", a.distinct}, {"values", values}});
  }
  nlohmann::json price = nullptr;
  if (facets.price_min)
    price = {{"min", *facets.price_min}, {"max", *facets.price_max}, {"items", facets.priced}};
  return {{"price", price}, {"attributes", attributes}};
}

}  // namespace lookalike

// Facets: the price range and each attribute's values by count, scalars only, typed.
#include "service/facets.h"

#include <gtest/gtest.h>

namespace lookalike {
namespace {

Item item(int64_t key, std::optional<double> price, nlohmann::json attributes) {
  Item i;
  i.key = key;
  i.id = "i" + std::to_string(key);
  i.metadata.price = price;
  i.metadata.attributes = std::move(attributes);
  return i;
}

TEST(CatalogFacets, PriceRangeAndValuesByCount) {
  ItemTable items;
  items.put(item(1, 30, {{"colour", "red"}, {"size", 38}}));
  items.put(item(2, 12.5, {{"colour", "red"}, {"size", "38"}}));
  items.put(item(3, std::nullopt, {{"colour", "blue"}, {"notes", {{"a", 1}}}, {"gone", nullptr}}));
  items.put(item(4, 99, nlohmann::json::object()));
  const CatalogFacets f = catalog_facets(items);
  EXPECT_EQ(f.priced, 3u);
  EXPECT_DOUBLE_EQ(*f.price_min, 12.5);
  EXPECT_DOUBLE_EQ(*f.price_max, 99);
  ASSERT_EQ(f.attributes.size(), 2u) << "objects and nulls are not filterable";
  EXPECT_EQ(f.attributes[0].name, "colour");
  EXPECT_EQ(f.attributes[0].items, 3u);
  ASSERT_EQ(f.attributes[0].values.size(), 2u);
  EXPECT_EQ(f.attributes[0].values[0], (std::pair<nlohmann::json, size_t>{"red", 2}));
  EXPECT_EQ(f.attributes[0].values[1], (std::pair<nlohmann::json, size_t>{"blue", 1}));
  EXPECT_EQ(f.attributes[1].name, "size");
  EXPECT_EQ(f.attributes[1].distinct, 2u) << "38 and \"38\" are different values, as filters match them";
  const auto j = facets_json(f);
  EXPECT_EQ(j["price"]["min"], 12.5);
  EXPECT_EQ(j["attributes"][0]["values"][0]["value"], "red");
}

TEST(CatalogFacets, ACatalogWithoutMetadataHasNone) {
  ItemTable items;
  items.put(item(1, std::nullopt, nlohmann::json::object()));
  const CatalogFacets f = catalog_facets(items);
  EXPECT_FALSE(f.price_min.has_value());
  EXPECT_TRUE(f.attributes.empty());
  EXPECT_TRUE(facets_json(f)["price"].is_null());
}

TEST(CatalogFacets, AFreeTextAttributeListsItsMostCommonValuesOnly) {
  ItemTable items;
  for (int64_t k = 0; k < 200; ++k)
    items.put(item(k, std::nullopt, {{"sku", "sku-" + std::to_string(k % 120)}}));
  const CatalogFacets f = catalog_facets(items);
  ASSERT_EQ(f.attributes.size(), 1u);
  EXPECT_EQ(f.attributes[0].distinct, 120u);
  EXPECT_EQ(f.attributes[0].values.size(), kMaxFacetValues);
  EXPECT_EQ(f.attributes[0].values.front().second, 2u);
}

}  // namespace
}  // namespace lookalike

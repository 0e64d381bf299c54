// A category filter reads items' categories from CategoryTags, and ServingState keeps them in
// step with its items through put_item and erase_item.
#include <gtest/gtest.h>

#include "service/category_tags.h"
#include "service/serving_state.h"

namespace lookalike {
namespace {

TEST(CategoryTags, AnItemHasTheTagOfItsCategoryOnly) {
  CategoryTags tags;
  tags.set(3, "coat");
  tags.set(10, "dress");
  tags.set(4, "coat");
  const auto coat = tags.tag("coat"), dress = tags.tag("dress");
  EXPECT_NE(coat, CategoryTags::kNone);
  EXPECT_NE(coat, dress);
  EXPECT_TRUE(tags.has(3, coat));
  EXPECT_TRUE(tags.has(4, coat));
  EXPECT_FALSE(tags.has(10, coat));
  EXPECT_TRUE(tags.has(10, dress));
  EXPECT_FALSE(tags.has(5, coat));    // a gap between keys
  EXPECT_FALSE(tags.has(11, dress));  // past the largest key
  EXPECT_FALSE(tags.has(-1, coat));
}

TEST(CategoryTags, UnknownCategoriesAndErasedItemsMatchNothing) {
  CategoryTags tags;
  tags.set(1, "coat");
  EXPECT_EQ(tags.tag("hood"), CategoryTags::kNone);
  EXPECT_FALSE(tags.has(1, CategoryTags::kNone));
  EXPECT_FALSE(tags.has(0, CategoryTags::kNone));  // an empty slot is not "no category"
  tags.erase(1);
  EXPECT_FALSE(tags.has(1, tags.tag("coat")));
  tags.erase(99);  // unknown: ignored
}

TEST(CategoryTags, ARecategorisedItemMovesToItsNewCategory) {
  CategoryTags tags;
  tags.set(2, "coat");
  tags.set(2, "jumper");
  EXPECT_FALSE(tags.has(2, tags.tag("coat")));
  EXPECT_TRUE(tags.has(2, tags.tag("jumper")));
}

Item item(int64_t key, const std::string& id, const std::string& category) {
  Item out;
  out.key = key;
  out.id = id;
  out.category = category;
  return out;
}

TEST(ServingStateItems, PutAndEraseKeepItemsIdsAndCategoriesInStep) {
  ServingState state;
  state.put_item(item(1, "a", "coat"));
  state.put_item(item(2, "b", "dress"));
  state.put_item(item(1, "a2", "dress"));  // the same key again: a new id and category
  EXPECT_EQ(state.items.size(), 2u);
  EXPECT_FALSE(state.items.key_of("a"));
  EXPECT_EQ(state.items.key_of("a2"), 1);
  EXPECT_TRUE(state.categories.has(1, state.categories.tag("dress")));
  EXPECT_FALSE(state.categories.has(1, state.categories.tag("coat")));
  state.erase_item(2);
  state.erase_item(7);  // unknown: ignored
  EXPECT_FALSE(state.items.contains(2));
  EXPECT_FALSE(state.items.key_of("b"));
  EXPECT_FALSE(state.categories.has(2, state.categories.tag("dress")));
}

}  // namespace
}  // namespace lookalike

// The in-memory item table: every field round-trips, ids and facts follow every write, and a
// table rebuilt after many removals and replacements still holds exactly the live items.
#include "service/item_table.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"

namespace lookalike {
namespace {

Item full_item(int64_t key, const std::string& id) {
  Item i;
  i.key = key;
  i.id = id;
  i.category = key % 2 ? "coat" : "dress";
  i.file_name = id + ".jpg";
  i.source = "/photos/" + id + ".jpg";
  i.sha256 = std::string(64, static_cast<char>('a' + key % 6));
  i.image_path = "images/" + i.sha256.substr(0, 2) + "/" + i.sha256 + ".jpg";
  i.width = 640 + static_cast<int>(key);
  i.height = 480;
  i.added_at = 1700000000 + key;
  i.metadata.title = "Title " + id;
  if (key % 3) i.metadata.price = 9.5 * static_cast<double>(key);
  i.metadata.url = "https://shop.example/" + id;
  if (key % 4 == 0) i.metadata.attributes = {{"colour", "red"}, {"size", key}};
  if (key % 5) i.colours = {0.5f, 40, 1, -2, 0.5f, 80, 3, 4};
  return i;
}

void expect_same(const Item& a, const Item& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.category, b.category);
  EXPECT_EQ(a.file_name, b.file_name);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.image_path, b.image_path);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.added_at, b.added_at);
  EXPECT_EQ(a.metadata.title, b.metadata.title);
  EXPECT_EQ(a.metadata.price, b.metadata.price);
  EXPECT_EQ(a.metadata.url, b.metadata.url);
  EXPECT_EQ(a.metadata.attributes, b.metadata.attributes);
  EXPECT_EQ(a.colours, b.colours);
}

TEST(ItemTable, EveryFieldRoundTripsAndFactsNeedNoDecode) {
  ItemTable table;
  for (int64_t key = 1; key <= 20; ++key) table.put(full_item(key, "item" + std::to_string(key)));
  EXPECT_EQ(table.size(), 20u);
  for (int64_t key = 1; key <= 20; ++key) {
    const Item expected = full_item(key, "item" + std::to_string(key));
    expect_same(table.at(key), expected);
    EXPECT_EQ(table.key_of(expected.id), key);
    EXPECT_EQ(table.id_of(key), expected.id);
    const auto facts = table.facts(key);
    ASSERT_TRUE(facts);
    EXPECT_EQ(facts->category, expected.category);
    EXPECT_EQ(facts->price, expected.metadata.price);
    EXPECT_EQ(facts->attributes, expected.metadata.attributes);
  }
  EXPECT_FALSE(table.find(21));
  EXPECT_FALSE(table.contains(0));
  EXPECT_FALSE(table.key_of("item21"));
  EXPECT_TRUE(table.id_of(99).empty());
  try {
    table.at(21);
    ADD_FAILURE() << "at() of an absent key must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ItemTable, AReplacedItemTakesItsNewIdAndFields) {
  ItemTable table;
  table.put(full_item(1, "a"));
  table.put(full_item(2, "b"));
  Item changed = full_item(1, "a2");
  changed.category = "dress";
  changed.metadata.price.reset();
  changed.metadata.attributes = {{"fit", "slim"}};
  table.put(changed);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_FALSE(table.key_of("a"));
  EXPECT_EQ(table.key_of("a2"), 1);
  expect_same(table.at(1), changed);
  changed.metadata.attributes = nlohmann::json::object();
  table.put(changed);
  EXPECT_EQ(table.facts(1)->attributes, nlohmann::json::object()) << "attributes removed are gone";
  EXPECT_EQ(table.key_of("b"), 2) << "another item's id is untouched";
}

TEST(ItemTable, EraseForgetsTheItemItsIdAndItsAttributes) {
  ItemTable table;
  table.put(full_item(4, "d"));
  table.put(full_item(8, "h"));
  EXPECT_TRUE(table.erase(4));
  EXPECT_FALSE(table.erase(4));
  EXPECT_FALSE(table.erase(5));
  EXPECT_FALSE(table.erase(-1));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_FALSE(table.contains(4));
  EXPECT_FALSE(table.key_of("d"));
  EXPECT_FALSE(table.facts(4));
  table.put(full_item(4, "d"));  // the same key again (a reload of a store that still has it)
  expect_same(table.at(4), full_item(4, "d"));
  EXPECT_EQ(table.keys(), (std::vector<int64_t>{4, 8}));
}

TEST(ItemTable, IterationIsInKeyOrderWhateverTheOrderOfArrival) {
  ItemTable table;
  for (const int64_t key : {7, 3, 12, 1, 9}) table.put(full_item(key, "k" + std::to_string(key)));
  std::vector<int64_t> decoded, facts;
  table.for_each([&](const Item& item) { decoded.push_back(item.key); });
  table.for_each_facts([&](int64_t key, const ItemTable::Facts&) { facts.push_back(key); });
  const std::vector<int64_t> expected{1, 3, 7, 9, 12};
  EXPECT_EQ(decoded, expected);
  EXPECT_EQ(facts, expected);
  EXPECT_EQ(table.keys(), expected);
}

// Removals and replacements leave dead slots and records until they are half the table; the
// rebuild then due (as LiveState::change does it, after each write) must keep every live item,
// its id and its attributes.
TEST(ItemTable, RebuildKeepsExactlyTheLiveItems) {
  ItemTable table;
  size_t rebuilds = 0;
  auto rebuild_if_due = [&] {
    if (!table.wants_rebuild()) return;
    table = table.rebuilt();
    ++rebuilds;
    ASSERT_FALSE(table.wants_rebuild());
  };
  const int64_t n = 20000;
  for (int64_t key = 1; key <= n; ++key) {
    table.put(full_item(key, "i" + std::to_string(key)));
    rebuild_if_due();
  }
  const size_t growing = rebuilds;
  EXPECT_GT(growing, 0u);   // the arrays grew by rebuilds,
  EXPECT_LT(growing, 20u);  // each a quarter or more at a time
  for (int64_t key = 1; key <= n; ++key) {
    if (key % 4 != 0) {
      ASSERT_TRUE(table.erase(key));
      rebuild_if_due();
    }
  }
  for (int round = 0; round < 3; ++round) {
    for (int64_t key = 4; key <= n; key += 4) {
      table.put(full_item(key, "r" + std::to_string(key)));
      rebuild_if_due();
    }
  }
  EXPECT_GT(rebuilds, growing);  // for the dead slots and records
  ASSERT_EQ(table.size(), static_cast<size_t>(n / 4));
  for (int64_t key = 1; key <= n; ++key) {
    if (key % 4 != 0) {
      ASSERT_FALSE(table.contains(key)) << key;
      ASSERT_FALSE(table.key_of("i" + std::to_string(key))) << key;
      continue;
    }
    expect_same(table.at(key), full_item(key, "r" + std::to_string(key)));
    ASSERT_EQ(table.key_of("r" + std::to_string(key)), key);
    ASSERT_FALSE(table.key_of("i" + std::to_string(key)));
  }
  // One 4 MB block of live records (and the slots) after a rebuild; three blocks without it.
  EXPECT_LT(table.bytes(), size_t{8} << 20) << "dead slots and records were dropped";
}

// The id index leaves a tombstone per removal and grows or rehashes as they pile up: after
// many removals and additions every live id still finds its item and no removed one does.
TEST(ItemTable, IdsFollowLongChurn) {
  ItemTable table;
  int64_t next = 1;
  std::vector<int64_t> live;
  for (; next <= 1000; ++next) {
    table.put(full_item(next, "id" + std::to_string(next)));
    live.push_back(next);
  }
  for (int round = 0; round < 30000; ++round) {
    const size_t victim = static_cast<size_t>(round * 7919) % live.size();
    ASSERT_TRUE(table.erase(live[victim]));
    table.put(full_item(next, "id" + std::to_string(next)));
    live[victim] = next++;
  }
  ASSERT_EQ(table.size(), live.size());
  for (const int64_t key : live) ASSERT_EQ(table.key_of("id" + std::to_string(key)), key);
  for (int64_t key = 1; key < next; key += 97) {
    if (std::find(live.begin(), live.end(), key) == live.end()) {
      ASSERT_FALSE(table.key_of("id" + std::to_string(key))) << key;
    }
  }
}

TEST(ItemTable, ARecordLargerThanABlockIsKept) {
  ItemTable table;
  Item big = full_item(2, "big");
  big.metadata.title = std::string(5 << 20, 't');
  table.put(full_item(1, "small"));
  table.put(big);
  table.put(full_item(3, "after"));
  expect_same(table.at(2), big);
  expect_same(table.at(3), full_item(3, "after"));
}

TEST(ItemTable, ANegativeKeyIsAProgrammerError) {
  ItemTable table;
  EXPECT_THROW(table.put(full_item(-3, "x")), Error);
  EXPECT_TRUE(table.empty());
}

}  // namespace
}  // namespace lookalike

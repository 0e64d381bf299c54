// What only the SQLite store has: its file, and catalogs written by older Lookalikes.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include "common/error.h"
#include "store/catalog_store.h"
#include "store/store_test_support.h"

namespace lookalike {
namespace {

using testing::make_item;
using testing::TempDir;

// Runs SQL on a catalog database behind the store's back (another program, or an older
// Lookalike); fails the test when SQLite refuses it.
void run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string db() const { return (dir_.path() / "catalog.sqlite").string(); }
  TempDir dir_;
};

// A catalog written before the counts existed (schema 2) gets them filled when opened.
TEST_F(SqliteStoreTest, ACatalogFromBeforeTheCountsIsCountedOnOpen) {
  {
    auto store = open_sqlite_store(db());
    store->insert({make_item("a", "coat"), make_item("b", "coat"), make_item("c", "dress")});
  }
  run_sql(db(),
          "DROP TRIGGER items_counted_on_insert; DROP TRIGGER items_counted_on_delete; "
          "DROP TRIGGER items_counted_on_recategorise; DROP TABLE category_counts; "
          "DROP INDEX items_by_category; PRAGMA user_version = 2;");
  auto store = open_sqlite_store(db());
  ASSERT_EQ(store->categories().size(), 2u);
  EXPECT_EQ(store->categories()[0].count, 2u);
  EXPECT_EQ(store->count(), 3u);
  EXPECT_TRUE(store->integrity_problems().empty());
  // Counts that drifted (edited by hand) are reported by `check`.
  run_sql(db(), "UPDATE category_counts SET count = 7 WHERE category = 'dress'");
  const auto problems = store->integrity_problems();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("category counts disagree with the items in 1 categories"), std::string::npos);
}

// Colour signatures: stored with the item or later, read back with it; a schema-3 catalog
// gets the column (empty) when opened.
TEST_F(SqliteStoreTest, ColourSignaturesAreStoredAndFilledInLater) {
  std::vector<int64_t> keys;
  {
    auto store = open_sqlite_store(db());
    NewItem measured = make_item("a", "coat");
    measured.item.colours = {1, 50, 10, -10};
    keys = store->insert({measured, make_item("b", "coat")});
  }
  run_sql(db(), "ALTER TABLE items DROP COLUMN colours; PRAGMA user_version = 3;");
  {
    auto store = open_sqlite_store(db());
    EXPECT_TRUE(store->find("a")->colours.empty()) << "a schema-3 catalog has no colours yet";
    EXPECT_EQ(store->keys_missing_colours(), keys);
    store->put_colours({{keys[0], {0.5f, 20, 0, 0, 0.5f, 80, 1, 2}}, {keys[1], {1, 60, 0, 0}}});
  }
  auto store = open_sqlite_store(db());
  EXPECT_EQ(store->find("a")->colours, (std::vector<float>{0.5f, 20, 0, 0, 0.5f, 80, 1, 2}));
  EXPECT_EQ(store->find_by_key(keys[1])->colours, (std::vector<float>{1, 60, 0, 0}));
  EXPECT_TRUE(store->keys_missing_colours().empty());
  EXPECT_EQ(store->all_items().size(), 2u);
  EXPECT_TRUE(store->integrity_problems().empty());
}

TEST_F(SqliteStoreTest, ACatalogFromBeforeCopiesGetsTheirTablesOnOpen) {
  {
    auto store = open_sqlite_store(db());
    store->insert({make_item("a", "coat")});
  }
  run_sql(db(),
          "DROP TRIGGER items_copies_forgotten; DROP TABLE copy_pairs; DROP TABLE copy_checked; "
          "PRAGMA user_version = 4;");
  auto store = open_sqlite_store(db());
  EXPECT_EQ(store->keys_unchecked_for_copies().size(), 1u);
  EXPECT_TRUE(store->copy_pairs().empty());
}

// Schema 5's layout: the frozen descriptor in the items row, after the colours here (before
// them in a real schema-5 file: the upgrade does not depend on the order).
constexpr const char* kBackToSchema5 =
    "ALTER TABLE items ADD COLUMN descriptor BLOB NOT NULL DEFAULT x''; "
    "UPDATE items SET descriptor = (SELECT descriptor FROM frozen_descriptors f WHERE f.key = items.key); "
    "DROP TRIGGER items_frozen_descriptor_forgotten; DROP TABLE frozen_descriptors; PRAGMA user_version = 5;";

class FrozenDescriptorUpgradeTest : public SqliteStoreTest {
 protected:
  // 600 items: more than two of the upgrade's batches.
  void SetUp() override {
    std::vector<NewItem> items;
    for (int i = 0; i < 600; ++i) {
      items.push_back(make_item("item" + std::to_string(i), i % 2 ? "coat" : "dress"));
      items.back().descriptor = {static_cast<float>(i), 0.5f, -1.f, static_cast<float>(i * i)};
    }
    keys_ = open_sqlite_store(db())->insert(items);
    run_sql(db(), kBackToSchema5);
  }
  void expect_every_descriptor_moved() {
    auto store = open_sqlite_store(db());
    for (size_t i = 0; i < keys_.size(); ++i) {
      const float f = static_cast<float>(i);
      ASSERT_EQ(store->descriptor(0, keys_[i]), (std::vector<float>{f, 0.5f, -1.f, f * f})) << i;
    }
    size_t walked = 0;
    store->for_each_descriptor(0, [&](int64_t key, const float* v, size_t n) {
      EXPECT_EQ(key, keys_[walked]);
      EXPECT_EQ(n, 4u);
      EXPECT_EQ(v[0], static_cast<float>(walked++));
    });
    EXPECT_EQ(walked, keys_.size());
    EXPECT_TRUE(store->integrity_problems().empty());
    ASSERT_TRUE(store->remove("item7"));
    EXPECT_TRUE(store->descriptor(0, keys_[7]).empty()) << "a removed item's descriptor goes with it";
  }
  std::vector<int64_t> keys_;
};

TEST_F(FrozenDescriptorUpgradeTest, ASchema5CatalogMovesItsDescriptorsOnOpen) {
  expect_every_descriptor_moved();
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &handle), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_NE(sqlite3_prepare_v2(handle, "SELECT descriptor FROM items", -1, &s, nullptr), SQLITE_OK)
      << "the items table keeps no descriptor column";
  sqlite3_finalize(s);
  sqlite3_close(handle);
}

// Killed after its first batch: the batch moved stays moved, and the next open moves the rest.
TEST_F(FrozenDescriptorUpgradeTest, AnInterruptedUpgradeGoesOnAtTheNextOpen) {
  run_sql(db(),
          "CREATE TABLE frozen_descriptors(key INTEGER PRIMARY KEY, descriptor BLOB NOT NULL); "
          "INSERT INTO frozen_descriptors SELECT key, descriptor FROM items ORDER BY key LIMIT 256; "
          "UPDATE items SET descriptor = x'' WHERE key IN (SELECT key FROM frozen_descriptors); "
          "PRAGMA user_version = 6;");
  expect_every_descriptor_moved();
}

// compact (VACUUM) gives back the pages of removed items and keeps every item under its key,
// with its descriptors, counts and revision.
TEST_F(SqliteStoreTest, CompactShrinksTheFileAndKeepsEveryItem) {
  auto store = open_sqlite_store(db());
  std::vector<NewItem> items;
  for (int i = 0; i < 400; ++i) {
    items.push_back(make_item("item-" + std::to_string(i), i % 2 ? "coat" : "dress"));
    items.back().descriptor.assign(1024, static_cast<float>(i));  // 4 KB: a page or more per item
  }
  const auto keys = store->insert(items);
  for (int i = 0; i < 400; i += 4) ASSERT_TRUE(store->remove("item-" + std::to_string(i)));
  const int64_t revision = store->revision();
  const CompactResult result = store->compact();
  EXPECT_LT(result.bytes_after, result.bytes_before * 9 / 10) << result.bytes_before;
  EXPECT_EQ(std::filesystem::file_size(db() + "-wal"), 0u);  // checkpointed, not left in the log
  EXPECT_EQ(store->revision(), revision);
  EXPECT_EQ(store->count(), 300u);
  EXPECT_EQ(category_size(*store, "coat"), 200u);
  for (int i = 1; i < 400; i += 3) {
    if (i % 4 == 0) continue;
    const auto found = store->find("item-" + std::to_string(i));
    ASSERT_TRUE(found) << i;
    EXPECT_EQ(found->key, keys[i]);
  }
  EXPECT_FALSE(store->find("item-8"));
  EXPECT_TRUE(store->integrity_problems().empty());
  auto reopened = open_sqlite_store(db());
  EXPECT_EQ(reopened->count(), 300u);
}

TEST_F(SqliteStoreTest, RefusesAFileThatIsNotACatalog) {
  testing::write_bytes(db(), std::string(4096, 'x'));
  try {
    open_sqlite_store(db());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruptStore);
    EXPECT_NE(std::string(e.what()).find("not a usable Lookalike catalog"), std::string::npos);
  }
  EXPECT_EQ(testing::read_bytes(db()), std::string(4096, 'x'));  // untouched
}

}  // namespace
}  // namespace lookalike

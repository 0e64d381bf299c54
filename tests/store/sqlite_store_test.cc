#include <gtest/gtest.h>

#include <sqlite3.h>
#include <limits>

#include "common/error.h"
#include "store/catalog_store.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

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

NewItem make_item(const std::string& id, const std::string& category,
                  std::optional<double> price = std::nullopt) {
  NewItem n;
  n.item.id = id;
  n.item.category = category;
  n.item.file_name = id + ".jpg";
  n.item.sha256 = "sha-" + id;
  n.item.image_path = "images/" + id + ".jpg";
  n.item.width = 10;
  n.item.height = 20;
  n.item.metadata.title = "Title " + id;
  n.item.metadata.price = price;
  n.item.metadata.attributes = {{"colour", "red"}, {"size", 38}};
  n.descriptor = {1.f, 2.f, static_cast<float>(id.size())};
  return n;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string db() const { return (dir_.path() / "catalog.sqlite").string(); }
  TempDir dir_;
};

TEST_F(SqliteStoreTest, InsertsFindsAndListsItems) {
  auto store = open_sqlite_store(db());
  const auto keys =
      store->insert({make_item("a", "coat", 49.5), make_item("bb", "dress"), make_item("c", "coat")});
  ASSERT_EQ(keys.size(), 3u);
  const auto a = store->find("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->key, keys[0]);
  EXPECT_EQ(a->category, "coat");
  EXPECT_EQ(a->metadata.price, 49.5);
  EXPECT_EQ(a->metadata.attributes["size"], 38);
  EXPECT_EQ(store->find_by_file("dress", "bb.jpg")->id, "bb");
  EXPECT_EQ(store->find_by_hash("sha-c"), keys[2]);
  EXPECT_EQ(store->descriptor(0, keys[1]), (std::vector<float>{1, 2, 2}));
  EXPECT_EQ(store->count(), 3u);
  EXPECT_EQ(store->list({"coat", 0, 10}).size(), 2u);
  EXPECT_EQ(store->list({"", 1, 1}).front().id, "bb");
  const auto cats = store->categories();
  ASSERT_EQ(cats.size(), 2u);
  EXPECT_EQ(cats[0].name, "coat");
  EXPECT_EQ(cats[0].count, 2u);
}

TEST_F(SqliteStoreTest, ABatchWithADuplicateIdStoresNothing) {
  auto store = open_sqlite_store(db());
  store->insert({make_item("a", "coat")});
  const auto before = store->revision();
  EXPECT_THROW(store->insert({make_item("new", "coat"), make_item("a", "coat")}), Error);
  EXPECT_EQ(store->count(), 1u);
  EXPECT_FALSE(store->find("new"));
  EXPECT_EQ(store->revision(), before);
}

TEST_F(SqliteStoreTest, UpdatesRemovesAndCountsRevisions) {
  auto store = open_sqlite_store(db());
  store->insert({make_item("a", "coat")});
  const auto r1 = store->revision();
  ItemMetadata m;
  m.title = "New";
  m.price = 10;
  EXPECT_TRUE(store->update_metadata("a", m, std::string("dress")));
  EXPECT_EQ(store->find("a")->metadata.title, "New");
  EXPECT_EQ(store->find("a")->category, "dress");
  EXPECT_FALSE(store->update_metadata("missing", m, std::nullopt));
  EXPECT_GT(store->revision(), r1);
  EXPECT_TRUE(store->remove("a"));
  EXPECT_FALSE(store->remove("a"));
  EXPECT_EQ(store->count(), 0u);
}

// The per-category counts are kept by triggers: every insert, removal and change of category
// moves them, in the same transaction, and `check` compares them with the items.
TEST_F(SqliteStoreTest, CategoryCountsFollowEveryWrite) {
  auto store = open_sqlite_store(db());
  const auto counts = [&] {
    std::vector<std::pair<std::string, size_t>> out;
    for (const auto& c : store->categories()) out.emplace_back(c.name, c.count);
    return out;
  };
  store->insert(
      {make_item("a", "coat"), make_item("b", "coat"), make_item("c", "dress"), make_item("d", "")});
  EXPECT_EQ(counts(), (std::vector<std::pair<std::string, size_t>>{{"coat", 2}, {"dress", 1}}));
  EXPECT_EQ(store->count(), 4u);
  EXPECT_THROW(store->insert({make_item("e", "hood"), make_item("a", "coat")}), Error);  // rolled back
  EXPECT_EQ(counts(), (std::vector<std::pair<std::string, size_t>>{{"coat", 2}, {"dress", 1}}));
  ItemMetadata m;
  EXPECT_TRUE(store->update_metadata("c", m, std::string("coat")));  // dress -> coat: dress is gone
  EXPECT_TRUE(store->update_metadata("a", m, std::string("coat")));  // unchanged category
  EXPECT_EQ(counts(), (std::vector<std::pair<std::string, size_t>>{{"coat", 3}}));
  EXPECT_TRUE(store->remove("b"));
  EXPECT_TRUE(store->remove("d"));
  EXPECT_EQ(counts(), (std::vector<std::pair<std::string, size_t>>{{"coat", 2}}));
  EXPECT_EQ(store->count(), 2u);
  EXPECT_EQ(store->list({"coat", 1, 1}).at(0).id, "c");  // second coat by key
  EXPECT_TRUE(store->integrity_problems().empty());
}

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

TEST_F(SqliteStoreTest, CopyPairsAndChecksAreKeptAndForgottenWithTheirItems) {
  auto store = open_sqlite_store(db());
  const auto keys = store->insert({make_item("a", "coat"), make_item("b", "coat"), make_item("c", "dress")});
  EXPECT_EQ(store->keys_unchecked_for_copies(), keys);
  const int64_t revision = store->revision();
  // Stored smaller key first whichever way round they come; a pair naming an unknown item is skipped.
  store->put_copy_checks({keys[0], keys[1], 999}, {{keys[1], keys[0], 0.99f, 2.5f}, {keys[2], 999, 1, 0}});
  EXPECT_EQ(store->revision(), revision + 1);
  EXPECT_EQ(store->keys_unchecked_for_copies(), (std::vector<int64_t>{keys[2]}));
  auto pairs = store->copy_pairs();
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].a, keys[0]);
  EXPECT_EQ(pairs[0].b, keys[1]);
  EXPECT_FLOAT_EQ(pairs[0].correlation, 0.99f);
  EXPECT_FLOAT_EQ(pairs[0].structure, 2.5f);
  // Removing an item forgets its pairs and its check.
  EXPECT_TRUE(store->remove("b"));
  EXPECT_TRUE(store->copy_pairs().empty());
  EXPECT_EQ(store->keys_unchecked_for_copies(), (std::vector<int64_t>{keys[2]}));
  store->put_copy_checks({keys[2]}, {{keys[0], keys[2], 0.97f, 4}});
  EXPECT_TRUE(store->keys_unchecked_for_copies().empty());
  EXPECT_EQ(store->copy_pairs().size(), 1u);
  store->forget_copy_checks();
  EXPECT_TRUE(store->copy_pairs().empty());
  EXPECT_EQ(store->keys_unchecked_for_copies(), (std::vector<int64_t>{keys[0], keys[2]}));
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

TEST_F(SqliteStoreTest, PersistsAcrossReopenIncludingBlobs) {
  {
    auto store = open_sqlite_store(db());
    store->insert({make_item("a", "coat")});
    store->put_blobs({{"pca", std::string("\0\1\2", 3)}, {"x", "y"}});
  }
  auto store = open_sqlite_store(db());
  EXPECT_EQ(store->count(), 1u);
  EXPECT_EQ(store->get_blob("pca"), std::string("\0\1\2", 3));
  EXPECT_FALSE(store->get_blob("missing"));
  size_t seen = 0;
  store->for_each_descriptor(0, [&](int64_t, const float* v, size_t d) {
    EXPECT_EQ(d, 3u);
    EXPECT_EQ(v[0], 1.f);
    ++seen;
  });
  EXPECT_EQ(seen, 1u);
}

// A rebuild walks every descriptor in pages and reads the frozen ones of each page's key range.
TEST_F(SqliteStoreTest, DescriptorPagesWalkEveryDescriptorOnceInKeyOrder) {
  auto store = open_sqlite_store(db());
  std::vector<NewItem> items;
  for (int i = 0; i < 7; ++i)
    items.push_back(make_item("item" + std::string(static_cast<size_t>(i), 'x'), "coat"));
  const auto keys = store->insert(items);
  store->remove(items[2].item.id);
  ModelVersion v;
  v.classifier = "{}";
  KeyedDescriptors trained;
  for (size_t i : {0, 4, 6}) trained.push_back({keys[i], {static_cast<float>(i), 0.f}});
  const int64_t version = store->add_model_version(v, trained, /*activate=*/true);

  std::vector<int64_t> walked;
  for (int64_t next = std::numeric_limits<int64_t>::min();;) {
    const auto page = store->descriptor_page(0, next, std::numeric_limits<int64_t>::max(), 2);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 2u);
    for (const auto& [key, descriptor] : page) {
      walked.push_back(key);
      EXPECT_EQ(descriptor, store->descriptor(0, key));
    }
    next = page.back().first + 1;
  }
  std::vector<int64_t> live = keys;
  live.erase(live.begin() + 2);  // removed
  EXPECT_EQ(walked, live);

  const auto range = store->descriptor_page(version, keys[1], keys[4], 100);
  ASSERT_EQ(range.size(), 1u);  // of keys 1..4 only 4 has a descriptor of the version
  EXPECT_EQ(range[0].first, keys[4]);
  EXPECT_EQ(range[0].second, (std::vector<float>{4.f, 0.f}));
  EXPECT_TRUE(store->descriptor_page(version, keys[6] + 1, std::numeric_limits<int64_t>::max(), 10).empty());
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

TEST_F(SqliteStoreTest, ModelVersionsAreStoredActivatedAndRolledBack) {
  auto store = open_sqlite_store(db());
  const auto keys = store->insert({make_item("a", "coat"), make_item("b", "dress")});
  EXPECT_EQ(store->active_version(), 0);
  EXPECT_EQ(store->keys_missing_descriptor(0), std::vector<int64_t>{});
  ModelVersion v;
  v.created_at = 1700000000;
  v.head_onnx = std::string("\0onnx", 5);
  v.classifier = "{}";
  v.info = {{"validation_accuracy", 0.9}};
  const int64_t revision = store->revision();
  const int64_t one = store->add_model_version(v, {{keys[0], {1.f, 0.f}}}, /*activate=*/true);
  EXPECT_EQ(one, 1);
  EXPECT_GT(store->revision(), revision);
  EXPECT_EQ(store->active_version(), 1);
  EXPECT_EQ(store->descriptor(1, keys[0]), (std::vector<float>{1.f, 0.f}));
  EXPECT_TRUE(store->descriptor(1, keys[1]).empty());
  EXPECT_EQ(store->keys_missing_descriptor(1), std::vector<int64_t>{keys[1]});
  store->put_descriptors(1, {{keys[1], {0.f, 1.f}}});
  EXPECT_TRUE(store->keys_missing_descriptor(1).empty());

  const auto stored = store->model_version(1);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->head_onnx, v.head_onnx);
  EXPECT_EQ(stored->info["validation_accuracy"], 0.9);
  EXPECT_EQ(store->model_versions().size(), 1u);
  EXPECT_FALSE(store->model_version(2));

  // Evaluation figures attach to a version without counting as a catalog change.
  const int64_t before_eval = store->revision();
  store->set_evaluation(1, {{"p_at_10", 0.71}});
  store->set_evaluation(0, {{"p_at_10", 0.62}});
  EXPECT_EQ(store->evaluation(1)["p_at_10"], 0.71);
  EXPECT_EQ(store->evaluation(0)["p_at_10"], 0.62);
  EXPECT_EQ(store->model_version(1)->info["evaluation"]["p_at_10"], 0.71);
  EXPECT_EQ(store->model_version(1)->info["validation_accuracy"], 0.9);
  EXPECT_EQ(store->revision(), before_eval);
  EXPECT_THROW(store->set_evaluation(5, {}), Error);

  store->set_active_version(0);
  EXPECT_EQ(store->active_version(), 0);
  EXPECT_THROW(store->set_active_version(7), Error);
  EXPECT_EQ(store->active_version(), 0);

  // Removal: never the active version, never an unknown one; numbers are not reused.
  const int64_t two = store->add_model_version(v, {{keys[0], {0.f, 1.f}}}, /*activate=*/true);
  EXPECT_EQ(two, 2);
  try {
    store->remove_model_version(2);
    ADD_FAILURE() << "the active version must not be removable";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict);
  }
  EXPECT_THROW(store->remove_model_version(0), Error);
  EXPECT_THROW(store->remove_model_version(9), Error);
  store->set_active_version(0);
  store->remove_model_version(2);
  EXPECT_FALSE(store->model_version(2));
  EXPECT_TRUE(store->descriptor(2, keys[0]).empty());
  EXPECT_EQ(store->model_versions().size(), 1u);
  EXPECT_EQ(store->add_model_version(v, {}, /*activate=*/false), 3);
  store->remove_model_version(3);

  // Removing an item removes its descriptors of every version.
  ASSERT_TRUE(store->remove("a"));
  size_t rows = 0;
  store->for_each_descriptor(1, [&](int64_t, const float*, size_t) { ++rows; });
  EXPECT_EQ(rows, 1u);
}

TEST_F(SqliteStoreTest, NewItemsCarryTheirVersionDescriptorsInTheSameTransaction) {
  auto store = open_sqlite_store(db());
  ModelVersion v;
  v.classifier = "{}";
  store->add_model_version(v, {}, true);
  NewItem n = make_item("a", "coat");
  n.version_descriptors = {{1, {0.5f, 0.5f}}};
  const auto keys = store->insert({n});
  EXPECT_EQ(store->descriptor(1, keys[0]), (std::vector<float>{0.5f, 0.5f}));
  // Reopened: still there, still active.
  store.reset();
  store = open_sqlite_store(db());
  EXPECT_EQ(store->active_version(), 1);
  EXPECT_EQ(store->descriptor(1, keys[0]).size(), 2u);
}

}  // namespace
}  // namespace lookalike

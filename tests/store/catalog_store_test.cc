// The CatalogStore contract, run against every store: SQLite (a temporary file) and PostgreSQL
// (a fresh database on the test server; skipped when PostgreSQL is not installed). What only
// one store has (SQLite's file upgrades, PostgreSQL's connections) is in sqlite_store_test.cc
// and postgres_store_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "common/error.h"
#include "store/catalog_store.h"
#include "store/store_test_support.h"

namespace lookalike {
namespace {

using testing::make_item;
using testing::TempDir;
using testing::TestDatabase;

enum class Backend { kSqlite, kPostgres };
void PrintTo(Backend b, std::ostream* os) {
  *os << (b == Backend::kSqlite ? "Sqlite" : "Postgres");
}

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      LOOKALIKE_REQUIRE_POSTGRES();
      database_.emplace();
    }
  }
  // Another store object on the same catalog: the file again, or a new connection.
  std::unique_ptr<CatalogStore> open() const {
    if (GetParam() == Backend::kSqlite) return open_sqlite_store((dir_.path() / "catalog.sqlite").string());
    return open_postgres_store(database_->url());
  }

 private:
  TempDir dir_;
  std::optional<TestDatabase> database_;
};

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

TEST_P(StoreTest, InsertsFindsAndListsItems) {
  auto store = open();
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

// for_each_item hands over every item once, in key order, with all its fields: what the serving
// state is loaded from.
TEST_P(StoreTest, ForEachItemWalksEveryItemInKeyOrder) {
  auto store = open();
  store->insert({make_item("a", "coat", 49.5), make_item("bb", "dress"), make_item("c", "coat")});
  store->insert({make_item("d", "hood", 5)});
  ASSERT_TRUE(store->remove("bb"));
  std::vector<NewItem> more;  // past one page
  for (size_t i = 0; i < CatalogStore::kItemPage; ++i)
    more.push_back(make_item("p" + std::to_string(i), "coat"));
  store->insert(more);
  std::vector<Item> walked;
  store->for_each_item([&](Item&& item) { walked.push_back(std::move(item)); });
  const auto all = store->all_items();
  ASSERT_EQ(walked.size(), 3 + CatalogStore::kItemPage);
  ASSERT_EQ(all.size(), walked.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(walked[i].key, all[i].key);
    EXPECT_EQ(walked[i].id, all[i].id);
    EXPECT_EQ(walked[i].sha256, all[i].sha256);
    EXPECT_EQ(walked[i].metadata.price, all[i].metadata.price);
    EXPECT_EQ(walked[i].metadata.attributes, all[i].metadata.attributes);
    if (i) {
      EXPECT_LT(walked[i - 1].key, walked[i].key);
    }
  }
  EXPECT_EQ(walked[2].id, "d");
  EXPECT_EQ(walked.back().id, "p" + std::to_string(CatalogStore::kItemPage - 1));
  EXPECT_EQ(walked.front().metadata.price, 49.5);
}

TEST_P(StoreTest, ABatchWithADuplicateIdStoresNothing) {
  auto store = open();
  store->insert({make_item("a", "coat")});
  const auto before = store->revision();
  try {
    store->insert({make_item("new", "coat"), make_item("a", "coat")});
    ADD_FAILURE() << "a duplicate id must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict) << e.what();
  }
  EXPECT_EQ(store->count(), 1u);
  EXPECT_FALSE(store->find("new"));
  EXPECT_EQ(store->revision(), before);
}

TEST_P(StoreTest, UpdatesRemovesAndCountsRevisions) {
  auto store = open();
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
TEST_P(StoreTest, CategoryCountsFollowEveryWrite) {
  auto store = open();
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

TEST_P(StoreTest, CopyPairsAndChecksAreKeptAndForgottenWithTheirItems) {
  auto store = open();
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

TEST_P(StoreTest, PersistsAcrossReopenIncludingBlobs) {
  {
    auto store = open();
    store->insert({make_item("a", "coat")});
    store->put_blobs({{"pca", std::string("\0\1\2", 3)}, {"x", "y"}});
  }
  auto store = open();
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
TEST_P(StoreTest, DescriptorPagesWalkEveryDescriptorOnceInKeyOrder) {
  auto store = open();
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

TEST_P(StoreTest, ModelVersionsAreStoredActivatedAndRolledBack) {
  auto store = open();
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

TEST_P(StoreTest, NewItemsCarryTheirVersionDescriptorsInTheSameTransaction) {
  auto store = open();
  ModelVersion v;
  v.classifier = "{}";
  store->add_model_version(v, {}, true);
  NewItem n = make_item("a", "coat");
  n.version_descriptors = {{1, {0.5f, 0.5f}}};
  const auto keys = store->insert({n});
  EXPECT_EQ(store->descriptor(1, keys[0]), (std::vector<float>{0.5f, 0.5f}));
  // Reopened: still there, still active.
  store.reset();
  store = open();
  EXPECT_EQ(store->active_version(), 1);
  EXPECT_EQ(store->descriptor(1, keys[0]).size(), 2u);
}

// Colour signatures: stored with the item or later, read back with it.
TEST_P(StoreTest, ColourSignaturesAreStoredWithTheItemOrLater) {
  auto store = open();
  NewItem measured = make_item("a", "coat");
  measured.item.colours = {1, 50, 10, -10};
  const auto keys = store->insert({measured, make_item("b", "coat")});
  EXPECT_EQ(store->find("a")->colours, (std::vector<float>{1, 50, 10, -10}));
  EXPECT_TRUE(store->find("b")->colours.empty());
  EXPECT_EQ(store->keys_missing_colours(), std::vector<int64_t>{keys[1]});
  const int64_t revision = store->revision();
  store->put_colours({{keys[1], {0.5f, 20, 0, 0, 0.5f, 80, 1, 2}}});
  EXPECT_GT(store->revision(), revision);
  store = open();
  EXPECT_EQ(store->find_by_key(keys[1])->colours, (std::vector<float>{0.5f, 20, 0, 0, 0.5f, 80, 1, 2}));
  EXPECT_TRUE(store->keys_missing_colours().empty());
  EXPECT_TRUE(store->integrity_problems().empty());
}

TEST_P(StoreTest, AnItemWithoutADescriptorIsRefused) {
  auto store = open();
  NewItem n = make_item("a", "coat");
  n.descriptor.clear();
  try {
    store->insert({make_item("b", "coat"), n});
    ADD_FAILURE() << "an empty descriptor must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConflict) << e.what();
  }
  EXPECT_EQ(store->count(), 0u);
}

// Keys are never handed out twice, not even those of removed items, and a batch that was
// rolled back takes none (SQLite's AUTOINCREMENT, mirrored by the PostgreSQL store's counter).
TEST_P(StoreTest, KeysAreNeverReusedAndARolledBackBatchTakesNone) {
  auto store = open();
  const auto first = store->insert({make_item("a", "coat"), make_item("b", "coat")});
  ASSERT_TRUE(store->remove("b"));
  EXPECT_THROW(store->insert({make_item("c", "coat"), make_item("a", "coat")}), Error);
  const auto next = store->insert({make_item("c", "coat")});
  EXPECT_EQ(next[0], first[1] + 1);
  EXPECT_EQ(store->find_by_key(next[0])->id, "c");
  EXPECT_FALSE(store->find_by_key(first[1]));
}

// Text and numbers as the page and the API write them come back as they went in.
TEST_P(StoreTest, MetadataRoundTripsUnchanged) {
  auto store = open();
  NewItem n = make_item("한복-1", "한복", 12345.678);
  n.item.metadata.url = "https://example.com/p?id=1&x=%20";
  n.item.metadata.attributes = {
      {"size", 38}, {"ratio", 0.1}, {"big", 1e300}, {"on", true}, {"name", "ü \"quoted\" \\ back"},
      {"empty", ""}};
  n.descriptor = {std::numeric_limits<float>::denorm_min(), -0.0f, 3.4e38f, 1.0f / 3.0f};
  n.item.added_at = 1700000000123;
  store->insert({n});
  const auto got = store->find("한복-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->category, "한복");
  EXPECT_EQ(got->metadata.price, 12345.678);
  EXPECT_EQ(got->metadata.url, n.item.metadata.url);
  EXPECT_EQ(got->metadata.attributes, n.item.metadata.attributes);
  EXPECT_EQ(got->added_at, n.item.added_at);
  const auto d = store->descriptor(0, got->key);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(std::memcmp(d.data(), n.descriptor.data(), 4 * sizeof(float)), 0) << "bit-identical";
  EXPECT_EQ(store->categories().at(0).name, "한복");
}

// Categories sort by bytes in both stores, whatever the database's locale.
TEST_P(StoreTest, CategoriesSortByteWise) {
  auto store = open();
  store->insert({make_item("1", "b"), make_item("2", "B"), make_item("3", "a"), make_item("4", "_")});
  std::vector<std::string> names;
  for (const auto& c : store->categories()) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_", "a", "b"}));
}

}  // namespace
}  // namespace lookalike

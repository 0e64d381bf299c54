// The engine end to end on real photos: import a small subset of the sample catalog with the
// real model, then search, restrict, filter, add, remove, reopen and resume.
#include "service/catalog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "common/error.h"
#include "common/files.h"
#include "image/product_colour.h"
#include "service/import_source.h"
#include "service/importer.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

class CatalogTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::dataset_dir().empty()) return;
    dir_ = new testing::TempDir();
    testing::make_subset(dir_->path() / "photos", 8);
    catalog_ = open().release();
    report_ = new ImportReport(
        import_entries(*catalog_, scan_import_source((dir_->path() / "photos").string()), {}));
  }
  static void TearDownTestSuite() {
    delete catalog_;
    delete report_;
    delete dir_;
  }
  void SetUp() override { LOOKALIKE_REQUIRE_DATASET(); }

  static std::unique_ptr<Catalog> open(bool flip_queries = true, QueryExpansion expansion = {}) {
    CatalogOptions options;
    options.data_dir = (dir_->path() / "data").string();
    options.model_manifest = testing::model_manifest();
    options.flip_queries = flip_queries;
    options.expansion = expansion;
    return std::make_unique<Catalog>(options, false);
  }
  static std::string photo(const std::string& category, int index) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_->path() / "photos" / category))
      files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return read_file(files.at(static_cast<size_t>(index)).string(), 10 << 20);
  }

  static testing::TempDir* dir_;
  static Catalog* catalog_;
  static ImportReport* report_;
};

testing::TempDir* CatalogTest::dir_ = nullptr;
Catalog* CatalogTest::catalog_ = nullptr;
ImportReport* CatalogTest::report_ = nullptr;

TEST_F(CatalogTest, ImportsAndTrains) {
  EXPECT_EQ(report_->imported, 48u);
  EXPECT_TRUE(report_->failures.empty());
  EXPECT_FALSE(report_->training.empty());
  const auto stats = catalog_->stats();
  EXPECT_EQ(stats.items, 48u);
  EXPECT_TRUE(stats.trained);
  EXPECT_TRUE(stats.classifier);
  EXPECT_EQ(stats.descriptor_dimension, 5632u);
  EXPECT_EQ(stats.categories.size(), 6u);
  EXPECT_TRUE(catalog_->ready());
}

TEST_F(CatalogTest, AnExactCopyComesBackFirst) {
  // A single-photo query of a stored photo is its stored descriptor: score 1. Flip averaging
  // (the default) mixes in the mirror image, which moves the score a little below 1 but must
  // keep the copy first.
  const auto single = open(/*flip_queries=*/false);
  for (const char* category : {"coat", "dress", "shirts"}) {
    const std::string bytes = photo(category, 3);
    QueryOptions q;
    q.category = "all";
    const auto r = catalog_->search_image(bytes, q);
    ASSERT_EQ(r.hits.size(), 12u);
    EXPECT_EQ(r.hits[0].item.sha256, sha256_hex(bytes));
    EXPECT_GT(r.hits[0].score, 0.98f);
    EXPECT_GT(r.timings.model_ms, 0);
    EXPECT_EQ(r.searched, "all");
    const auto exact = single->search_image(bytes, q);
    EXPECT_EQ(exact.hits.at(0).item.sha256, sha256_hex(bytes));
    EXPECT_NEAR(exact.hits[0].score, 1.f, 1e-4);
  }
}

TEST_F(CatalogTest, QueryExpansionReordersLookAlikesAndKeepsTheItemFirst) {
  // Expansion (on by default) rescores the first search's pool by a query moved toward its best
  // hits: the photo's own item stays first with its own cosine, the look-alikes' scores are
  // the expanded query's and fall down the list, and some orders change.
  const auto plain = open(true, QueryExpansion{0, 3.0f, 100});
  size_t reordered = 0;
  for (const char* category : {"coat", "dress", "hood", "jumper", "shirts", "sweater"}) {
    for (int index : {2, 5}) {
      const std::string bytes = photo(category, index);
      QueryOptions q;
      q.category = "all";
      const auto expanded = catalog_->search_image(bytes, q);
      const auto original = plain->search_image(bytes, q);
      ASSERT_EQ(expanded.hits.size(), 12u);
      ASSERT_EQ(original.hits.size(), 12u);
      EXPECT_EQ(expanded.hits[0].item.sha256, sha256_hex(bytes));
      EXPECT_NEAR(expanded.hits[0].score, original.hits[0].score, 1e-6);
      bool same_order = true;
      for (size_t i = 0; i < expanded.hits.size(); ++i) {
        same_order = same_order && expanded.hits[i].item.id == original.hits[i].item.id;
        if (i > 0) {
          EXPECT_LE(expanded.hits[i].score, expanded.hits[i - 1].score) << category << index << " " << i;
        }
      }
      reordered += same_order ? 0 : 1;
    }
  }
  EXPECT_GT(reordered, 0u) << "expansion never changed an order";
}

TEST_F(CatalogTest, AutoModeSearchesOnlyThePredictedCategory) {
  QueryOptions q;
  q.min_confidence = 0.f;  // never fall back
  const auto r = catalog_->search_image(photo("dress", 1), q);
  EXPECT_FALSE(r.fallback_used);
  EXPECT_EQ(r.searched, r.prediction.category);
  EXPECT_EQ(r.hits.size(), 8u);  // the category holds 8 items
  for (const auto& h : r.hits) EXPECT_EQ(h.item.category, r.searched);
  float total = 0;
  for (const auto& [name, p] : r.prediction.probabilities) total += p;
  EXPECT_NEAR(total, 1.f, 1e-4);
  q.min_confidence = 1.f;  // always fall back
  const auto widened = catalog_->search_image(photo("dress", 1), q);
  EXPECT_TRUE(widened.fallback_used);
  EXPECT_EQ(widened.searched, "all");
  q.allow_fallback = false;
  EXPECT_FALSE(catalog_->search_image(photo("dress", 1), q).fallback_used);
}

TEST_F(CatalogTest, NamedCategoryRestrictsAndUnknownIsRefused) {
  QueryOptions q;
  q.category = "hood";
  q.k = 50;
  const auto r = catalog_->search_image(photo("coat", 0), q);
  EXPECT_EQ(r.hits.size(), 8u);
  for (const auto& h : r.hits) EXPECT_EQ(h.item.category, "hood");
  q.category = "trousers";
  try {
    catalog_->search_image(photo("coat", 0), q);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("unknown category 'trousers'"), std::string::npos);
  }
}

TEST_F(CatalogTest, SimilarExcludesTheItemItself) {
  const auto item = catalog_->store().list({"jumper", 2, 1}).front();
  QueryOptions q;
  q.category = "all";
  q.k = 5;
  const auto r = catalog_->similar(item.id, q);
  ASSERT_EQ(r.hits.size(), 5u);
  for (const auto& h : r.hits) EXPECT_NE(h.item.id, item.id);
  EXPECT_THROW(catalog_->similar("no-such-item", q), Error);
}

// Mean colour similarity of hits to the query's colours, measured here from the stored signatures.
double mean_colour_similarity(const QueryResult& r) {
  double sum = 0;
  for (const auto& h : r.hits) sum += colour_similarity(colour_distance(r.embedding.colours, h.item.colours));
  return r.hits.empty() ? 0 : sum / static_cast<double>(r.hits.size());
}

TEST_F(CatalogTest, ColourWeightReranksByTheProductsColours) {
  for (const auto& item : catalog_->store().all_items())
    EXPECT_TRUE(valid_colour_signature(item.colours)) << item.id << " was imported with its colours";
  QueryOptions look;
  look.category = "all";
  look.k = 6;
  const auto by_look = catalog_->search_image(photo("coat", 3), look);
  EXPECT_TRUE(by_look.embedding.colours.empty()) << "colours are measured only when they count";
  for (const auto& h : by_look.hits) EXPECT_FALSE(h.colour_similarity);
  QueryOptions colour = look;
  colour.colour_weight = 1;
  const auto by_colour = catalog_->search_image(photo("coat", 3), colour);
  ASSERT_TRUE(valid_colour_signature(by_colour.embedding.colours));
  ASSERT_EQ(by_colour.hits.size(), 6u);
  QueryResult look_with_colours = by_look;
  look_with_colours.embedding.colours = by_colour.embedding.colours;
  // At weight 1 the 6 hits are the most colour-alike of the 24 best-looking candidates, which
  // hold the 6 best-looking ones: they cannot be less alike in colour.
  EXPECT_GE(mean_colour_similarity(by_colour), mean_colour_similarity(look_with_colours));
  for (size_t i = 0; i < by_colour.hits.size(); ++i) {
    const Hit& h = by_colour.hits[i];
    ASSERT_TRUE(h.colour_similarity);
    EXPECT_FLOAT_EQ(*h.colour_similarity,
                    colour_similarity(colour_distance(by_colour.embedding.colours, h.item.colours)));
    if (i > 0 && !by_colour.hits[i - 1].same_item) {
      EXPECT_LE(*h.colour_similarity, *by_colour.hits[i - 1].colour_similarity);
    }
  }
  // "More like this" weighs the stored item's colours, and still leaves the item out.
  const auto item = catalog_->store().list({"dress", 0, 1}).front();
  const auto similar = catalog_->similar(item.id, colour);
  EXPECT_EQ(similar.embedding.colours, item.colours);
  for (const auto& h : similar.hits) {
    EXPECT_NE(h.item.id, item.id);
    EXPECT_TRUE(h.colour_similarity);
  }
}

// An item stored before colours were measured gets them on the next import, from its photo.
TEST_F(CatalogTest, MissingColoursAreMeasuredFromTheStoredPhoto) {
  auto item = catalog_->store().list({"shirts", 1, 1}).front();
  const std::vector<float> imported = item.colours;
  catalog_->store().put_colours({{item.key, {}}});
  EXPECT_TRUE(catalog_->store().find(item.id)->colours.empty());
  size_t calls = 0, total = 0;
  const auto on_progress = [&](size_t, size_t n) {
    ++calls;
    total = n;
  };
  EXPECT_EQ(fill_missing_colours(*catalog_, nullptr, on_progress), 1u);
  EXPECT_EQ(total, 1u);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(catalog_->store().find(item.id)->colours, imported);
  EXPECT_EQ(fill_missing_colours(*catalog_, nullptr, {}), 0u) << "nothing left to measure";
  catalog_->refresh();
}

TEST_F(CatalogTest, CropChangesTheQueryAndIsValidated) {
  const std::string bytes = photo("coat", 2);
  QueryOptions q;
  q.category = "all";
  const auto whole = catalog_->search_image(bytes, q);
  q.crop = cv::Rect(0, 0, 40, 40);
  const auto cropped = catalog_->search_image(bytes, q);
  EXPECT_LT(cropped.hits[0].score, whole.hits[0].score);
  q.crop = cv::Rect(5000, 5000, 10, 10);
  EXPECT_THROW(catalog_->search_image(bytes, q), Error);
}

TEST_F(CatalogTest, OnlineAddIsSearchableAndFilterableThenRemoved) {
  Item item;
  item.id = "sale-coat";
  item.category = "coat";
  item.file_name = "sale.jpg";
  item.metadata.title = "Sale coat";
  item.metadata.price = 19.5;
  item.metadata.attributes = {{"colour", "navy"}};
  const std::string bytes = photo("sweater", 7);
  catalog_->add(bytes, item);
  EXPECT_THROW(catalog_->add(bytes, item), Error);  // same id twice
  QueryOptions q;
  q.category = "all";
  q.filter.price_max = 20;
  auto r = catalog_->search_image(bytes, q);
  ASSERT_EQ(r.hits.size(), 1u);
  EXPECT_EQ(r.hits[0].item.id, "sale-coat");
  q.filter.attributes["colour"] = "red";
  EXPECT_TRUE(catalog_->search_image(bytes, q).hits.empty());
  // Its category's search finds it at once: the index row is tagged as the add stores it.
  QueryOptions coats;
  coats.category = "coat";
  const auto in_coats = catalog_->search_image(bytes, coats);
  ASSERT_FALSE(in_coats.hits.empty());
  EXPECT_EQ(in_coats.hits[0].item.id, "sale-coat");
  for (const auto& h : in_coats.hits) EXPECT_EQ(h.item.category, "coat");
  ASSERT_TRUE(catalog_->remove("sale-coat"));
  EXPECT_FALSE(catalog_->remove("sale-coat"));
  q.filter = {};
  r = catalog_->search_image(bytes, q);
  for (const auto& h : r.hits) EXPECT_NE(h.item.id, "sale-coat");
  EXPECT_EQ(catalog_->stats().items, 48u);
}

// A compressed index serves its float16 copies from its snapshot file: an item added online
// holds its copy in memory until the server writes the next snapshot, which it then maps too.
TEST_F(CatalogTest, CompressedIndexCopiesMoveFromMemoryToTheSnapshotItWrites) {
  testing::TempDir tmp;
  fs::copy(dir_->path() / "data", tmp.path() / "data", fs::copy_options::recursive);
  CatalogOptions options;
  options.data_dir = (tmp.path() / "data").string();
  options.model_manifest = testing::model_manifest();
  Catalog catalog(options, false);
  catalog.reindex(IndexKind::kIvfPq);
  const auto loaded = catalog.stats();
  ASSERT_EQ(loaded.index_kind, "ivfpq");
  const size_t row_bytes = loaded.index_dimension * sizeof(uint16_t);
  EXPECT_EQ(loaded.index_exact_copy_bytes, 0u);
  EXPECT_EQ(loaded.index_mapped_copy_bytes, loaded.items * row_bytes);
  Item item;
  item.id = "new-coat";
  item.category = "coat";
  item.file_name = "new.jpg";
  const std::string bytes = photo("sweater", 6);
  catalog.add(bytes, item);
  EXPECT_EQ(catalog.stats().index_exact_copy_bytes, row_bytes);
  ASSERT_TRUE(catalog.snapshot_index_if_stale());
  const auto saved = catalog.stats();
  EXPECT_EQ(saved.index_exact_copy_bytes, 0u);
  EXPECT_EQ(saved.index_mapped_copy_bytes, (loaded.items + 1) * row_bytes);
  QueryOptions q;
  q.category = "all";
  EXPECT_EQ(catalog.search_image(bytes, q).hits.at(0).item.id, "new-coat");
  EXPECT_EQ(Catalog(options, false).search_image(bytes, q).hits.at(0).item.id, "new-coat");
}

// `serve` maps its snapshot's float16 copies unchecked and checks them once it serves: intact
// ones are kept; damaged ones make it drop the snapshot and rebuild the index from the database,
// which then answers as before the damage, from a snapshot sealed again.
TEST_F(CatalogTest, CopiesLeftUncheckedAtStartAreCheckedAndDamagedOnesRebuilt) {
  testing::TempDir tmp;
  fs::copy(dir_->path() / "data", tmp.path() / "data", fs::copy_options::recursive);
  CatalogOptions options;
  options.data_dir = (tmp.path() / "data").string();
  options.model_manifest = testing::model_manifest();
  const std::string bytes = photo("sweater", 6);
  QueryOptions q;
  q.category = "all";
  std::string want;
  {
    Catalog catalog(options, false);
    catalog.reindex(IndexKind::kIvfPq);
    want = catalog.search_image(bytes, q).hits.at(0).item.id;
    EXPECT_TRUE(catalog.check_started_copies());  // none left unchecked: loaded whole
  }
  // The one compressed snapshot, the one whose copies are sealed apart.
  auto compressed_snapshot = [&]() -> std::string {
    for (const auto& entry : fs::directory_iterator(tmp.path() / "data" / "index")) {
      if (entry.path().extension() == ".faiss" && open_index_file(entry.path().string()).unchecked)
        return entry.path().string();
    }
    return "";
  };
  const std::string snapshot = compressed_snapshot();
  ASSERT_FALSE(snapshot.empty());
  options.check_copies_later = true;
  {
    Catalog catalog(options, false);
    EXPECT_EQ(catalog.stats().index_kind, "ivfpq");
    EXPECT_TRUE(catalog.check_started_copies());
  }
  std::string damaged = testing::read_bytes(snapshot);
  damaged[damaged.size() - 32 - 7] ^= 0x20;  // the last float16 copy, before the 32-byte seal
  testing::write_bytes(snapshot, damaged);
  Catalog catalog(options, false);
  EXPECT_EQ(catalog.stats().index_kind, "ivfpq");  // read, its copies unchecked
  EXPECT_FALSE(catalog.check_started_copies());
  EXPECT_EQ(catalog.stats().index_kind, "ivfpq");
  EXPECT_EQ(catalog.search_image(bytes, q).hits.at(0).item.id, want);
  const std::string rebuilt = compressed_snapshot();
  ASSERT_FALSE(rebuilt.empty());
  EXPECT_NE(testing::read_bytes(rebuilt), damaged);
  EXPECT_NO_THROW(load_index_file(rebuilt));  // sealed again, and whole
}

// A category filter reads items' categories from the serving state's tags: a new category must
// move the item from one filter to the other at once.
TEST_F(CatalogTest, ARecategorisedItemMovesBetweenCategoryFilters) {
  const Item item = catalog_->store().list({"hood", 3, 1}).front();
  const auto ids_in = [&](const std::string& category) {
    QueryOptions q;
    q.category = category;
    q.k = 50;
    q.collapse_duplicates = false;
    std::vector<std::string> ids;
    for (const auto& h : catalog_->similar(catalog_->store().list({"jumper", 0, 1}).front().id, q).hits)
      ids.push_back(h.item.id);
    return ids;
  };
  const auto has = [](const std::vector<std::string>& ids, const std::string& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  ASSERT_TRUE(has(ids_in("hood"), item.id));
  ASSERT_TRUE(catalog_->update(item.id, item.metadata, std::string("coat")));
  EXPECT_FALSE(has(ids_in("hood"), item.id));
  EXPECT_TRUE(has(ids_in("coat"), item.id));
  ASSERT_TRUE(catalog_->update(item.id, item.metadata, std::string("hood")));
  EXPECT_TRUE(has(ids_in("hood"), item.id));
  EXPECT_FALSE(has(ids_in("coat"), item.id));
}

// Also restricted to a category: the index's tags are not in its snapshot, and a loaded or
// rebuilt index must be tagged again.
TEST_F(CatalogTest, ReopenAndReindexGiveTheSameAnswers) {
  for (const std::string category : {"all", "hood"}) {
    QueryOptions q;
    q.category = category;
    const std::string bytes = photo("hood", 4);
    const auto before = catalog_->search_image(bytes, q);
    auto reopened = open();
    const auto after = reopened->search_image(bytes, q);
    reopened->reindex();
    const auto rebuilt = reopened->search_image(bytes, q);
    ASSERT_FALSE(before.hits.empty()) << category;
    ASSERT_EQ(before.hits.size(), after.hits.size()) << category;
    ASSERT_EQ(before.hits.size(), rebuilt.hits.size()) << category;
    for (size_t i = 0; i < before.hits.size(); ++i) {
      EXPECT_EQ(before.hits[i].item.id, after.hits[i].item.id);
      EXPECT_EQ(before.hits[i].item.id, rebuilt.hits[i].item.id);
      EXPECT_NEAR(before.hits[i].score, rebuilt.hits[i].score, 1e-5);
    }
  }
}

TEST_F(CatalogTest, ReimportResumesWithoutReembedding) {
  const auto again = import_entries(*catalog_, scan_import_source((dir_->path() / "photos").string()), {});
  EXPECT_EQ(again.imported, 0u);
  EXPECT_EQ(again.already_stored, 48u);
  EXPECT_EQ(catalog_->stats().items, 48u);
}

TEST_F(CatalogTest, BadFilesAreSkippedWithReasonsAndDuplicatesReuseDescriptors) {
  testing::TempDir extra;
  const std::string good = photo("shirts", 5);
  testing::write_bytes(extra.path() / "misc" / "copy.jpg", good);
  testing::write_bytes(extra.path() / "misc" / "copy2.jpg", good);
  testing::write_bytes(extra.path() / "misc" / "truncated.jpg", good.substr(0, good.size() / 2));
  testing::write_bytes(extra.path() / "misc" / "text.jpg", "this is not a photo");
  testing::write_bytes(extra.path() / "misc" / "empty.jpg", "");
  CatalogOptions options = catalog_->options();
  options.data_dir = (extra.path() / "data").string();
  Catalog other(options, false);
  ImportOptions no_train;
  no_train.train = false;
  const auto report = import_entries(other, scan_import_source((extra.path() / "misc").string()), no_train);
  EXPECT_EQ(report.imported, 2u);
  EXPECT_EQ(report.failures.size(), 3u);
  std::string reasons;
  for (const auto& f : report.failures)
    reasons += fs::path(f.path).filename().string() + ": " + f.reason + "\n";
  EXPECT_NE(reasons.find("truncated.jpg: JPEG data is corrupt: truncated"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("text.jpg: not an image"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("empty.jpg: the file is empty"), std::string::npos) << reasons;
  const auto a = other.store().find("copy"), b = other.store().find("copy2");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(other.store().descriptor(0, a->key), other.store().descriptor(0, b->key));
  EXPECT_EQ(a->image_path, b->image_path);  // stored once, content-addressed
}

}  // namespace
}  // namespace lookalike

// Training a model version on real photos: a small subset of the sample catalog, a few epochs.
// Deterministic for a seed, better than chance on its validation split, exported head verified
// against libtorch, every item re-described, and versions switched and rolled back.
#include <gtest/gtest.h>

#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include "common/error.h"
#include "common/files.h"
#include "service/catalog.h"
#include "service/head_validation.h"
#include "service/import_source.h"
#include "service/importer.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

class HeadTrainingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::dataset_dir().empty()) return;
    dir_ = new testing::TempDir();
    testing::make_subset(dir_->path() / "photos", 12);
    catalog_ = open().release();
    import_entries(*catalog_, scan_import_source((dir_->path() / "photos").string()), {});
  }
  static void TearDownTestSuite() {
    delete catalog_;
    delete dir_;
  }
  void SetUp() override { LOOKALIKE_REQUIRE_DATASET(); }

  static std::unique_ptr<Catalog> open(std::optional<int64_t> pinned = std::nullopt, bool blend = true) {
    CatalogOptions options;
    options.data_dir = (dir_->path() / "data").string();
    options.model_manifest = testing::model_manifest();
    options.pinned_version = pinned;
    options.blend_frozen = blend;
    return std::make_unique<Catalog>(options, false);
  }
  static HeadTrainingRequest request() {
    HeadTrainingRequest r;
    r.head.seed = 5;
    r.head.max_epochs = 4;
    r.head.patience = 4;
    r.head.batch_size = 16;
    // Four epochs on a few photos: map crops (the default, which needs its 20 epochs; measured in
    // docs/quality.md and tested in head_trainer_test) would leave this head near chance.
    r.head.map_crop = 1.0f;
    r.validation_fraction = 0.25;
    r.min_per_category = 5;
    r.always_activate = true;  // the activation rule has its own test
    return r;
  }
  // The centre 85% of a photo, saved as JPEG at quality 60: a shopper's copy of it.
  static std::string cropped_jpeg(const std::string& bytes) {
    const cv::Mat image = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())), cv::IMREAD_COLOR);
    const int dx = image.cols * 3 / 40, dy = image.rows * 3 / 40;
    std::vector<uchar> out;
    cv::imencode(".jpg", image(cv::Rect(dx, dy, image.cols - 2 * dx, image.rows - 2 * dy)), out,
                 {cv::IMWRITE_JPEG_QUALITY, 60});
    return std::string(out.begin(), out.end());
  }
  static std::string photo(const std::string& category, size_t index) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir_->path() / "photos" / category))
      files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return read_file(files.at(index).string(), 10 << 20);
  }

  static testing::TempDir* dir_;
  static Catalog* catalog_;
};

testing::TempDir* HeadTrainingTest::dir_ = nullptr;
Catalog* HeadTrainingTest::catalog_ = nullptr;

TEST_F(HeadTrainingTest, TrainsAVersionThatIsDeterministicBeatsChanceAndServes) {
  const auto first = catalog_->train_head(request());
  ASSERT_TRUE(first.trained) << first.summary;
  EXPECT_EQ(first.version, 1);
  // 6 categories: chance is 1/6. 18 validation photos, 3 per category.
  EXPECT_GE(first.info["validation_accuracy"].get<double>(), 0.4) << first.info.dump();
  EXPECT_LT(first.info["export_max_difference"].get<double>(), 1e-3);
  // Judged beside the frozen recipe on the same validation photos, with auto's threshold chosen there.
  ASSERT_TRUE(first.info["frozen_validation_accuracy"].is_number()) << first.info.dump();
  EXPECT_GE(first.info["frozen_validation_accuracy"].get<double>(), 0.4);
  const float threshold = first.info["auto_min_confidence"].get<float>();
  EXPECT_GE(threshold, 0.f);
  EXPECT_LE(threshold, 0.95f);
  // The frozen probe's weight in the predictions, chosen on the same photos.
  const float blend = first.info["frozen_blend_weight"].get<float>();
  EXPECT_GE(blend, 0.f);
  EXPECT_LE(blend, 0.7f);
  EXPECT_GE(first.info["blended_validation_accuracy"].get<double>(), 0.4);
  // The import kept the original maps; training extracted only the mirrored ones.
  EXPECT_EQ(first.info["maps_extracted"].get<size_t>(),
            first.info["train_photos"].get<size_t>() + first.info["validation_photos"].get<size_t>());

  const auto second = catalog_->train_head(request());
  ASSERT_TRUE(second.trained);
  EXPECT_EQ(second.info["maps_extracted"].get<size_t>(), 0u);  // all cached now
  const auto v1 = catalog_->store().model_version(1), v2 = catalog_->store().model_version(2);
  ASSERT_TRUE(v1 && v2);
  EXPECT_EQ(v1->head_onnx, v2->head_onnx) << "same seed and data must give the same head";
  auto losses = [](nlohmann::json epochs) {
    for (auto& e : epochs) e.erase("seconds");
    return epochs;
  };
  EXPECT_EQ(losses(v1->info["epochs"]), losses(v2->info["epochs"]));

  // Every item has a descriptor of the new version; searches run on it.
  EXPECT_TRUE(catalog_->store().keys_missing_descriptor(2).empty());
  QueryOptions options;
  options.k = 5;
  options.category = "all";
  const auto result = catalog_->search_image(photo("dress", 3), options);
  EXPECT_EQ(result.embedding.version, 2);
  EXPECT_EQ(result.embedding.raw.size(), 512u);
  ASSERT_FALSE(result.hits.empty());
  EXPECT_EQ(result.hits.front().item.category, "dress");
  EXPECT_GT(result.hits.front().score, 0.999f);  // the photo itself
  EXPECT_TRUE(result.hits.front().same_item);
  EXPECT_FALSE(result.prediction.category.empty());
  // The index holds the head's and the frozen recipe's descriptors; the frozen one recognises
  // the very item, which comes first, marked, even cropped and re-compressed.
  const auto stats = catalog_->stats();
  EXPECT_FLOAT_EQ(stats.frozen_search_weight, kDefaultFrozenSearchWeight);
  EXPECT_FLOAT_EQ(stats.instance_threshold, kDefaultInstanceThreshold);
  EXPECT_GT(stats.index_dimension, 512u);
  const auto altered = catalog_->search_image(cropped_jpeg(photo("coat", 5)), options);
  ASSERT_FALSE(altered.hits.empty());
  EXPECT_EQ(altered.hits.front().item.sha256, sha256_hex(photo("coat", 5)));
  EXPECT_TRUE(altered.hits.front().same_item);
  size_t marked = 0;
  for (const auto& hit : altered.hits) marked += hit.same_item;
  EXPECT_LT(marked, altered.hits.size()) << "look-alikes are not the same item";

  // Roll back to the frozen recipe, then forward again; an unknown version is refused.
  catalog_->use_version(0);
  EXPECT_EQ(catalog_->search_image(photo("dress", 3), options).embedding.version, 0);
  EXPECT_THROW(catalog_->use_version(9), Error);
  EXPECT_EQ(catalog_->stats().model_version, 0);
  catalog_->use_version(2);
  EXPECT_EQ(catalog_->stats().model_version, 2);

  // An item added online gets the active version's descriptor at once; a pinned view of the
  // frozen recipe still serves it too.
  Item item;
  item.id = "added-coat";
  item.category = "coat";
  const auto added = catalog_->add(photo("coat", 0), item);
  EXPECT_EQ(catalog_->store().descriptor(2, added.key).size(), 512u);
  size_t compared = 0;  // the online add's index vector is the combined one the store gives
  EXPECT_TRUE(catalog_->index_problems(&compared).empty());
  EXPECT_EQ(compared, catalog_->stats().items);
  EXPECT_TRUE(catalog_->store().keys_missing_descriptor(2).empty());
  auto frozen = open(0);
  EXPECT_EQ(frozen->stats().model_version, 0);
  EXPECT_EQ(frozen->search_image(photo("coat", 0), options).embedding.version, 0);
  // Version 1 lacks the new item; activating it fills the gap before it serves.
  EXPECT_EQ(catalog_->store().keys_missing_descriptor(1).size(), 1u);
  catalog_->use_version(1);
  EXPECT_TRUE(catalog_->store().keys_missing_descriptor(1).empty());
  EXPECT_EQ(catalog_->stats().items, 73u);
}

TEST_F(HeadTrainingTest, KeepsTheFrozenRecipeWhenCategoriesAreTooSmall) {
  HeadTrainingRequest r = request();
  r.min_per_category = 1000;
  const auto before = catalog_->stats().model_version;
  const auto outcome = catalog_->train_head(r);
  EXPECT_FALSE(outcome.trained);
  EXPECT_NE(outcome.summary.find("kept the frozen recipe"), std::string::npos) << outcome.summary;
  EXPECT_EQ(catalog_->stats().model_version, before);
}

TEST_F(HeadTrainingTest, ACancelledTrainingKeepsNothing) {
  const auto versions = catalog_->versions().size();
  const auto active = catalog_->stats().model_version;
  std::atomic<bool> cancel{true};
  HeadTrainingRequest r = request();
  r.cancel = &cancel;
  try {
    catalog_->train_head(r);
    FAIL() << "a cancelled training must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
  EXPECT_EQ(catalog_->versions().size(), versions);
  EXPECT_EQ(catalog_->stats().model_version, active);
}

TEST_F(HeadTrainingTest, AVersionThatValidatesWorseThanTheFrozenRecipeIsStoredButNotActivated) {
  const auto active = catalog_->stats().model_version;
  HeadTrainingRequest r = request();
  r.always_activate = false;
  r.head.max_epochs = 1;
  r.head.learning_rate = 1e-7f;  // learns nothing: about chance (1/6) on its validation photos
  const auto outcome = catalog_->train_head(r);
  ASSERT_TRUE(outcome.trained) << outcome.summary;
  const double head = outcome.info["validation_accuracy"].get<double>();
  const double frozen = outcome.info["frozen_validation_accuracy"].get<double>();
  ASSERT_LT(head, frozen) << outcome.info.dump();
  EXPECT_FALSE(outcome.activated);
  EXPECT_NE(outcome.summary.find("not activated"), std::string::npos) << outcome.summary;
  EXPECT_EQ(catalog_->stats().model_version, active);
  // Stored all the same, with every descriptor: it can be activated by hand.
  ASSERT_TRUE(catalog_->store().model_version(outcome.version));
  EXPECT_TRUE(catalog_->store().keys_missing_descriptor(outcome.version).empty());
  catalog_->use_version(outcome.version);
  EXPECT_EQ(catalog_->stats().model_version, outcome.version);
  catalog_->use_version(active);
}

// The served prediction of a blended version is the log-linear pool of what the head alone and
// the frozen probe alone predict for the same photo, each computed by its own catalog view.
TEST_F(HeadTrainingTest, ABlendedVersionPredictsWithTheHeadAndTheFrozenProbeTogether) {
  HeadTrainingRequest r = request();
  r.frozen_blend_weight = 0.5f;
  const auto outcome = catalog_->train_head(r);
  ASSERT_TRUE(outcome.trained) << outcome.summary;
  EXPECT_FLOAT_EQ(outcome.info["frozen_blend_weight"].get<float>(), 0.5f);
  EXPECT_NE(outcome.summary.find("blended in at weight 0.50"), std::string::npos) << outcome.summary;
  auto blended = open(), head_alone = open(std::nullopt, false), frozen = open(0);
  EXPECT_FLOAT_EQ(blended->stats().frozen_blend_weight, 0.5f);
  EXPECT_FLOAT_EQ(head_alone->stats().frozen_blend_weight, 0.f);
  EXPECT_FLOAT_EQ(frozen->stats().frozen_blend_weight, 0.f);

  QueryOptions options;
  options.k = 3;
  options.category = "all";
  const std::string bytes = photo("hood", 1);
  const auto b = blended->search_image(bytes, options);
  const auto h = head_alone->search_image(bytes, options);
  const auto f = frozen->search_image(bytes, options);
  EXPECT_EQ(b.embedding.version, outcome.version);
  EXPECT_EQ(b.embedding.frozen.size(), f.embedding.raw.size());  // one forward gave both
  EXPECT_TRUE(h.embedding.frozen.empty());                       // the trunk cut after mixed7 only
  EXPECT_EQ(b.embedding.raw, h.embedding.raw);                   // the same search descriptor
  auto by_name = [](const Prediction& p, const std::vector<std::string>& classes) {
    std::vector<float> out;
    for (const auto& name : classes) {
      const auto it = std::find_if(p.probabilities.begin(), p.probabilities.end(),
                                   [&](const auto& e) { return e.first == name; });
      out.push_back(it == p.probabilities.end() ? 0.f : it->second);
    }
    return out;
  };
  const auto classes = outcome.info["classes"].get<std::vector<std::string>>();
  const auto expected =
      blend_probabilities(by_name(h.prediction, classes), by_name(f.prediction, classes), 0.5f);
  const auto served = by_name(b.prediction, classes);
  for (size_t c = 0; c < classes.size(); ++c) EXPECT_NEAR(served[c], expected[c], 2e-3f) << classes[c];
  // "More like this" from a stored item blends the item's stored frozen descriptor the same way.
  const auto item = blended->store().all_items().front();
  const auto similar = blended->similar(item.id, options);
  EXPECT_EQ(similar.embedding.frozen, blended->store().descriptor(0, item.key));
  EXPECT_FALSE(similar.prediction.category.empty());
}

}  // namespace
}  // namespace lookalike

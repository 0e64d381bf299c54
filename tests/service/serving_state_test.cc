// The serving state without a model: the frozen recipe learned from stored descriptors, the
// index loaded from a snapshot plus the writes since, rebuilt when the snapshot is gone, and
// LiveState's promise that a search never waits for a write in progress.
#include "service/serving_state.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>

#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include "common/error.h"
#include "model/head_model.h"
#include "model/softmax_classifier.h"
#include "service/frozen_recipe.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

constexpr size_t kDimension = 24;

// Descriptors of two well-separated categories: "a" near +e0, "b" near -e0.
NewItem item_of(int n, const std::string& category, std::mt19937& rng) {
  std::normal_distribution<float> noise(0, 0.1f);
  NewItem it;
  it.item.id = category + std::to_string(n);
  it.item.category = category;
  it.item.sha256 = it.item.id;
  it.descriptor.resize(kDimension);
  for (auto& v : it.descriptor) v = noise(rng);
  it.descriptor[0] += category == "a" ? 1.0f : -1.0f;
  return it;
}

class ServingStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::make_unique<DataDirectory>(tmp_.str());
    store_ = open_sqlite_store(directory_->database());
    add_items(0, 30);
  }
  void add_items(int from, int to) {
    std::vector<NewItem> items;
    for (int n = from; n < to; ++n) items.push_back(item_of(n, n % 2 ? "a" : "b", rng_));
    store_->insert(items);
  }
  ServingStateLoader loader(bool read_only = false) {
    ServingStateOptions options;
    options.read_only = read_only;
    return ServingStateLoader(*store_, *directory_, options, nullptr);
  }

  testing::TempDir tmp_;
  std::mt19937 rng_{7};
  std::unique_ptr<DataDirectory> directory_;
  std::unique_ptr<CatalogStore> store_;
};

TEST_F(ServingStateTest, UntrainedCatalogHasItemsButNoIndex) {
  const auto state = loader().load(true);
  EXPECT_EQ(state->items.size(), 30u);
  EXPECT_FALSE(state->trained());
  EXPECT_FALSE(state->index);
  EXPECT_TRUE(directory_->index_snapshots().empty());
}

TEST_F(ServingStateTest, FrozenRecipeClassifiesAndIndexesEveryItem) {
  const std::string summary = train_frozen_recipe(*store_, 6);
  EXPECT_NE(summary.find("classifier over 2 categories"), std::string::npos) << summary;
  EXPECT_GT(frozen_cv_accuracy(*store_), 0.9);
  const auto state = loader().load(true);
  ASSERT_TRUE(state->index);
  EXPECT_EQ(state->index->size(), 30u);
  EXPECT_EQ(state->index->dimension(), 6u);
  size_t compared = 0;
  EXPECT_TRUE(index_problems(*state, *store_, &compared).empty());
  EXPECT_EQ(compared, 30u);
  // A descriptor near +e0 is predicted "a".
  QueryEmbedding query;
  query.raw.assign(kDimension, 0.0f);
  query.raw[0] = 1.0f;
  const auto prediction = state->predict(query, state->project(query.raw));
  EXPECT_EQ(prediction.category, "a");
  EXPECT_GT(prediction.confidence, 0.5f);
  // The rebuild wrote one snapshot, named by the state's revision.
  const auto snapshots = directory_->index_snapshots();
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_EQ(snapshots.front().revision, state->revision);
  EXPECT_EQ(state->snapshot_revision, state->revision);
}

// A recipe stored before training dropped FAISS's eigenvector matrix is rewritten compact by
// compact_frozen_recipe (`reindex`), and projects exactly as before.
TEST_F(ServingStateTest, AnOldLargeRecipeIsCompactedWithTheSameProjection) {
  train_frozen_recipe(*store_, 6);
  const auto before = loader(true).load(true);
  EXPECT_FALSE(compact_frozen_recipe(*store_));  // written compact already
  // The old form: the same projection, with the d_in x d_in matrix PCA training computed.
  auto* old = dynamic_cast<faiss::PCAMatrix*>([&] {
    faiss::VectorIOReader reader;
    const auto blob = *store_->get_blob(kPcaBlob);
    reader.data.assign(blob.begin(), blob.end());
    return faiss::read_VectorTransform(&reader);
  }());
  ASSERT_TRUE(old);
  old->PCAMat.assign(kDimension * kDimension, 0.5f);
  faiss::VectorIOWriter writer;
  faiss::write_VectorTransform(old, &writer);
  delete old;
  store_->put_blobs({{kPcaBlob, std::string(writer.data.begin(), writer.data.end())}});
  const auto sizes = compact_frozen_recipe(*store_);
  ASSERT_TRUE(sizes);
  EXPECT_EQ(sizes->first - sizes->second, kDimension * kDimension * sizeof(float));
  EXPECT_FALSE(compact_frozen_recipe(*store_));
  const auto after = loader(true).load(true);
  std::vector<float> raw(kDimension, 0.1f);
  raw[3] = 1.0f;
  EXPECT_EQ(after->project(raw), before->project(raw));
}

TEST_F(ServingStateTest, ASnapshotIsCaughtUpWithWritesMadeSince) {
  train_frozen_recipe(*store_, 6);
  const auto first = loader().load(true);
  add_items(30, 34);
  store_->remove("b0");
  const auto second = loader(/*read_only=*/true).load(/*allow_rebuild=*/false);
  EXPECT_EQ(second->index->size(), 33u);
  EXPECT_EQ(second->snapshot_revision, first->revision);  // loaded from the snapshot, not rebuilt
  EXPECT_TRUE(second->index->vector(*second->items.key_of("a33")).size() == 6u);
  EXPECT_TRUE(second->index->vector(*first->items.key_of("b0")).empty());
  size_t compared = 0;
  EXPECT_TRUE(index_problems(*second, *store_, &compared).empty());
}

// The score scale measured on a rebuilt index is kept beside its snapshot, and a start reads it
// instead of measuring again, as long as it is for the same search and about as many vectors.
TEST_F(ServingStateTest, TheScoreScaleKeptBesideTheSnapshotIsReadWhenItFits) {
  train_frozen_recipe(*store_, 6);
  const auto first = loader().load(true);
  ASSERT_TRUE(first->score_scale.measured());
  const auto snapshots = directory_->index_snapshots();
  ASSERT_EQ(snapshots.size(), 1u);
  const std::string kept_path = DataDirectory::score_scale_path(snapshots.front().path).string();
  const auto kept = nlohmann::json::parse(testing::read_bytes(kept_path));
  EXPECT_EQ(kept["measured_on"], 30u);
  EXPECT_EQ(kept["values"].get<std::vector<float>>(), first->score_scale.values());

  const auto values_loaded_with = [&](const nlohmann::json& file) {
    testing::write_bytes(kept_path, file.dump());
    return loader(/*read_only=*/true).load(/*allow_rebuild=*/false)->score_scale.values();
  };
  nlohmann::json marked = kept;
  marked["values"] = {0.125f, 0.25f, 0.5f};  // values no measure gives: read, not measured
  EXPECT_EQ(values_loaded_with(marked), (std::vector<float>{0.125f, 0.25f, 0.5f}));
  const auto measured = first->score_scale.values();
  for (const auto& [field, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"fingerprint", "another search"},  // other index parameters or frozen weight
           {"measured_on", 60},                // the index holds half the vectors measured
           {"measured_on", -1},
           {"values", {0.5f, 0.25f}},  // not ascending
           {"values", "0.5"}}) {
    nlohmann::json changed = marked;
    changed[field] = value;
    EXPECT_EQ(values_loaded_with(changed), measured) << field << " = " << value.dump();
  }
  testing::write_bytes(kept_path, "{\"values\": [0.1,");  // torn or damaged: measured again
  EXPECT_EQ(loader(true).load(false)->score_scale.values(), measured);
  testing::write_bytes(kept_path, std::string(2 << 20, ' '));  // over 1 MB: not even read
  EXPECT_EQ(loader(true).load(false)->score_scale.values(), measured);
  // A start that measured on a snapshot keeps what it measured for the next one (read-only
  // ones write nothing).
  std::filesystem::remove(kept_path);
  loader(true).load(false);
  EXPECT_FALSE(std::filesystem::exists(kept_path));
  loader().load(false);
  EXPECT_EQ(nlohmann::json::parse(testing::read_bytes(kept_path))["values"].get<std::vector<float>>(),
            measured);
  directory_->remove_index_snapshots(first->version);
  EXPECT_FALSE(std::filesystem::exists(kept_path)) << "removed with its snapshot";
}

TEST_F(ServingStateTest, AMissingSnapshotIsRebuiltOnlyWhenAllowedAndReadOnlyWritesNone) {
  train_frozen_recipe(*store_, 6);
  EXPECT_THROW(loader(true).load(false), Error);
  const auto in_memory = loader(true).load(true);
  EXPECT_EQ(in_memory->index->size(), 30u);
  EXPECT_TRUE(directory_->index_snapshots().empty());
}

// A trained version of the catalog's items: a small head (in_channels 4, kDimension channels)
// and each item's descriptor of it.
int64_t add_head_version(CatalogStore& store, uint32_t seed, bool activate) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.3f);
  HeadWeights w;
  w.in_channels = 4;
  w.channels = kDimension;
  w.classes = {"a", "b"};
  for (size_t i = 0; i < w.channels * w.in_channels; ++i) w.conv_weight.push_back(normal(rng));
  for (size_t i = 0; i < w.channels; ++i) w.conv_bias.push_back(normal(rng));
  for (size_t i = 0; i < w.classes.size() * w.channels; ++i) w.linear_weight.push_back(normal(rng));
  w.linear_bias = {0.f, 0.f};
  ModelVersion version;
  version.head_onnx = export_head_onnx(w);
  version.classifier =
      SoftmaxClassifier::from_linear(w.classes, w.channels, w.linear_weight, w.linear_bias).serialize();
  KeyedDescriptors descriptors;
  store.for_each_item([&](Item&& item) {
    std::vector<float> d(kDimension);
    for (auto& v : d) v = normal(rng);
    descriptors.emplace_back(item.key, std::move(d));
  });
  return store.add_model_version(version, descriptors, activate);
}

// A version activated while a server loads its state (after it read the active version) is the
// one it loads: a state of the old version under the newer revision would be taken as current,
// and serve the old version until the next change.
TEST_F(ServingStateTest, AVersionActivatedDuringALoadIsTheOneLoaded) {
  const int64_t first = add_head_version(*store_, 1, /*activate=*/true);
  const int64_t second = add_head_version(*store_, 2, /*activate=*/false);
  ServingStateOptions options;
  std::vector<int64_t> filled;
  ServingStateLoader loader(*store_, *directory_, options, [&](int64_t version, HeadPool&) {
    // another process, right after this load read the active version
    if (filled.empty()) store_->set_active_version(second);
    filled.push_back(version);
  });
  const auto state = loader.load(true);
  EXPECT_EQ(filled, (std::vector<int64_t>{first, second}));
  EXPECT_EQ(state->version, second);
  EXPECT_EQ(state->revision, store_->revision());
  EXPECT_EQ(state->classifier.dimension(), kDimension);
}

TEST_F(ServingStateTest, TooFewItemsToTrainIsAClearError) {
  testing::TempDir other;
  const DataDirectory dir(other.str());
  auto store = open_sqlite_store(dir.database());
  std::vector<NewItem> items;
  for (int n = 0; n < 3; ++n) items.push_back(item_of(n, "a", rng_));
  store->insert(items);
  try {
    train_frozen_recipe(*store, 8);
    FAIL() << "trained on 3 items";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotReady);
    EXPECT_NE(std::string(e.what()).find("at least 8"), std::string::npos) << e.what();
  }
}

// A trained version's index holds the head's and the frozen recipe's parts; a query weighs them
// as it likes: the inner product is head_weight * cos_head + frozen_weight * cos_frozen.
TEST(ServingState, WeightedQueriesScoreEachPartByItsOwnCosine) {
  constexpr size_t kHead = 6, kFrozen = 10, kRows = 64;
  const auto training = testing::random_unit_vectors(kRows, kFrozen, 3);
  ServingState state;
  state.descriptor_dimension = kHead;
  state.frozen_pca = PcaWhitening::train(kRows, kFrozen, training.data(), 8);
  state.frozen_search_weight = 0.3f;
  const auto heads = testing::random_unit_vectors(2, kHead, 4);
  const auto frozen = state.frozen_pca->apply(2, testing::random_unit_vectors(2, kFrozen, 5).data());
  const size_t f = state.frozen_pca->output_dimension();
  auto dot = [](const float* a, const float* b, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += double(a[i]) * b[i];
    return sum;
  };
  const double cos_head = dot(heads.data(), heads.data() + kHead, kHead);
  const double cos_frozen = dot(frozen.data(), frozen.data() + f, f);
  const auto indexed = state.combine(heads.data() + kHead, frozen.data() + f);
  ASSERT_EQ(indexed.size(), kHead + f);
  EXPECT_NEAR(dot(indexed.data(), indexed.data(), indexed.size()), 1.0, 1e-5);  // unit length
  for (const auto& [a, b] :
       std::vector<std::pair<float, float>>{{1, 0}, {0, 1}, {0.7f, 0.3f}, {0.5f, 0.5f}}) {
    const auto query = state.weighted_query(heads.data(), frozen.data(), a, b);
    EXPECT_NEAR(dot(query.data(), indexed.data(), indexed.size()), a * cos_head + b * cos_frozen, 1e-5)
        << a << " / " << b;
  }
  // A stored vector's ranking query is the one a search with the version's weight sends.
  const auto ranking = state.ranking_query_of(state.combine(heads.data(), frozen.data()));
  const auto expected = state.weighted_query(heads.data(), frozen.data(), 0.7f, 0.3f);
  ASSERT_EQ(ranking.size(), expected.size());
  for (size_t i = 0; i < ranking.size(); ++i) EXPECT_NEAR(ranking[i], expected[i], 1e-5);
}

TEST(LiveState, ASearchDoesNotWaitForAWriteInProgress) {
  LiveState live(std::make_unique<ServingState>());
  std::promise<void> holding, release;
  std::thread writer([&] {
    const auto write = live.begin_write();  // as an add does through its store commit
    holding.set_value();
    release.get_future().wait();
    live.change(write, [](ServingState& s) { s.revision = 2; });
  });
  holding.get_future().wait();
  auto read = std::async(std::launch::async,
                         [&] { return live.read([](const ServingState& s) { return s.revision; }); });
  // Deadlock detection, not a timing figure: a read that waited for the writer would never end.
  ASSERT_EQ(read.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(read.get(), 0);
  release.set_value();
  writer.join();
  EXPECT_EQ(live.read([](const ServingState& s) { return s.revision; }), 2);
}

TEST(LiveState, WritesAndReloadsAreSerialised) {
  LiveState live(std::make_unique<ServingState>());
  std::atomic<int> inside{0}, worst{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto write = live.begin_write();
        worst = std::max(worst.load(), ++inside);
        if (t == 0) {
          auto fresh = std::make_unique<ServingState>();
          fresh->revision = live.current(write).revision + 1;
          live.install(write, std::move(fresh));
        } else {
          live.change(write, [](ServingState& s) { ++s.revision; });
        }
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(worst.load(), 1);
  EXPECT_EQ(live.read([](const ServingState& s) { return s.revision; }), 800);  // no change lost
}

}  // namespace
}  // namespace lookalike

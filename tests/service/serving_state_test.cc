// The serving state without a model: the frozen recipe learned from stored descriptors, the
// index loaded from a snapshot plus the writes since, rebuilt when the snapshot is gone, and
// LiveState's promise that a search never waits for a write in progress.
#include "service/serving_state.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>

#include "common/error.h"
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

TEST_F(ServingStateTest, ASnapshotIsCaughtUpWithWritesMadeSince) {
  train_frozen_recipe(*store_, 6);
  const auto first = loader().load(true);
  add_items(30, 34);
  store_->remove("b0");
  const auto second = loader(/*read_only=*/true).load(/*allow_rebuild=*/false);
  EXPECT_EQ(second->index->size(), 33u);
  EXPECT_EQ(second->snapshot_revision, first->revision);  // loaded from the snapshot, not rebuilt
  EXPECT_TRUE(second->index->vector(second->keys_by_id.at("a33")).size() == 6u);
  EXPECT_TRUE(second->index->vector(first->keys_by_id.at("b0")).empty());
  size_t compared = 0;
  EXPECT_TRUE(index_problems(*second, *store_, &compared).empty());
}

TEST_F(ServingStateTest, AMissingSnapshotIsRebuiltOnlyWhenAllowedAndReadOnlyWritesNone) {
  train_frozen_recipe(*store_, 6);
  EXPECT_THROW(loader(true).load(false), Error);
  const auto in_memory = loader(true).load(true);
  EXPECT_EQ(in_memory->index->size(), 30u);
  EXPECT_TRUE(directory_->index_snapshots().empty());
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

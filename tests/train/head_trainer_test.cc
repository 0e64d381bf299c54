// The libtorch trainer on synthetic feature maps (separable by construction): deterministic for
// a seed, learns, and folds into an ONNX head that OpenCV runs like libtorch.
#include "train/head_trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

constexpr int kClasses = 3;

// Class c lights up channels 2c and 2c+1 of an 8-channel 3x3 map, on top of noise; the flipped
// map mirrors the columns, as the CNN's would roughly.
std::vector<TrainSample> synthetic_cache(const FeatureCache& cache, size_t per_class, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.4f);
  const auto& s = cache.shape();
  std::vector<TrainSample> samples;
  for (int c = 0; c < kClasses; ++c) {
    for (size_t i = 0; i < per_class; ++i) {
      std::vector<float> map(cache.values()), flipped(cache.values());
      for (int ch = 0; ch < s[0]; ++ch) {
        for (int y = 0; y < s[1]; ++y) {
          for (int x = 0; x < s[2]; ++x) {
            const float signal = (ch / 2 == c) ? 1.f + 0.3f * float(x) : 0.f;
            map[size_t((ch * s[1] + y) * s[2] + x)] = std::max(0.f, signal + noise(rng));
          }
        }
      }
      for (int ch = 0; ch < s[0]; ++ch)
        for (int y = 0; y < s[1]; ++y)
          for (int x = 0; x < s[2]; ++x)
            flipped[size_t((ch * s[1] + y) * s[2] + x)] =
                map[size_t((ch * s[1] + y) * s[2] + (s[2] - 1 - x))];
      const std::string sha = "s" + std::to_string(c) + "-" + std::to_string(i);
      cache.put(sha, false, map.data());
      cache.put(sha, true, flipped.data());
      samples.push_back({sha, c});
    }
  }
  return samples;
}

HeadTrainOptions small_options() {
  HeadTrainOptions o;
  o.seed = 11;
  o.max_epochs = 10;
  o.patience = 10;
  o.batch_size = 16;
  o.channels = 12;
  o.learning_rate = 5e-3f;
  o.threads = 1;
  return o;
}

class HeadTrainerTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  FeatureCache cache_{dir_.str(), {8, 3, 3}};
  std::vector<std::string> classes_{"a", "b", "c"};
};

TEST_F(HeadTrainerTest, SplitsEachClassForValidation) {
  const auto samples = synthetic_cache(cache_, 10, 1);
  const auto [train, validation] = split_validation(samples, 0.2, 5);
  EXPECT_EQ(train.size(), 24u);
  EXPECT_EQ(validation.size(), 6u);
  for (int c = 0; c < kClasses; ++c) {
    EXPECT_EQ(std::count_if(validation.begin(), validation.end(), [&](auto& s) { return s.label == c; }), 2);
  }
  const auto again = split_validation(samples, 0.2, 5);
  EXPECT_EQ(again.second.front().sha256, validation.front().sha256);
}

TEST_F(HeadTrainerTest, LearnsDeterministicallyAndExportsWhatItLearned) {
  const auto samples = synthetic_cache(cache_, 24, 2);
  const auto [train, validation] = split_validation(samples, 0.25, 3);
  const auto first = train_head(cache_, train, validation, classes_, small_options());
  const auto second = train_head(cache_, train, validation, classes_, small_options());
  // Same seed, same thread count: the same weights, bit for bit.
  EXPECT_EQ(first.weights.conv_weight, second.weights.conv_weight);
  EXPECT_EQ(first.weights.linear_weight, second.weights.linear_weight);
  EXPECT_EQ(first.best_epoch, second.best_epoch);
  // Clearly better than chance (1/3) on maps it never trained on.
  EXPECT_GE(first.val_accuracy, 0.8);
  EXPECT_GT(first.temperature, 0.f);

  // The folded, exported head run by OpenCV reproduces the libtorch module (eval mode).
  HeadNetwork net(export_head_onnx(first.weights));
  const auto& r = first.reference;
  ASSERT_GT(r.n, 0u);
  const int dims[] = {int(r.n), 8, 3, 3};
  const cv::Mat maps(4, dims, CV_32F, const_cast<float*>(r.maps.data()));
  const auto out = net.forward(maps);
  for (size_t i = 0; i < r.gem.size(); ++i)
    EXPECT_NEAR(out.gem.ptr<float>(0)[i], r.gem[i], 1e-4 * (1 + std::abs(r.gem[i])));
  for (size_t i = 0; i < r.logits.size(); ++i)
    EXPECT_NEAR(out.logits.ptr<float>(0)[i], r.logits[i], 1e-4 * (1 + std::abs(r.logits[i])));
}

// Map crops: each batch trains on a random window of its maps. On 6x6 maps a window of at least
// half of each side changes what is trained (the first epoch's loss), stays deterministic for a
// seed, and still learns.
TEST(HeadTrainerCrops, WindowsOfTheMapsChangeTrainingStayDeterministicAndLearn) {
  testing::TempDir dir;
  const FeatureCache cache{dir.str(), {8, 6, 6}};
  const std::vector<std::string> classes{"a", "b", "c"};
  const auto samples = synthetic_cache(cache, 24, 4);
  const auto [train, validation] = split_validation(samples, 0.25, 3);
  auto whole = small_options(), cropped = small_options();
  whole.map_crop = 1.0f;
  cropped.map_crop = 0.5f;
  const auto a = train_head(cache, train, validation, classes, whole);
  const auto b = train_head(cache, train, validation, classes, cropped);
  const auto again = train_head(cache, train, validation, classes, cropped);
  EXPECT_NE(a.epochs.front().train_loss, b.epochs.front().train_loss);
  EXPECT_EQ(b.weights.conv_weight, again.weights.conv_weight);
  EXPECT_GE(b.val_accuracy, 0.8);
}

TEST_F(HeadTrainerTest, NeedsCachedMapsAndTwoClasses) {
  const auto samples = synthetic_cache(cache_, 4, 3);
  std::vector<TrainSample> missing = samples;
  missing.push_back({"not-cached", 0});
  EXPECT_THROW(train_head(cache_, missing, {samples.front()}, classes_, small_options()), Error);
  EXPECT_THROW(train_head(cache_, samples, {}, classes_, small_options()), Error);
  EXPECT_THROW(train_head(cache_, samples, {samples.front()}, {"only"}, small_options()), Error);
}

}  // namespace
}  // namespace lookalike

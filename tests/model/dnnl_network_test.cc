// The oneDNN engine against OpenCV DNN on real photos of the sample catalog, through the same
// classes the service uses: the GeM descriptor (GemEmbedder, mixed5..mixed9) and the mixed7
// feature map the trained head reads (FeatureMapExtractor), at batch 1 and batch 3. Both engines
// read the same ONNX file; fp32 results must agree within 1e-4 per value (max abs diff).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/files.h"
#include "image/image_decoder.h"
#include "model/dnnl_network.h"
#include "model/embedder.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

constexpr double kTolerance = 1e-4;

// Photo number `index` (by name) of every `step`-th category, up to `count` photos.
std::vector<cv::Mat> sample_photos(size_t count = 3, size_t step = 2, size_t index = 0) {
  std::vector<fs::path> categories;
  for (const auto& e : fs::directory_iterator(testing::dataset_dir()))
    if (e.is_directory()) categories.push_back(e.path());
  std::sort(categories.begin(), categories.end());
  std::vector<cv::Mat> photos;
  for (size_t i = 0; photos.size() < count; i += step) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(categories[i % categories.size()])) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    const size_t k = index + i / categories.size();  // next photo when the categories wrap
    photos.push_back(decode_image_or_throw(read_file(files.at(k).string(), 10 << 20)).rgb);
  }
  return photos;
}

ModelManifest with_engine(const std::string& path, InferenceEngine engine) {
  ModelManifest m = ModelManifest::load(path);
  m.engine = engine;
  return m;
}

double max_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  EXPECT_EQ(a.total(), b.total());
  return cv::norm(a.reshape(1, 1), b.reshape(1, 1), cv::NORM_INF);
}

class DnnlNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LOOKALIKE_REQUIRE_DATASET();
    photos_ = sample_photos();
    ASSERT_EQ(photos_.size(), 3u);
  }
  std::vector<cv::Mat> photos_;
};

TEST_F(DnnlNetworkTest, GemDescriptorMatchesOpenCv) {
  GemEmbedder reference(with_engine(testing::model_manifest(), InferenceEngine::kOpenCv));
  GemEmbedder dnnl(with_engine(testing::model_manifest(), InferenceEngine::kDnnl));
  ASSERT_EQ(dnnl.engine(), InferenceEngine::kDnnl);
  ASSERT_EQ(dnnl.dimension(), reference.dimension());
  EXPECT_EQ(dnnl.model_id(), reference.model_id());  // same descriptors: catalogs stay compatible
  const cv::Mat expected = reference.embed(photos_);
  const cv::Mat batch3 = dnnl.embed(photos_);
  const double diff3 = max_abs_diff(batch3, expected);
  EXPECT_LT(diff3, kTolerance);
  for (size_t i = 0; i < photos_.size(); ++i) {
    const cv::Mat one = dnnl.embed({photos_[i]});
    const double diff1 = max_abs_diff(one, expected.row(static_cast<int>(i)));
    EXPECT_LT(diff1, kTolerance) << "photo " << i;
    std::cout << "gem descriptor photo " << i << ": max abs diff batch1 " << diff1 << "\n";
  }
  std::cout << "gem descriptor batch3: max abs diff " << diff3 << "\n";
  // The photos differ, so a descriptor that ignored its input would fail above.
  EXPECT_LT(expected.row(0).dot(expected.row(1)) / cv::norm(expected.row(0)) / cv::norm(expected.row(1)),
            0.99);
}

TEST_F(DnnlNetworkTest, Mixed7FeatureMapMatchesOpenCv) {
  const std::string manifest =
      (fs::path(testing::model_manifest()).parent_path() / "inception_v3_mixed7.json").string();
  FeatureMapExtractor reference(with_engine(manifest, InferenceEngine::kOpenCv));
  FeatureMapExtractor dnnl(with_engine(manifest, InferenceEngine::kDnnl));
  ASSERT_EQ(dnnl.map_shape(), reference.map_shape());
  const cv::Mat before = photos_[0].clone();
  for (bool flip : {false, true}) {
    const cv::Mat expected = reference.extract(photos_, flip);
    const cv::Mat batch3 = dnnl.extract(photos_, flip);
    ASSERT_EQ(batch3.size[0], 3);
    const double diff3 = max_abs_diff(batch3, expected);
    EXPECT_LT(diff3, kTolerance) << "flip " << flip;
    const cv::Mat one = dnnl.extract({photos_[1]}, flip);
    const double diff1 = max_abs_diff(one, expected.reshape(1, 3).row(1));
    EXPECT_LT(diff1, kTolerance) << "flip " << flip;
    double largest = 0;
    cv::minMaxLoc(expected.reshape(1, 1), nullptr, &largest);
    std::cout << "mixed7 map flip " << flip << ": max abs diff batch3 " << diff3 << ", batch1 " << diff1
              << " (largest value " << largest << ")\n";
  }
  // extract(flip) mirrors a copy: it once flipped the caller's pixels in place.
  EXPECT_EQ(cv::norm(before, photos_[0], cv::NORM_INF), 0);
}

// Calibrated on 18 photos of the catalog, int8 descriptors of 3 others stay close to fp32 ones.
// The descriptor is 5 L2-normalised blocks; the cosine is taken per block and over the whole.
TEST_F(DnnlNetworkTest, Int8DescriptorFollowsFp32) {
  ModelManifest manifest = with_engine(testing::model_manifest(), InferenceEngine::kDnnl);
  auto fp32_network = std::make_unique<DnnlNetwork>(manifest);
  std::vector<cv::Mat> calibration;
  for (const auto& photo : sample_photos(18, 1, 10)) {
    calibration.push_back(fp32_network->make_blob({preprocess_image(photo, manifest)}));
  }
  DnnlOptions options;
  options.int8 = fp32_network->calibrate(calibration);
  ASSERT_EQ(options.int8->images, 18u);
  GemEmbedder fp32(std::move(fp32_network));
  GemEmbedder int8(std::make_unique<DnnlNetwork>(manifest, options));
  const cv::Mat expected = fp32.embed(photos_), actual = int8.embed(photos_);
  ASSERT_EQ(actual.size, expected.size);
  double worst = 1;
  for (int i = 0; i < expected.rows; ++i) {
    const double whole =
        actual.row(i).dot(expected.row(i)) / (cv::norm(actual.row(i)) * cv::norm(expected.row(i)));
    std::cout << "int8 photo " << i << ": cosine to fp32 " << whole << " (blocks";
    int offset = 0;
    for (int channels : {768, 768, 768, 1280, 2048}) {
      const cv::Mat a = actual.row(i).colRange(offset, offset + channels);
      const cv::Mat e = expected.row(i).colRange(offset, offset + channels);
      const double block = a.dot(e) / (cv::norm(a) * cv::norm(e));
      std::cout << " " << block;
      worst = std::min(worst, block);
      offset += channels;
    }
    std::cout << ")\n";
    EXPECT_GT(whole, 0.98) << "photo " << i;
    EXPECT_LT(whole, 1 - 1e-7) << "photo " << i << ": identical to fp32, so not quantized";
  }
  EXPECT_GT(worst, 0.95);
}

// Inference slots share one model's graph and prepared weights (SharedModel): networks built
// and run at the same time, on different batch sizes (new plans, so new weight layouts), give
// what a network of their own gives (within float rounding: batch sizes differ).
TEST_F(DnnlNetworkTest, NetworksOfOneModelShareWeightsSafely) {
  const cv::Mat expected = GemEmbedder(with_engine(testing::model_manifest(), InferenceEngine::kDnnl)).embed(photos_);
  std::vector<cv::Mat> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      GemEmbedder slot(with_engine(testing::model_manifest(), InferenceEngine::kDnnl));
      if (t % 2 == 0) {
        got[t] = slot.embed(photos_);
      } else {
        for (const auto& photo : photos_) got[t].push_back(slot.embed({photo}));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < got.size(); ++t) EXPECT_LT(max_abs_diff(got[t], expected), kTolerance) << "slot " << t;
}

}  // namespace
}  // namespace lookalike

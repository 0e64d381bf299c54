// Proves the Keras -> ONNX conversion: the same photos go through the ORIGINAL nsfwjs model in
// @tensorflow/tfjs (tools/model/reference.js, run by the test command before this test) and
// through our ONNX in OpenCV DNN.
//   - preprocessing: our align-corners resize of the decoded pixels equals tfjs's input tensor
//     to 1e-5 (float rounding only);
//   - 5-class probabilities agree to 1e-4 absolute;
//   - the GeM-pooled, L2-normalised mixed5..mixed9 features agree to 1e-3 absolute per value
//     (cosine > 0.99999).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/vectors.h"
#include "model/embedder.h"
#include "model/opencv_network.h"
#include "support/test_support.h"

namespace lookalike {
namespace {
namespace fs = std::filesystem;

std::string reference_dir() {
  const char* env = std::getenv("LOOKALIKE_REFERENCE_DIR");
  return env && *env ? env : "";
}

std::vector<fs::path> references() {
  std::vector<fs::path> out;
  if (reference_dir().empty() || !fs::is_directory(reference_dir())) return out;
  for (const auto& e : fs::directory_iterator(reference_dir())) {
    if (e.path().extension() == ".json") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<float> read_floats(const fs::path& p) {
  const std::string bytes = testing::read_bytes(p);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

class ConversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LOOKALIKE_REQUIRE_DATASET();
    refs_ = references();
    ASSERT_FALSE(refs_.empty())
        << "no tfjs reference outputs in $LOOKALIKE_REFERENCE_DIR; the test command runs "
           "tools/model/reference.js first";
  }
  std::vector<fs::path> refs_;
};

TEST_F(ConversionTest, PreprocessingMatchesNsfwjs) {
  const auto manifest = ModelManifest::load(testing::model_manifest());
  for (const auto& ref : refs_) {
    const auto doc = nlohmann::json::parse(testing::read_bytes(ref));
    const std::string stem = ref.stem().string();
    std::string rgb = testing::read_bytes(ref.parent_path() / (stem + ".rgb"));
    const cv::Mat image(doc["height"].get<int>(), doc["width"].get<int>(), CV_8UC3, rgb.data());
    const cv::Mat ours = preprocess_image(image, manifest);
    const auto theirs = read_floats(ref.parent_path() / (stem + ".input.f32"));
    ASSERT_EQ(ours.total() * 3, theirs.size());
    double worst = 0;
    for (size_t i = 0; i < theirs.size(); ++i)
      worst = std::max(worst, std::abs(double(ours.ptr<float>()[i]) - theirs[i]));
    EXPECT_LT(worst, 1e-5) << stem;
  }
}

TEST_F(ConversionTest, ProbabilitiesAndFeaturesMatchTfjs) {
  OpenCvNetwork full(ModelManifest::load(testing::full_model_manifest()));
  GemEmbedder gem(ModelManifest::load(testing::model_manifest()));
  for (const auto& ref : refs_) {
    const auto doc = nlohmann::json::parse(testing::read_bytes(ref));
    auto input = read_floats(ref.parent_path() / (ref.stem().string() + ".input.f32"));
    const cv::Mat nhwc(299, 299, CV_32FC3, input.data());
    const cv::Mat blob = full.make_blob({nhwc});
    const auto probs = full.forward(blob, {"dense_3"})[0];
    const auto expected = doc["probabilities"].get<std::vector<float>>();
    ASSERT_EQ(probs.total(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR(probs.ptr<float>()[i], expected[i], 1e-4) << ref.stem() << " class " << i;
    }
    const cv::Mat descriptor = gem.embed_blob(blob);
    const float* ours = descriptor.ptr<float>(0);
    size_t offset = 0;
    for (const char* block : {"mixed5", "mixed6", "mixed7", "mixed8", "mixed9"}) {
      const auto theirs = doc["gem"][block].get<std::vector<float>>();
      double worst = 0;
      for (size_t i = 0; i < theirs.size(); ++i)
        worst = std::max(worst, std::abs(double(ours[offset + i]) - theirs[i]));
      EXPECT_LT(worst, 1e-3) << ref.stem() << " " << block;
      EXPECT_GT(dot(ours + offset, theirs.data(), theirs.size()), 0.99999f) << ref.stem() << " " << block;
      offset += theirs.size();
    }
    EXPECT_EQ(offset, static_cast<size_t>(descriptor.cols));
  }
}

}  // namespace
}  // namespace lookalike

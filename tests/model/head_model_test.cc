// The exported head (ONNX written with libonnx, run by OpenCV DNN) against the same maths
// written out plainly: conv 1x1 + bias, ReLU, GeM, linear.
#include "model/head_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/error.h"

namespace lookalike {
namespace {

HeadWeights random_head(size_t in, size_t channels, size_t classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 0.3f);
  HeadWeights w;
  w.in_channels = in;
  w.channels = channels;
  for (size_t i = 0; i < channels * in; ++i) w.conv_weight.push_back(normal(rng));
  for (size_t i = 0; i < channels; ++i) w.conv_bias.push_back(normal(rng));
  w.gem_p = 2.7f;
  for (size_t i = 0; i < classes; ++i) w.classes.push_back("c" + std::to_string(i));
  for (size_t i = 0; i < classes * channels; ++i) w.linear_weight.push_back(normal(rng));
  for (size_t i = 0; i < classes; ++i) w.linear_bias.push_back(normal(rng));
  return w;
}

// gem [channels], logits [classes] for one CHW map.
void reference(const HeadWeights& w, const float* map, size_t spatial, std::vector<float>& gem,
               std::vector<float>& logits) {
  gem.assign(w.channels, 0.f);
  for (size_t c = 0; c < w.channels; ++c) {
    double sum = 0;
    for (size_t s = 0; s < spatial; ++s) {
      double v = w.conv_bias[c];
      for (size_t i = 0; i < w.in_channels; ++i)
        v += w.conv_weight[c * w.in_channels + i] * map[i * spatial + s];
      sum += std::pow(std::max(v, 0.0) + w.gem_eps, double(w.gem_p));
    }
    gem[c] = static_cast<float>(std::pow(sum / double(spatial), 1.0 / w.gem_p));
  }
  logits.assign(w.classes.size(), 0.f);
  for (size_t k = 0; k < w.classes.size(); ++k) {
    double v = w.linear_bias[k];
    for (size_t c = 0; c < w.channels; ++c) v += w.linear_weight[k * w.channels + c] * gem[c];
    logits[k] = static_cast<float>(v);
  }
}

TEST(HeadModel, OpenCvRunsTheExportedHeadLikeThePlainMaths) {
  const HeadWeights w = random_head(6, 5, 3, 1);
  const int dims[] = {2, 6, 4, 3};
  cv::Mat maps(4, dims, CV_32F);
  cv::randu(maps, -1.0, 2.0);
  HeadNetwork net(export_head_onnx(w));
  const auto out = net.forward(maps);
  ASSERT_EQ(out.gem.rows, 2);
  ASSERT_EQ(out.gem.cols, 5);
  ASSERT_EQ(out.logits.cols, 3);
  for (int n = 0; n < 2; ++n) {
    std::vector<float> gem, logits;
    reference(w, maps.ptr<float>(n), 12, gem, logits);
    for (size_t c = 0; c < gem.size(); ++c)
      EXPECT_NEAR(out.gem.at<float>(n, int(c)), gem[c], 1e-4 * (1 + std::abs(gem[c])));
    for (size_t k = 0; k < logits.size(); ++k)
      EXPECT_NEAR(out.logits.at<float>(n, int(k)), logits[k], 1e-4 * (1 + std::abs(logits[k])));
  }
}

TEST(HeadModel, RefusesInconsistentWeightsAndGarbageBytes) {
  HeadWeights w = random_head(4, 3, 2, 2);
  w.conv_bias.pop_back();
  EXPECT_THROW(export_head_onnx(w), Error);
  EXPECT_THROW(HeadNetwork("not an onnx model"), Error);
}

}  // namespace
}  // namespace lookalike

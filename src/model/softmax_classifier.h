// Multinomial logistic regression on catalog descriptors: the category head.
// Trained in a few seconds by full-batch Adam with L2 regularisation. (A linear probe is all
// this needs; libtorch is reserved for the trained CNN head, which needs real backprop.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lookalike {

struct ClassifierTraining {
  float l2 = 1e-3f;
  int iterations = 300;
  float learning_rate = 0.05f;
  uint32_t seed = 7;
};

class SoftmaxClassifier {
 public:
  SoftmaxClassifier() = default;

  // x: n x d row-major (caller-owned); labels[i] in [0, classes.size()).
  static SoftmaxClassifier train(size_t n, size_t d, const float* x, const std::vector<int>& labels,
                                 std::vector<std::string> classes, const ClassifierTraining& options = {});

  struct CrossValidation {
    double accuracy = 0;
    // Softmax temperature minimising the negative log-likelihood of the out-of-fold
    // predictions: the L2 penalty leaves raw probabilities underconfident, and `auto` search
    // compares them to a threshold, so they must mean what they say.
    float temperature = 1;
  };
  // k-fold cross-validation of the same recipe (folds are interleaved, deterministic).
  static CrossValidation cross_validate(size_t n, size_t d, const float* x, const std::vector<int>& labels,
                                        size_t classes, size_t folds, const ClassifierTraining& options = {});

  // A classifier from given weights (classes x d, row-major) and biases, e.g. a trained head's
  // linear layer. Throws Error(kInvalidArgument) when the sizes disagree.
  static SoftmaxClassifier from_linear(std::vector<std::string> classes, size_t d, std::vector<float> weights,
                                       std::vector<float> bias);

  void set_temperature(float t) { temperature_ = t; }
  float temperature() const { return temperature_; }

  bool empty() const { return classes_.empty(); }
  size_t dimension() const { return dimension_; }
  const std::vector<std::string>& classes() const { return classes_; }
  // Probabilities over classes() for one d-float vector.
  std::vector<float> predict(const float* x) const;

  std::string serialize() const;                                  // JSON
  static SoftmaxClassifier deserialize(const std::string& text);  // throws Error(kCorruptStore)

 private:
  size_t dimension_ = 0;
  std::vector<std::string> classes_;
  std::vector<float> weights_;  // classes x dimension, row-major
  std::vector<float> bias_;
  float temperature_ = 1;

  std::vector<float> logits(const float* x) const;
};

}  // namespace lookalike

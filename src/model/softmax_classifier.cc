#include "model/softmax_classifier.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

// Row-wise softmax in place on an n x c CV_32F matrix.
void softmax_rows(cv::Mat& logits) {
  for (int i = 0; i < logits.rows; ++i) {
    float* row = logits.ptr<float>(i);
    const float top = *std::max_element(row, row + logits.cols);
    float sum = 0;
    for (int j = 0; j < logits.cols; ++j) sum += (row[j] = std::exp(row[j] - top));
    for (int j = 0; j < logits.cols; ++j) row[j] /= sum;
  }
}

}  // namespace

SoftmaxClassifier SoftmaxClassifier::train(size_t n, size_t d, const float* x, const std::vector<int>& labels,
                                           std::vector<std::string> classes, const ClassifierTraining& o) {
  const int c = static_cast<int>(classes.size());
  if (c < 2 || n == 0 || labels.size() != n) {
    throw Error(ErrorCode::kInvalidArgument,
                "classifier training needs >= 2 classes and one label per sample");
  }
  const cv::Mat X(static_cast<int>(n), static_cast<int>(d), CV_32F, const_cast<float*>(x));
  cv::Mat Y = cv::Mat::zeros(static_cast<int>(n), c, CV_32F);
  for (size_t i = 0; i < n; ++i) Y.at<float>(static_cast<int>(i), labels[i]) = 1.f;
  cv::Mat W = cv::Mat::zeros(c, static_cast<int>(d), CV_32F), b = cv::Mat::zeros(1, c, CV_32F);
  // Adam state.
  cv::Mat mW = cv::Mat::zeros(W.size(), CV_32F), vW = mW.clone(), mb = cv::Mat::zeros(b.size(), CV_32F),
          vb = mb.clone();
  const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  for (int t = 1; t <= o.iterations; ++t) {
    cv::Mat P;
    cv::gemm(X, W, 1.0, cv::repeat(b, static_cast<int>(n), 1), 1.0, P, cv::GEMM_2_T);
    softmax_rows(P);
    cv::Mat G = (P - Y) / static_cast<float>(n);  // d loss / d logits
    cv::Mat gW;
    cv::gemm(G, X, 1.0, W, o.l2, gW, cv::GEMM_1_T);
    cv::Mat gb;
    cv::reduce(G, gb, 0, cv::REDUCE_SUM);
    const float lr = o.learning_rate * std::sqrt(1 - std::pow(beta2, t)) / (1 - std::pow(beta1, t));
    for (auto [m, v, g, p] : {std::tuple{&mW, &vW, &gW, &W}, std::tuple{&mb, &vb, &gb, &b}}) {
      *m = beta1 * *m + (1 - beta1) * *g;
      *v = beta2 * *v + (1 - beta2) * g->mul(*g);
      cv::Mat denom;
      cv::sqrt(*v, denom);
      *p -= lr * m->mul(1.0 / (denom + eps));
    }
  }
  SoftmaxClassifier model;
  model.dimension_ = d;
  model.classes_ = std::move(classes);
  model.weights_.assign(W.begin<float>(), W.end<float>());
  model.bias_.assign(b.begin<float>(), b.end<float>());
  return model;
}

namespace {

double mean_nll(const std::vector<std::vector<float>>& logits, const std::vector<int>& labels,
                float temperature) {
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const auto& z = logits[i];
    const float top = *std::max_element(z.begin(), z.end()) / temperature;
    double sum = 0;
    for (float v : z) sum += std::exp(v / temperature - top);
    total += std::log(sum) + top - z[static_cast<size_t>(labels[i])] / temperature;
  }
  return total / double(logits.size());
}

// Golden-section search of log(T) in [1/20, 20]; the NLL is unimodal in T.
float fit_temperature(const std::vector<std::vector<float>>& logits, const std::vector<int>& labels) {
  double lo = std::log(0.05), hi = std::log(20.0);
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int i = 0; i < 40; ++i) {
    const double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
    if (mean_nll(logits, labels, float(std::exp(a))) < mean_nll(logits, labels, float(std::exp(b)))) {
      hi = b;
    } else {
      lo = a;
    }
  }
  return static_cast<float>(std::exp((lo + hi) / 2));
}

}  // namespace

SoftmaxClassifier::CrossValidation SoftmaxClassifier::cross_validate(size_t n, size_t d, const float* x,
                                                                     const std::vector<int>& labels,
                                                                     size_t classes, size_t folds,
                                                                     const ClassifierTraining& options) {
  if (folds < 2 || n < folds) return {};
  std::vector<std::string> names(classes);
  std::vector<std::vector<float>> out_of_fold(n);
  size_t correct = 0;
  for (size_t f = 0; f < folds; ++f) {
    std::vector<float> train_x;
    std::vector<int> train_y;
    for (size_t i = 0; i < n; ++i) {
      if (i % folds == f) continue;
      train_x.insert(train_x.end(), x + i * d, x + (i + 1) * d);
      train_y.push_back(labels[i]);
    }
    const auto model = train(train_y.size(), d, train_x.data(), train_y, names, options);
    for (size_t i = f; i < n; i += folds) {
      out_of_fold[i] = model.logits(x + i * d);
      const auto& z = out_of_fold[i];
      correct += static_cast<int>(std::max_element(z.begin(), z.end()) - z.begin()) == labels[i];
    }
  }
  return {static_cast<double>(correct) / static_cast<double>(n), fit_temperature(out_of_fold, labels)};
}

std::vector<float> SoftmaxClassifier::logits(const float* x) const {
  std::vector<float> z(classes_.size());
  for (size_t j = 0; j < classes_.size(); ++j) {
    double s = bias_[j];
    const float* w = weights_.data() + j * dimension_;
    for (size_t i = 0; i < dimension_; ++i) s += double(w[i]) * x[i];
    z[j] = static_cast<float>(s);
  }
  return z;
}

std::vector<float> SoftmaxClassifier::predict(const float* x) const {
  std::vector<float> p = logits(x);
  for (float& v : p) v /= temperature_;
  cv::Mat row(1, static_cast<int>(p.size()), CV_32F, p.data());
  softmax_rows(row);
  return p;
}

std::string SoftmaxClassifier::serialize() const {
  nlohmann::json j{{"format", "lookalike-softmax/1"},
                   {"dimension", dimension_},
                   {"classes", classes_},
                   {"weights", weights_},
                   {"bias", bias_},
                   {"temperature", temperature_}};
  return j.dump();
}

SoftmaxClassifier SoftmaxClassifier::from_linear(std::vector<std::string> classes, size_t d,
                                                 std::vector<float> weights, std::vector<float> bias) {
  if (classes.empty() || d == 0 || weights.size() != classes.size() * d || bias.size() != classes.size()) {
    throw Error(ErrorCode::kInvalidArgument, "classifier weights do not match classes x dimension");
  }
  SoftmaxClassifier c;
  c.dimension_ = d;
  c.classes_ = std::move(classes);
  c.weights_ = std::move(weights);
  c.bias_ = std::move(bias);
  return c;
}

SoftmaxClassifier SoftmaxClassifier::deserialize(const std::string& text) {
  SoftmaxClassifier m;
  try {
    const auto j = nlohmann::json::parse(text);
    m.dimension_ = j.at("dimension").get<size_t>();
    m.classes_ = j.at("classes").get<std::vector<std::string>>();
    m.weights_ = j.at("weights").get<std::vector<float>>();
    m.bias_ = j.at("bias").get<std::vector<float>>();
    m.temperature_ = j.value("temperature", 1.f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorruptStore, std::string("stored classifier is corrupt: ") + e.what());
  }
  if (m.weights_.size() != m.classes_.size() * m.dimension_ || m.bias_.size() != m.classes_.size() ||
      !(m.temperature_ > 0)) {
    throw Error(ErrorCode::kCorruptStore, "stored classifier has inconsistent sizes");
  }
  return m;
}

}  // namespace lookalike

#include "service/head_validation.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

namespace lookalike {

bool predicts(const std::vector<float>& probabilities, int label) {
  return std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin() == label;
}

double accuracy(const std::vector<ValidationPhoto>& photos) {
  double correct = 0;
  for (const auto& p : photos) correct += predicts(p.probabilities, p.label);
  return photos.empty() ? 0 : correct / static_cast<double>(photos.size());
}

std::vector<float> blend_probabilities(const std::vector<float>& head, const std::vector<float>& frozen,
                                       float weight) {
  assert(head.size() == frozen.size());
  if (weight <= 0) return head;
  // Floors keep log() finite: a probability of exactly 0 would veto its class outright.
  constexpr double kFloor = 1e-12;
  std::vector<double> logits(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    logits[c] = (1 - weight) * std::log(std::max<double>(head[c], kFloor)) +
                weight * std::log(std::max<double>(frozen[c], kFloor));
  }
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (auto& l : logits) sum += l = std::exp(l - top);
  std::vector<float> out(head.size());
  for (size_t c = 0; c < head.size(); ++c) out[c] = static_cast<float>(logits[c] / sum);
  return out;
}

BlendWeight score_blend(const std::vector<ValidationPhoto>& photos, float weight) {
  BlendWeight out{weight, 0, 0};
  size_t usable = 0;
  for (const auto& p : photos) {
    if (p.frozen.empty()) continue;
    ++usable;
    const auto blended = blend_probabilities(p.probabilities, p.frozen, weight);
    out.log_loss -= std::log(std::max(1e-12, static_cast<double>(blended[static_cast<size_t>(p.label)])));
    out.accuracy += predicts(blended, p.label);
  }
  if (usable == 0) return {weight, 0, 0};
  out.log_loss /= static_cast<double>(usable);
  out.accuracy /= static_cast<double>(usable);
  return out;
}

BlendWeight choose_blend_weight(const std::vector<ValidationPhoto>& photos) {
  if (std::none_of(photos.begin(), photos.end(), [](const auto& p) { return !p.frozen.empty(); }))
    return {0, 0, 0};
  BlendWeight best = score_blend(photos, 0);
  for (int step = 1; step <= 14; ++step) {
    const auto candidate = score_blend(photos, 0.05f * static_cast<float>(step));
    if (candidate.log_loss < best.log_loss - 1e-12) best = candidate;
  }
  return best;
}

AutoThreshold choose_min_confidence(const std::vector<ValidationPhoto>& photos) {
  AutoThreshold best;
  if (photos.empty()) return best;
  best.precision_at_12 = -1;
  for (int step = 0; step < 20; ++step) {
    const float t = 0.05f * static_cast<float>(step);
    double sum = 0;
    for (const auto& p : photos) {
      const float confidence = *std::max_element(p.probabilities.begin(), p.probabilities.end());
      sum += confidence >= t ? static_cast<double>(predicts(p.probabilities, p.label))
                             : p.unrestricted_precision;
    }
    const double mean = sum / static_cast<double>(photos.size());
    const bool nearer_default = std::abs(t - 0.5f) < std::abs(best.min_confidence - 0.5f);
    if (mean > best.precision_at_12 + 1e-12 ||
        (std::abs(mean - best.precision_at_12) <= 1e-12 && nearer_default)) {
      best = {t, mean};
    }
  }
  return best;
}

std::vector<double> neighbour_precision(const cv::Mat& queries, const std::vector<int>& query_labels,
                                        const cv::Mat& pool, const std::vector<int>& pool_labels, size_t k) {
  assert(queries.rows == static_cast<int>(query_labels.size()));
  assert(pool.rows == static_cast<int>(pool_labels.size()));
  std::vector<double> out(query_labels.size(), 0.0);
  if (pool.empty() || queries.empty() || k == 0) return out;
  const cv::Mat similarity = queries * pool.t();
  std::vector<int> order(static_cast<size_t>(pool.rows));
  const size_t take = std::min(k, order.size());
  for (int q = 0; q < similarity.rows; ++q) {
    const float* row = similarity.ptr<float>(q);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(take), order.end(),
                      [row](int a, int b) { return row[a] > row[b]; });
    size_t same = 0;
    for (size_t i = 0; i < take; ++i) same += pool_labels[static_cast<size_t>(order[i])] == query_labels[q];
    out[static_cast<size_t>(q)] = static_cast<double>(same) / static_cast<double>(k);
  }
  return out;
}

}  // namespace lookalike

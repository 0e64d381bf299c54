// How a freshly trained head is judged on its own validation split (photos it never trained
// on), before it may serve: how much weight the frozen recipe's probe gets in the category
// prediction, and the confidence below which `auto` search does better searching every category
// than the predicted one. Pure functions of the validation figures, so that the choices are
// testable without training anything.
#pragma once

#include <cstddef>
#include <vector>

#include <opencv2/core.hpp>

namespace lookalike {

struct ValidationPhoto {
  int label = 0;                      // true class
  std::vector<float> probabilities;   // the head's, over its classes (temperature applied)
  std::vector<float> frozen;          // the frozen probe's over the same classes; may be empty
  double unrestricted_precision = 0;  // category precision of its 12 nearest training photos
};

struct AutoThreshold {
  float min_confidence = 0.5f;
  double precision_at_12 = 0;  // mean category precision at 12 of `auto` search at that threshold
};

// Whether the most probable class (the first of equals) is `label`.
bool predicts(const std::vector<float>& probabilities, int label);

// Fraction of the photos whose `probabilities` predict their label (0 for none).
double accuracy(const std::vector<ValidationPhoto>& photos);

// Log-linear pooling of two distributions over the same classes:
// softmax((1 - weight) log head + weight log frozen). Weight 0 returns `head`.
std::vector<float> blend_probabilities(const std::vector<float>& head, const std::vector<float>& frozen,
                                       float weight);

struct BlendWeight {
  float weight = 0;     // of the frozen probe
  double log_loss = 0;  // mean negative log-likelihood of the true classes at that weight
  double accuracy = 0;  // of the blended prediction
};

// Log-loss and accuracy of the blend at `weight` over the photos that have frozen probabilities.
BlendWeight score_blend(const std::vector<ValidationPhoto>& photos, float weight);

// The frozen probe's weight w in {0, 0.05, ..., 0.7} minimising the mean negative log-likelihood
// of the photos' true classes under blend_probabilities(head, frozen, w). The log-likelihood is
// chosen over accuracy because it is smooth: on a few hundred photos accuracy moves in steps of
// several tenths of a point. The head and the probe see different layers (mixed7 maps against
// GeM of mixed5..9), so they err on different photos (issue 5: +1.1..1.6 points on held-out
// queries at w 0.1..0.4). Photos without frozen probabilities are left out; none gives weight 0.
BlendWeight choose_blend_weight(const std::vector<ValidationPhoto>& photos);

// The threshold t in {0, 0.05, ..., 0.95} that maximises the mean over the photos of
// (confidence >= t ? [prediction correct] : unrestricted_precision): a confident search within the
// predicted category returns 12 photos of it, a fallback returns the unrestricted neighbours.
// Ties go to the value nearest 0.5, the default; no photos gives 0.5.
AutoThreshold choose_min_confidence(const std::vector<ValidationPhoto>& photos);

// For each row of `queries` (L2-normalised, CV_32F), the fraction of its k nearest rows of
// `pool` (inner product) whose label equals the query's. Labels are per row.
std::vector<double> neighbour_precision(const cv::Mat& queries, const std::vector<int>& query_labels,
                                        const cv::Mat& pool, const std::vector<int>& pool_labels, size_t k);

}  // namespace lookalike

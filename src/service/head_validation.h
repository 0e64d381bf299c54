// How a freshly trained head is judged on its own validation split (photos it never trained
// on), before it may serve: the confidence below which `auto` search does better searching every
// category than the predicted one. Pure functions of the validation figures, so that the
// choice is testable without training anything.
#pragma once

#include <cstddef>
#include <vector>

#include <opencv2/core.hpp>

namespace lookalike {

struct ValidationPhoto {
  int label = 0;                      // true class
  std::vector<float> probabilities;   // the head's, over its classes (temperature applied)
  double unrestricted_precision = 0;  // category precision of its 12 nearest training photos
};

struct AutoThreshold {
  float min_confidence = 0.5f;
  double precision_at_12 = 0;  // mean category precision at 12 of `auto` search at that threshold
};

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

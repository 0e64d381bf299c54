// The ways a shopper's photo of a product differs from the shop's own photo, applied to a
// catalog photo to measure whether search finds the very item again (instance retrieval).
// The recipe is fixed and documented (docs/quality.md); draws come from a caller's seeded
// generator, so a run is reproducible.
#pragma once

#include <random>
#include <string>

#include <opencv2/core.hpp>

namespace lookalike {

struct AlterationRecipe {
  double min_crop_area = 0.75, max_crop_area = 0.90;  // kept fraction of the area, random place
  double max_aspect_change = 0.15;                    // crop aspect ratio within 1 ± this
  double scale = 1.6;                                 // the crop is rescaled by this
  double max_rotation_degrees = 5;                    // uniform in ± this, borders replicated
  double max_brightness = 0.10;                       // pixel values shifted by ± this × 255
  double max_contrast = 0.10;                         // scaled around the mean by 1 ± this
  double mirror_probability = 0.5;
  int min_jpeg_quality = 50, max_jpeg_quality = 80;
};

// RGB CV_8UC3 (any size, at least 8x8) -> the altered photo as JPEG bytes, as an upload would be.
std::string alter_photo(const cv::Mat& rgb, const AlterationRecipe& recipe, std::mt19937& rng);

}  // namespace lookalike

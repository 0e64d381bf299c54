// The colour of the product in a catalog-style photo, for the colour figures of `eval`: the
// mean CIE L*a*b* colour of the pixels that are not backdrop. Shops shoot products on a plain
// backdrop, so the backdrop is taken as the median colour of the image border and every pixel
// within kBackdropDeltaE of it is left out; when less than kMinProductFraction of the image
// remains (the product fills the frame), every pixel counts.
#pragma once

#include <opencv2/core.hpp>

namespace lookalike {

inline constexpr float kBackdropDeltaE = 12.0f;
inline constexpr double kMinProductFraction = 0.10;

struct LabColour {
  float l = 0, a = 0, b = 0;  // L* 0..100, a* and b* about -128..127 (D65)
};

// RGB CV_8UC3, any size (measured on a copy at most 128 pixels on its longer side).
LabColour product_colour(const cv::Mat& rgb);

// CIE76 colour difference: Euclidean distance in L*a*b*; about 2.3 is just noticeable.
float delta_e76(const LabColour& x, const LabColour& y);

}  // namespace lookalike

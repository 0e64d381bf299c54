// The colour of the product in a catalog-style photo, for the colour figures of `eval` and the
// colour re-ranking of search. Shops shoot products on a plain backdrop, so the backdrop is
// taken as the median colour of the image border; the product is the convex hull of the
// pixels more than kBackdropDeltaE from it (backdrop-coloured pixels inside the hull count: a
// white shirt on a white backdrop), everything outside the hull is left out. When the hull
// covers less than kMinProductFraction of the image, every pixel counts. A model's skin, hair
// and other garments inside the hull count too: the colours are those of the shot's subject.
// product_colour is the mean CIE L*a*b* colour of those pixels.
#pragma once

#include <string>
#include <vector>

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

// The product's dominant colours, the per-item colour descriptor that search re-ranks by
// (`color_weight`): up to kDominantColours rows of kColourRowValues floats, row-major
// {share, L*, a*, b*}, shares summing to 1, largest first. The same product pixels as
// product_colour (backdrop left out), clustered with k-means in L*a*b* from a fixed seed, so
// one photo always gives the same signature. A mean colour alone would make a red-and-white
// stripe pink; three colours keep a print's parts apart at 64 bytes per item.
inline constexpr size_t kDominantColours = 3;
inline constexpr size_t kColourRowValues = 4;
std::vector<float> dominant_colours(const cv::Mat& rgb);

// Whether `signature` is one dominant_colours could have made: 1..kDominantColours rows of
// finite values with shares in (0, 1] and L* within 0..100. Stored signatures are checked before use.
bool valid_colour_signature(const std::vector<float>& signature);

// Earth mover's distance between two signatures with CIE76 as the ground distance (cv::EMD):
// the least colour difference, weighted by share, that turns one product's colours into the
// other's. Identical signatures give 0; one-colour signatures give their delta_e76.
float colour_distance(const std::vector<float>& x, const std::vector<float>& y);

// A colour distance on the 0..1 scale search blends with the CNN similarity: 1 for the same
// colours, falling linearly to 0 at kColourDistanceRange (about the distance between navy and
// olive; a white and a black product are 100 apart).
inline constexpr float kColourDistanceRange = 50.0f;
float colour_similarity(float distance);

// "#rrggbb": the sRGB colour of a L*a*b* one, clipped to the sRGB gamut (for showing swatches).
std::string srgb_hex(const LabColour& colour);

}  // namespace lookalike

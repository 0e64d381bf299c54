// The product's colour leaves the backdrop out, and a frame-filling product counts whole.
#include "image/product_colour.h"

#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

// sRGB (255, 0, 0) in CIE L*a*b* (D65): L 53.2, a 80.1, b 67.2.
constexpr LabColour kRed{53.24f, 80.09f, 67.20f};

TEST(ProductColour, AProductOnAWhiteBackdropHasItsOwnColour) {
  cv::Mat photo(200, 160, CV_8UC3, cv::Scalar(250, 250, 250));
  cv::rectangle(photo, cv::Rect(40, 50, 80, 100), cv::Scalar(255, 0, 0), cv::FILLED);  // RGB red
  EXPECT_LT(delta_e76(product_colour(photo), kRed), 3.0f);
}

TEST(ProductColour, AGreyBackdropIsLeftOutToo) {
  cv::Mat photo(120, 120, CV_8UC3, cv::Scalar(120, 120, 120));
  cv::circle(photo, {60, 60}, 35, cv::Scalar(255, 0, 0), cv::FILLED);
  EXPECT_LT(delta_e76(product_colour(photo), kRed), 5.0f);
}

// A white shirt on a white backdrop, outlined by a thin dark seam, over dark trousers: the
// shirt counts, not only the trousers and the outline (which the backdrop rule alone keeps).
TEST(ProductColour, AWhiteProductOnAWhiteBackdropIsWhite) {
  cv::Mat photo(200, 200, CV_8UC3, cv::Scalar(245, 245, 245));
  cv::rectangle(photo, cv::Rect(40, 20, 120, 110), cv::Scalar(60, 40, 30), 3);
  cv::rectangle(photo, cv::Rect(40, 130, 120, 50), cv::Scalar(30, 30, 40), cv::FILLED);
  EXPECT_GT(product_colour(photo).l, 60.0f);
  const auto signature = dominant_colours(photo);
  EXPECT_GT(signature[1], 90.0f) << "the largest share is the white shirt";
  EXPECT_GT(signature[0], 0.5f);
}

TEST(ProductColour, AFrameFillingProductCountsEveryPixel) {
  const cv::Mat photo(50, 50, CV_8UC3, cv::Scalar(255, 0, 0));
  EXPECT_LT(delta_e76(product_colour(photo), kRed), 1.0f);
}

TEST(ProductColour, DistanceIsEuclideanInLab) {
  EXPECT_FLOAT_EQ(delta_e76(kRed, kRed), 0.0f);
  EXPECT_NEAR(delta_e76({100, 0, 0}, {0, 0, 0}), 100.0f, 1e-4);
  EXPECT_NEAR(delta_e76({50, 3, 4}, {50, 0, 0}), 5.0f, 1e-5);
}

// Lab of a dominant_colours row.
LabColour row_colour(const std::vector<float>& signature, size_t row) {
  const float* r = &signature[row * kColourRowValues];
  return {r[1], r[2], r[3]};
}

TEST(DominantColours, AStripedProductKeepsBothColoursWithTheirShares) {
  cv::Mat photo(200, 200, CV_8UC3, cv::Scalar(250, 250, 250));
  // 100 x 120 product: three red stripes of 20 rows, two blue ones, on a white backdrop.
  for (int stripe = 0; stripe < 5; ++stripe) {
    const cv::Scalar colour = stripe % 2 == 0 ? cv::Scalar(255, 0, 0) : cv::Scalar(0, 0, 255);
    cv::rectangle(photo, cv::Rect(50, 40 + 24 * stripe, 100, 24), colour, cv::FILLED);
  }
  const auto signature = dominant_colours(photo);
  ASSERT_TRUE(valid_colour_signature(signature));
  ASSERT_GE(signature.size() / kColourRowValues, 2u);
  EXPECT_LT(delta_e76(row_colour(signature, 0), kRed), 5.0f);  // the larger share first
  EXPECT_NEAR(signature[0], 0.6f, 0.05f);
  const LabColour blue{32.30f, 79.19f, -107.86f};
  EXPECT_LT(delta_e76(row_colour(signature, 1), blue), 8.0f);
  EXPECT_NEAR(signature[kColourRowValues], 0.4f, 0.05f);
}

TEST(DominantColours, TheSamePhotoAlwaysGivesTheSameSignature) {
  cv::Mat photo(160, 160, CV_8UC3);
  cv::randu(photo, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::theRNG() = cv::RNG(7);
  const auto first = dominant_colours(photo);
  const uint64_t caller_state = cv::theRNG().state;
  EXPECT_EQ(dominant_colours(photo), first);
  EXPECT_EQ(cv::theRNG().state, caller_state) << "the caller's random stream is left as it was";
}

TEST(DominantColours, ATinyImageGivesAsManyColoursAsItHasPixels) {
  const cv::Mat photo(1, 2, CV_8UC3, cv::Scalar(10, 200, 30));
  const auto signature = dominant_colours(photo);
  EXPECT_TRUE(valid_colour_signature(signature));
  EXPECT_THROW(dominant_colours(cv::Mat()), Error);
}

TEST(ColourDistance, IsZeroForTheSameColoursAndDeltaEForSingleColours) {
  const std::vector<float> red{1, kRed.l, kRed.a, kRed.b};
  const std::vector<float> white{1, 100, 0, 0};
  EXPECT_NEAR(colour_distance(red, red), 0.0f, 1e-4);
  EXPECT_NEAR(colour_distance(red, white), delta_e76(kRed, {100, 0, 0}), 1e-3);
  EXPECT_FLOAT_EQ(colour_similarity(0), 1.0f);
  EXPECT_FLOAT_EQ(colour_similarity(kColourDistanceRange / 2), 0.5f);
  EXPECT_FLOAT_EQ(colour_similarity(200), 0.0f);
}

TEST(ColourDistance, MovesOnlyTheShareThatDiffers) {
  // Half red, half white against all red: half the mass travels red -> white.
  const std::vector<float> half{0.5f, kRed.l, kRed.a, kRed.b, 0.5f, 100, 0, 0};
  const std::vector<float> red{1, kRed.l, kRed.a, kRed.b};
  EXPECT_NEAR(colour_distance(half, red), 0.5f * delta_e76(kRed, {100, 0, 0}), 1e-2);
}

TEST(ColourDistance, RefusesWhatIsNotASignature) {
  const std::vector<float> red{1, kRed.l, kRed.a, kRed.b};
  EXPECT_FALSE(valid_colour_signature({}));
  EXPECT_FALSE(valid_colour_signature({1, 50, 0}));                     // not whole rows
  EXPECT_FALSE(valid_colour_signature({0.5f, 50, 0, 0}));               // shares sum to 0.5
  EXPECT_FALSE(valid_colour_signature({1, 150, 0, 0}));                 // L* beyond 100
  EXPECT_FALSE(valid_colour_signature({1, std::nanf(""), 0, 0}));       // not finite
  EXPECT_FALSE(valid_colour_signature(std::vector<float>(16, 0.25f)));  // four rows
  EXPECT_THROW(colour_distance(red, {1, 50, 0}), Error);
}

}  // namespace
}  // namespace lookalike

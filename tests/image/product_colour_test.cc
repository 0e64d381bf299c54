// The product's colour leaves the backdrop out, and a frame-filling product counts whole.
#include "image/product_colour.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

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

TEST(ProductColour, AFrameFillingProductCountsEveryPixel) {
  const cv::Mat photo(50, 50, CV_8UC3, cv::Scalar(255, 0, 0));
  EXPECT_LT(delta_e76(product_colour(photo), kRed), 1.0f);
}

TEST(ProductColour, DistanceIsEuclideanInLab) {
  EXPECT_FLOAT_EQ(delta_e76(kRed, kRed), 0.0f);
  EXPECT_NEAR(delta_e76({100, 0, 0}, {0, 0, 0}), 100.0f, 1e-4);
  EXPECT_NEAR(delta_e76({50, 3, 4}, {50, 0, 0}), 5.0f, 1e-5);
}

}  // namespace
}  // namespace lookalike

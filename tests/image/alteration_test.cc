// Alterations are reproducible from a seed, stay within the documented recipe, and are uploads
// the decoder takes.
#include "image/alteration.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "image/image_decoder.h"

namespace lookalike {
namespace {

cv::Mat gradient(int width, int height) {
  cv::Mat rgb(height, width, CV_8UC3);
  for (int r = 0; r < height; ++r)
    for (int c = 0; c < width; ++c)
      rgb.at<cv::Vec3b>(r, c) = {static_cast<uchar>(c * 255 / width), static_cast<uchar>(r * 255 / height),
                                 90};
  return rgb;
}

TEST(Alteration, TheSameSeedGivesTheSamePhotoAndAnotherSeedAnother) {
  const cv::Mat photo = gradient(200, 300);
  std::mt19937 a(1), b(1), c(2);
  const std::string first = alter_photo(photo, {}, a);
  EXPECT_EQ(first, alter_photo(photo, {}, b));
  EXPECT_NE(first, alter_photo(photo, {}, c));
}

TEST(Alteration, TheResultIsAJpegOfTheCroppedAndRescaledSize) {
  const cv::Mat photo = gradient(200, 300);
  const AlterationRecipe recipe;
  std::mt19937 rng(5);
  for (int i = 0; i < 20; ++i) {
    const auto decoded = decode_image(alter_photo(photo, recipe, rng));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->format, ImageFormat::kJpeg);
    const double area = static_cast<double>(decoded->rgb.cols) * decoded->rgb.rows /
                        (recipe.scale * recipe.scale * photo.cols * photo.rows);
    EXPECT_GE(area, recipe.min_crop_area - 0.03);
    EXPECT_LE(area, recipe.max_crop_area + 0.03);
  }
}

TEST(Alteration, BrightnessAndContrastStayWithinTheRecipe) {
  const cv::Mat grey(64, 64, CV_8UC3, cv::Scalar(128, 128, 128));
  AlterationRecipe recipe;
  recipe.min_jpeg_quality = recipe.max_jpeg_quality = 95;
  std::mt19937 rng(9);
  double lowest = 255, highest = 0;
  for (int i = 0; i < 40; ++i) {
    const auto decoded = decode_image(alter_photo(grey, recipe, rng));
    ASSERT_TRUE(decoded.has_value());
    const double mean = cv::mean(decoded->rgb)[0];
    lowest = std::min(lowest, mean);
    highest = std::max(highest, mean);
  }
  EXPECT_GE(lowest, 128 - 0.1 * 255 - 2);
  EXPECT_LE(highest, 128 + 0.1 * 255 + 2);
  EXPECT_GT(highest - lowest, 10);  // it does vary
}

TEST(Alteration, ATinyOrGreyImageIsRefused) {
  std::mt19937 rng(1);
  EXPECT_THROW(alter_photo(cv::Mat(4, 4, CV_8UC3), {}, rng), Error);
  EXPECT_THROW(alter_photo(cv::Mat(40, 40, CV_8UC1), {}, rng), Error);
}

}  // namespace
}  // namespace lookalike

#include "image/alteration.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

double uniform(std::mt19937& rng, double lo, double hi) {
  return std::uniform_real_distribution<>(lo, hi)(rng);
}

cv::Rect random_crop(cv::Size size, const AlterationRecipe& recipe, std::mt19937& rng) {
  const double area = uniform(rng, recipe.min_crop_area, recipe.max_crop_area);
  const double aspect = uniform(rng, 1 - recipe.max_aspect_change, 1 + recipe.max_aspect_change);
  const int w =
      std::clamp(static_cast<int>(std::round(size.width * std::sqrt(area * aspect))), 1, size.width);
  const int h =
      std::clamp(static_cast<int>(std::round(size.height * std::sqrt(area / aspect))), 1, size.height);
  const int x = std::uniform_int_distribution<>(0, size.width - w)(rng);
  const int y = std::uniform_int_distribution<>(0, size.height - h)(rng);
  return {x, y, w, h};
}

cv::Mat rotate(const cv::Mat& image, double degrees) {
  const cv::Point2f centre(static_cast<float>(image.cols) / 2, static_cast<float>(image.rows) / 2);
  cv::Mat rotated;
  cv::warpAffine(image, rotated, cv::getRotationMatrix2D(centre, degrees, 1.0), image.size(),
                 cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return rotated;
}

}  // namespace

std::string alter_photo(const cv::Mat& rgb, const AlterationRecipe& recipe, std::mt19937& rng) {
  if (rgb.type() != CV_8UC3 || rgb.cols < 8 || rgb.rows < 8)
    throw Error(ErrorCode::kInvalidArgument, "alter_photo needs an RGB image of at least 8x8 pixels");
  // Every draw happens in a fixed order whatever the photo, so a seed names the same alterations.
  const cv::Rect crop = random_crop(rgb.size(), recipe, rng);
  const double degrees = uniform(rng, -recipe.max_rotation_degrees, recipe.max_rotation_degrees);
  const double brightness = uniform(rng, -recipe.max_brightness, recipe.max_brightness) * 255;
  const double contrast = uniform(rng, 1 - recipe.max_contrast, 1 + recipe.max_contrast);
  const bool mirror = uniform(rng, 0, 1) < recipe.mirror_probability;
  const int quality = std::uniform_int_distribution<>(recipe.min_jpeg_quality, recipe.max_jpeg_quality)(rng);

  cv::Mat image;
  cv::resize(rgb(crop), image, cv::Size(), recipe.scale, recipe.scale,
             recipe.scale >= 1 ? cv::INTER_CUBIC : cv::INTER_AREA);
  image = rotate(image, degrees);
  const cv::Scalar mean = cv::mean(image);
  const double grey = (mean[0] + mean[1] + mean[2]) / 3;
  // out = contrast * (in - grey) + grey + brightness, saturated to 0..255.
  image.convertTo(image, CV_8UC3, contrast, (1 - contrast) * grey + brightness);
  if (mirror) cv::flip(image, image, 1);
  cv::Mat bgr;
  cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, quality});
  return std::string(jpeg.begin(), jpeg.end());
}

}  // namespace lookalike

// Copies of a product shot (resized, re-compressed, cropped 5%, mirrored) are told from other
// products photographed the same way, on the sample catalog's real photos.
#include "image/copy_fingerprint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "image/image_decoder.h"
#include "support/test_support.h"

namespace lookalike {
namespace {

cv::Mat sample_photo(const std::string& category, const std::string& file) {
  const auto path = std::filesystem::path(testing::dataset_dir()) / category / file;
  return decode_image_or_throw(testing::read_bytes(path)).rgb;
}

// Through JPEG at `quality`, as a copy re-published elsewhere would be.
cv::Mat recompressed(const cv::Mat& rgb, int quality) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> bytes;
  cv::imencode(".jpg", bgr, bytes, {cv::IMWRITE_JPEG_QUALITY, quality});
  return decode_image_or_throw(std::string(bytes.begin(), bytes.end())).rgb;
}

CopyComparison compare(const cv::Mat& a, const cv::Mat& b) {
  return compare_copies(copy_fingerprint(a), copy_fingerprint(b));
}

TEST(CopyFingerprint, ResizedRecompressedCroppedAndMirroredCopiesAreCopies) {
  LOOKALIKE_REQUIRE_DATASET();
  for (const auto& [category, file] : std::vector<std::pair<std::string, std::string>>{
           {"coat", "101.jpg"}, {"dress", "763.jpg"}, {"hood", "82.jpg"}, {"shirts", "739.jpg"}}) {
    SCOPED_TRACE(category + "/" + file);
    const cv::Mat photo = sample_photo(category, file);
    const CopyComparison itself = compare(photo, photo);
    EXPECT_TRUE(is_copy(itself));
    EXPECT_NEAR(itself.correlation, 1.0f, 1e-4);
    cv::Mat half, mirrored;
    cv::resize(photo, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
    EXPECT_TRUE(is_copy(compare(photo, recompressed(half, 90)))) << "half size";
    EXPECT_TRUE(is_copy(compare(photo, recompressed(photo, 55)))) << "JPEG quality 55";
    const cv::Rect crop(photo.cols / 40, photo.rows / 40, photo.cols * 95 / 100, photo.rows * 95 / 100);
    EXPECT_TRUE(is_copy(compare(recompressed(photo(crop).clone(), 90), photo))) << "5% crop";
    cv::flip(photo, mirrored, 1);
    const CopyComparison mirror = compare(photo, recompressed(mirrored, 90));
    EXPECT_TRUE(is_copy(mirror)) << "mirror image";
    EXPECT_TRUE(mirror.mirrored);
  }
}

// Pairs the CNN descriptors put closest (docs/quality.md): the same pose and backdrop, another
// product (a pocket, another colour, other straps).
TEST(CopyFingerprint, OtherProductsShotTheSameWayAreNotCopies) {
  LOOKALIKE_REQUIRE_DATASET();
  for (const auto& [category, a, b] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"shirts", "739.jpg", "747.jpg"},
                                                                      {"hood", "82.jpg", "209.jpg"},
                                                                      {"dress", "763.jpg", "161.jpg"},
                                                                      {"hood", "726.jpg", "729.jpg"}}) {
    SCOPED_TRACE(category + ": " + a + " ~ " + b);
    EXPECT_FALSE(is_copy(compare(sample_photo(category, a), sample_photo(category, b))));
  }
}

TEST(CopyFingerprint, ADifferentColourOfTheSameShotIsNotACopy) {
  cv::Mat navy(150, 125, CV_8UC3, cv::Scalar(250, 250, 250)), black;
  cv::rectangle(navy, cv::Rect(30, 30, 65, 100), cv::Scalar(25, 30, 70), cv::FILLED);
  black = navy.clone();
  cv::rectangle(black, cv::Rect(30, 30, 65, 100), cv::Scalar(15, 15, 15), cv::FILLED);
  EXPECT_FALSE(is_copy(compare(navy, black)));
  EXPECT_TRUE(is_copy(compare(navy, navy)));
}

TEST(CopyFingerprint, TinyOrNonRgbImagesAreRefused) {
  EXPECT_THROW(copy_fingerprint(cv::Mat(4, 40, CV_8UC3, cv::Scalar::all(0))), std::invalid_argument);
  EXPECT_THROW(copy_fingerprint(cv::Mat(40, 40, CV_8UC1, cv::Scalar::all(0))), std::invalid_argument);
  // A flat photo has nothing to align by, and is a copy of an equally flat one only.
  const cv::Mat grey(40, 40, CV_8UC3, cv::Scalar::all(128)), white(40, 40, CV_8UC3, cv::Scalar::all(255));
  EXPECT_FALSE(is_copy(compare(grey, white)));
}

}  // namespace
}  // namespace lookalike

#include "image/preprocess.h"

#include <gtest/gtest.h>

namespace lookalike {
namespace {

TEST(ResizeAlignCorners, CornersMapOntoCorners) {
  cv::Mat src(3, 4, CV_32FC1);
  for (int i = 0; i < 12; ++i) src.at<float>(i / 4, i % 4) = static_cast<float>(i * i);
  const cv::Mat dst = resize_bilinear_align_corners(src, 9, 7);
  EXPECT_EQ(dst.size(), cv::Size(9, 7));
  EXPECT_FLOAT_EQ(dst.at<float>(0, 0), src.at<float>(0, 0));
  EXPECT_FLOAT_EQ(dst.at<float>(0, 8), src.at<float>(0, 3));
  EXPECT_FLOAT_EQ(dst.at<float>(6, 0), src.at<float>(2, 0));
  EXPECT_FLOAT_EQ(dst.at<float>(6, 8), src.at<float>(2, 3));
}

TEST(ResizeAlignCorners, InterpolatesBilinearly) {
  cv::Mat src = (cv::Mat_<float>(2, 2) << 0, 10, 20, 30);
  const cv::Mat dst = resize_bilinear_align_corners(src, 3, 3);
  EXPECT_FLOAT_EQ(dst.at<float>(0, 1), 5);
  EXPECT_FLOAT_EQ(dst.at<float>(1, 0), 10);
  EXPECT_FLOAT_EQ(dst.at<float>(1, 1), 15);
  EXPECT_FLOAT_EQ(dst.at<float>(2, 1), 25);
}

TEST(ResizeAlignCorners, KeepsChannelsApart) {
  cv::Mat src(2, 2, CV_32FC3, cv::Scalar(1, 2, 3));
  const cv::Mat dst = resize_bilinear_align_corners(src, 5, 4);
  for (int y = 0; y < dst.rows; ++y) {
    for (int x = 0; x < dst.cols; ++x) {
      const auto v = dst.at<cv::Vec3f>(y, x);
      EXPECT_FLOAT_EQ(v[0], 1);
      EXPECT_FLOAT_EQ(v[1], 2);
      EXPECT_FLOAT_EQ(v[2], 3);
    }
  }
}

TEST(ResizeAlignCorners, UpscalesSinglePixel) {
  cv::Mat src(1, 1, CV_32FC1, cv::Scalar(7));
  const cv::Mat dst = resize_bilinear_align_corners(src, 3, 2);
  EXPECT_FLOAT_EQ(dst.at<float>(1, 2), 7);
}

}  // namespace
}  // namespace lookalike

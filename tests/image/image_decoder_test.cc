#include "image/image_decoder.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "image/image_probe.h"

namespace lookalike {
namespace {

// A 40x30 image: left half pure red, right half pure blue (RGB).
cv::Mat red_blue_rgb() {
  cv::Mat rgb(30, 40, CV_8UC3, cv::Scalar(255, 0, 0));
  rgb(cv::Rect(20, 0, 20, 30)).setTo(cv::Scalar(0, 0, 255));
  return rgb;
}

std::string encode(const cv::Mat& rgb, const std::string& ext, std::vector<int> params = {}) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, bgr, buf, params));
  return std::string(buf.begin(), buf.end());
}

int write_to_string(GifFileType* gif, const GifByteType* data, int n) {
  static_cast<std::string*>(gif->UserData)
      ->append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  return n;
}

// 4x2 GIF, palette {red, green, transparent}; the last row is transparent.
std::string tiny_gif() {
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, write_to_string, &error);
  GifColorType colours[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 0}, {0, 0, 0}};
  ColorMapObject* map = GifMakeMapObject(4, colours);
  EGifPutScreenDesc(gif, 4, 2, 2, 0, map);
  GraphicsControlBlock gcb{};
  gcb.TransparentColor = 2;
  GifByteType ext[4];
  const size_t len = EGifGCBToExtension(&gcb, ext);
  EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext);
  EGifPutImageDesc(gif, 0, 0, 4, 2, false, nullptr);
  GifPixelType row0[4] = {0, 0, 1, 1}, row1[4] = {2, 2, 2, 2};
  EGifPutLine(gif, row0, 4);
  EGifPutLine(gif, row1, 4);
  EGifCloseFile(gif, &error);
  GifFreeMapObject(map);
  return out;
}

TEST(ImageDecoder, DecodesJpegPngWebpToRgb) {
  for (const std::string ext : {".png", ".jpg", ".webp"}) {
    const auto decoded = decode_image(encode(red_blue_rgb(), ext));
    ASSERT_TRUE(decoded) << ext << ": " << decoded.error().message;
    EXPECT_EQ(decoded->rgb.type(), CV_8UC3);
    EXPECT_EQ(decoded->rgb.cols, 40);
    EXPECT_EQ(decoded->rgb.rows, 30);
    const auto left = decoded->rgb.at<cv::Vec3b>(15, 5), right = decoded->rgb.at<cv::Vec3b>(15, 35);
    EXPECT_GT(left[0], 200) << ext << " left pixel must be red in RGB order";
    EXPECT_LT(left[2], 60) << ext;
    EXPECT_GT(right[2], 200) << ext << " right pixel must be blue";
  }
}

TEST(ImageDecoder, DecodesFirstGifFrameWithTransparencyAsWhite) {
  const auto decoded = decode_image(tiny_gif());
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->format, ImageFormat::kGif);
  ASSERT_EQ(decoded->rgb.size(), cv::Size(4, 2));
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 0));
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(0, 3), cv::Vec3b(0, 255, 0));
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 255, 255));
}

TEST(ImageDecoder, RefusesEmptyAndNonImages) {
  EXPECT_EQ(decode_image("").error().kind, DecodeErrorKind::kEmpty);
  const auto text = decode_image("name,price\nshirt,12\n");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().kind, DecodeErrorKind::kNotAnImage);
  EXPECT_NE(text.error().message.find("not an image"), std::string::npos);
}

TEST(ImageDecoder, RefusesTruncatedJpeg) {
  const std::string jpeg = encode(red_blue_rgb(), ".jpg");
  const auto truncated = decode_image(jpeg.substr(0, jpeg.size() * 2 / 3));
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().kind, DecodeErrorKind::kCorrupt);
  EXPECT_NE(truncated.error().message.find("truncated"), std::string::npos);
}

TEST(ImageDecoder, RefusesCorruptPngBody) {
  std::string png = encode(red_blue_rgb(), ".png");
  for (size_t i = 40; i < png.size() - 20; ++i) png[i] = static_cast<char>(png[i] ^ 0x5A);
  const auto decoded = decode_image(png);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kCorrupt);
}

void put_be32(std::string& s, uint32_t v) {
  for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  put_be32(png, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_be32(png, static_cast<uint32_t>(
                    crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

// A real, valid 30000x30000 grayscale PNG (all black), streamed through zlib so the test never
// holds the 900 MB of pixels; it compresses to a few megabytes.
std::string huge_png(uint32_t side) {
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_be32(ihdr, side);
  put_be32(ihdr, side);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);
  put_chunk(png, "IHDR", ihdr);
  z_stream z{};
  deflateInit(&z, 1);
  std::string row(side + 1, '\0'), compressed;
  std::vector<unsigned char> out(1 << 16);
  for (uint32_t y = 0; y < side; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = static_cast<uInt>(row.size());
    const int flush = y + 1 == side ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      deflate(&z, flush);
      compressed.append(reinterpret_cast<char*>(out.data()), out.size() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  put_chunk(png, "IDAT", compressed);
  put_chunk(png, "IEND", "");
  return png;
}

TEST(ImageDecoder, RefusesHugePngFromItsHeaderBeforeDecoding) {
  const std::string png = huge_png(30000);
  EXPECT_LT(png.size(), 8u << 20);  // vs 900 MB of pixels
  const ImageHeader header = probe_image(png);
  EXPECT_EQ(header.width, 30000u);
  EXPECT_EQ(header.height, 30000u);
  const auto decoded = decode_image(png);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kTooLarge);
  EXPECT_NE(decoded.error().message.find("30000x30000"), std::string::npos);
  try {
    decode_image_or_throw(png);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnprocessable);
  }
}

TEST(ImageDecoder, PixelLimitIsConfigurable) {
  DecodeOptions options;
  options.max_pixels = 1000;
  EXPECT_EQ(decode_image(encode(red_blue_rgb(), ".png"), options).error().kind, DecodeErrorKind::kTooLarge);
  options.max_pixels = 1200;
  EXPECT_TRUE(decode_image(encode(red_blue_rgb(), ".png"), options));
}

TEST(ImageProbe, ReadsSizesOfEveryFormat) {
  for (const std::string ext : {".png", ".jpg", ".webp"}) {
    const auto header = probe_image(encode(red_blue_rgb(), ext));
    EXPECT_EQ(header.width, 40u) << ext;
    EXPECT_EQ(header.height, 30u) << ext;
    EXPECT_TRUE(header.complete) << ext;
  }
  const auto lossless = probe_image(encode(red_blue_rgb(), ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  EXPECT_EQ(lossless.width, 40u);
  const auto gif = probe_image(tiny_gif());
  EXPECT_EQ(gif.format, ImageFormat::kGif);
  EXPECT_EQ(gif.width, 4u);
  EXPECT_EQ(gif.height, 2u);
}

TEST(ImageProbe, NeverReadsPastShortInputs) {
  const std::string jpeg = encode(red_blue_rgb(), ".jpg");
  for (size_t n = 0; n < 64; ++n) {
    const auto header = probe_image(jpeg.substr(0, n));
    EXPECT_TRUE(header.width == 0 || header.width == 40u);
  }
  EXPECT_EQ(probe_image("\x89PNG\r\n\x1a\n").width, 0u);
  EXPECT_EQ(probe_image("RIFF\0\0\0\0WEBPVP8 ").width, 0u);
}

}  // namespace
}  // namespace lookalike

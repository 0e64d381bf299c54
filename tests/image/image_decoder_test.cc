#include "image/image_decoder.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

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

// ---- GIFs assembled record by record, for the frame-size and first-frame-only tests ----

void put_le16(std::string& s, int v) {
  s.push_back(static_cast<char>(v & 0xFF));
  s.push_back(static_cast<char>((v >> 8) & 0xFF));
}

// "GIF89a", a logical screen of w x h and a global colour table (padded to a power of two >= 2).
std::string gif_screen(int w, int h, const std::vector<cv::Vec3b>& colours) {
  int bits = 1;
  while ((1u << bits) < colours.size()) ++bits;
  std::string s = "GIF89a";
  put_le16(s, w);
  put_le16(s, h);
  s.push_back(static_cast<char>(0x80 | 0x70 | (bits - 1)));
  s.push_back('\0');  // background colour
  s.push_back('\0');  // aspect ratio
  for (size_t i = 0; i < (1u << bits); ++i) {
    const cv::Vec3b c = i < colours.size() ? colours[i] : cv::Vec3b(0, 0, 0);
    s += std::string{static_cast<char>(c[0]), static_cast<char>(c[1]), static_cast<char>(c[2])};
  }
  return s;
}

// An image descriptor (no local colour table) followed by LZW data in sub-blocks.
std::string gif_frame(int left, int top, int w, int h, const std::string& lzw, int min_code_size = 2,
                      bool terminate = true) {
  std::string s = "\x2C";
  put_le16(s, left);
  put_le16(s, top);
  put_le16(s, w);
  put_le16(s, h);
  s.push_back('\0');
  s.push_back(static_cast<char>(min_code_size));
  for (size_t i = 0; i < lzw.size(); i += 255) {
    const size_t n = std::min<size_t>(255, lzw.size() - i);
    s.push_back(static_cast<char>(n));
    s += lzw.substr(i, n);
  }
  if (terminate) s.push_back('\0');
  return s;
}

std::string gif_transparency(int index) {
  return std::string("\x21\xF9\x04\x01\x00\x00", 6) + static_cast<char>(index) + std::string(1, '\0');
}

// LZW data (minimum code size 2) for `pixels` pixels of colour 0, produced exactly as giflib's
// encoder would (same code widths, a clear code whenever the table is full), but computed run
// by run: a 16000x16000 frame takes ~180 KB and a millisecond, as in the frame-bomb report.
std::string zero_pixels_lzw(uint64_t pixels) {
  std::string out;
  uint64_t word = 0;
  int state = 0, running = 6, bits = 3, max_code1 = 8;
  const auto emit = [&](int code) {
    word |= static_cast<uint64_t>(code) << state;
    state += bits;
    for (; state >= 8; state -= 8, word >>= 8) out.push_back(static_cast<char>(word & 0xFF));
    if (running >= max_code1 && code <= 4095) max_code1 = 1 << ++bits;
  };
  const auto code_of_run = [](uint64_t run) { return run == 1 ? 0 : static_cast<int>(run + 4); };
  emit(4);  // clear
  uint64_t remaining = pixels - 1, current = 1, longest = 1;
  while (remaining > 0) {
    const uint64_t extend = longest - current;
    if (remaining <= extend) {
      current += remaining;
      break;
    }
    remaining -= extend + 1;
    emit(code_of_run(longest));
    current = 1;
    if (running >= 4095) {
      emit(4);
      running = 6, bits = 3, max_code1 = 8, longest = 1;
    } else {
      ++running, ++longest;
    }
  }
  emit(code_of_run(current));
  emit(5);  // end of information
  for (; state > 0; state -= 8, word >>= 8) out.push_back(static_cast<char>(word & 0xFF));
  return out;
}

// A GIF written by giflib's own encoder; rows are given in image order and written in file
// order (interlaced: rows 0,8,16.. then 4,12.. then 2,6.. then 1,3..).
std::string encoded_gif(int screen_w, int screen_h, const std::vector<cv::Vec3b>& colours,
                        const std::vector<std::vector<GifPixelType>>& rows, bool interlaced,
                        int transparent = NO_TRANSPARENT_COLOR) {
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, write_to_string, &error);
  std::vector<GifColorType> table(256);
  for (size_t i = 0; i < colours.size(); ++i) table[i] = {colours[i][0], colours[i][1], colours[i][2]};
  ColorMapObject* map = GifMakeMapObject(256, table.data());
  EGifSetGifVersion(gif, true);
  EGifPutScreenDesc(gif, screen_w, screen_h, 8, 0, map);
  if (transparent != NO_TRANSPARENT_COLOR) {
    GraphicsControlBlock gcb{};
    gcb.TransparentColor = transparent;
    GifByteType ext[4];
    const size_t len = EGifGCBToExtension(&gcb, ext);
    EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext);
  }
  const int h = static_cast<int>(rows.size()), w = static_cast<int>(rows[0].size());
  EGifPutImageDesc(gif, 0, 0, w, h, interlaced, nullptr);
  std::vector<int> order;
  if (interlaced) {
    for (const auto& [start, step] : {std::pair{0, 8}, {4, 8}, {2, 4}, {1, 2}})
      for (int y = start; y < h; y += step) order.push_back(y);
  } else {
    for (int y = 0; y < h; ++y) order.push_back(y);
  }
  for (int y : order) {
    auto row = rows[static_cast<size_t>(y)];
    EGifPutLine(gif, row.data(), w);
  }
  EGifCloseFile(gif, &error);
  GifFreeMapObject(map);
  return out;
}

const cv::Vec3b kWhite(255, 255, 255), kRed(255, 0, 0), kGreen(0, 255, 0), kBlue(0, 0, 255);

TEST(ImageDecoder, ZeroPixelsLzwIsWhatGiflibDecodes) {
  // The hand-rolled encoder the frame-bomb tests rely on: 300x200 of colour 0 at (5,3) on a
  // 310x210 screen (table resets included: 60000 pixels need more than one 4096-code table).
  const std::string gif =
      gif_screen(310, 210, {kRed, kGreen}) + gif_frame(5, 3, 300, 200, zero_pixels_lzw(300 * 200)) + ";";
  const auto decoded = decode_image(gif);
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->rgb.size(), cv::Size(310, 210));
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(3, 5), kRed);
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(202, 304), kRed);
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(2, 5), kWhite);  // outside the frame: canvas
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(203, 304), kWhite);
  EXPECT_EQ(cv::countNonZero(decoded->rgb.reshape(1) == 255), 310 * 210 * 3 - 300 * 200 * 2);
}

TEST(ImageDecoder, RefusesGifFrameOfAbsurdSizeBeforeDecodingIt) {
  // 16x16 logical screen (passes the header probe); its first frame declares 65535x65535, a
  // 4.3 GB raster, with a few bytes of LZW data.
  const std::string gif =
      gif_screen(16, 16, {kRed, kGreen}) + gif_frame(0, 0, 65535, 65535, zero_pixels_lzw(100000)) + ";";
  ASSERT_LT(gif.size(), 1000u);
  const auto start = std::chrono::steady_clock::now();
  const auto decoded = decode_image(gif);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kTooLarge);
  EXPECT_EQ(decoded.error().message, "GIF frame 65535x65535 is 4294836225 pixels, over the limit of 40000000");
  EXPECT_LT(seconds, 0.1);
}

TEST(ImageDecoder, RefusesGifFrameBombWithRealData) {
  // The reported bomb: a 16x16 screen whose only frame is 16000x16000 of real, valid LZW data
  // (~180 KB). Before any of it is decoded.
  const std::string gif = gif_screen(16, 16, {kRed, kGreen}) +
                          gif_frame(0, 0, 16000, 16000, zero_pixels_lzw(16000ull * 16000)) + ";";
  EXPECT_LT(gif.size(), 250'000u);
  const auto start = std::chrono::steady_clock::now();
  const auto decoded = decode_image(gif);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kTooLarge);
  EXPECT_NE(decoded.error().message.find("16000x16000 is 256000000 pixels"), std::string::npos)
      << decoded.error().message;
  EXPECT_LT(seconds, 0.1);
}

TEST(ImageDecoder, GifFrameSizeHonoursTheConfiguredLimit) {
  // A real 100x100 frame on a 16x16 screen: the screen passes a 1000-pixel limit, the frame not.
  const std::vector<std::vector<GifPixelType>> rows(100, std::vector<GifPixelType>(100, 1));
  const std::string gif = encoded_gif(16, 16, {kRed, kGreen}, rows, false);
  DecodeOptions options;
  options.max_pixels = 1000;
  const auto decoded = decode_image(gif, options);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kTooLarge);
  EXPECT_EQ(decoded.error().message, "GIF frame 100x100 is 10000 pixels, over the limit of 1000");
  options.max_pixels = 10000;
  const auto allowed = decode_image(gif, options);
  ASSERT_TRUE(allowed) << allowed.error().message;
  EXPECT_EQ(allowed->rgb.size(), cv::Size(16, 16));  // clipped to the logical screen
  EXPECT_EQ(allowed->rgb.at<cv::Vec3b>(15, 15), kGreen);
  try {
    decode_image_or_throw(gif, DecodeOptions{1000});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnprocessable);
  }
}

TEST(ImageDecoder, DecodesOnlyTheFirstGifFrameFast) {
  // First frame 16x16 (real data), then a real 16000x16000 frame: only the first is decoded.
  const std::string first = gif_frame(0, 0, 16, 16, zero_pixels_lzw(256));
  const std::string gif = gif_screen(16, 16, {kBlue, kGreen}) + first +
                          gif_frame(0, 0, 16000, 16000, zero_pixels_lzw(16000ull * 16000)) + ";";
  const auto start = std::chrono::steady_clock::now();
  const auto decoded = decode_image(gif);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->rgb.size(), cv::Size(16, 16));
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(0, 0), kBlue);
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(15, 15), kBlue);
  EXPECT_LT(seconds, 0.1);
  // Nothing after the first frame is read: a second frame of absurd size with truncated data,
  // or plain garbage, does not matter.
  for (const std::string& rest : {gif_frame(0, 0, 65535, 65535, "\x04\x01", 2, false), std::string("\xFF\x00junk", 6)}) {
    const auto tail = decode_image(gif_screen(16, 16, {kBlue, kGreen}) + first + rest);
    ASSERT_TRUE(tail) << tail.error().message;
    EXPECT_EQ(tail->rgb.at<cv::Vec3b>(8, 8), kBlue);
  }
}

TEST(ImageDecoder, DecodesInterlacedGifRowsInImageOrder) {
  // 3x11 interlaced, row y in colour y: rows come in file order 0,8 / 4 / 2,6,10 / 1,3,5,7,9.
  std::vector<cv::Vec3b> colours;
  std::vector<std::vector<GifPixelType>> rows;
  for (int y = 0; y < 11; ++y) {
    colours.emplace_back(static_cast<uchar>(20 * y), static_cast<uchar>(255 - 20 * y), static_cast<uchar>(7 * y));
    rows.push_back(std::vector<GifPixelType>(3, static_cast<GifPixelType>(y)));
  }
  rows[5][1] = 0;  // one pixel out of line, to catch column mistakes too
  for (bool interlaced : {true, false}) {
    const auto decoded = decode_image(encoded_gif(3, 11, colours, rows, interlaced));
    ASSERT_TRUE(decoded) << decoded.error().message;
    ASSERT_EQ(decoded->rgb.size(), cv::Size(3, 11));
    for (int y = 0; y < 11; ++y) {
      for (int x = 0; x < 3; ++x) {
        EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(y, x), colours[rows[static_cast<size_t>(y)][static_cast<size_t>(x)]])
            << "interlaced " << interlaced << " row " << y << " column " << x;
      }
    }
  }
}

TEST(ImageDecoder, GifTransparencyComesFromTheControlBlockBeforeTheFirstFrame) {
  const std::vector<std::vector<GifPixelType>> rows = {{0, 1, 2}, {2, 1, 0}};
  const std::vector<cv::Vec3b> colours = {kRed, kGreen, kBlue};
  const auto decoded = decode_image(encoded_gif(3, 2, colours, rows, true, 1));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(0, 0), kRed);
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(0, 1), kWhite);  // transparent: the white canvas
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(1, 1), kWhite);
  EXPECT_EQ(decoded->rgb.at<cv::Vec3b>(1, 0), kBlue);
  // A control block that comes after the first frame belongs to the second one.
  const std::string later = gif_screen(2, 1, {kRed, kGreen}) + gif_frame(0, 0, 2, 1, zero_pixels_lzw(2)) +
                            gif_transparency(0) + gif_frame(0, 0, 2, 1, zero_pixels_lzw(2)) + ";";
  const auto opaque = decode_image(later);
  ASSERT_TRUE(opaque) << opaque.error().message;
  EXPECT_EQ(opaque->rgb.at<cv::Vec3b>(0, 1), kRed);
  // One before it, with a comment in between, applies.
  const std::string before = gif_screen(2, 1, {kRed, kGreen}) + gif_transparency(0) +
                             std::string("\x21\xFE\x02hi\x00", 6) + gif_frame(0, 0, 2, 1, zero_pixels_lzw(2)) +
                             ";";
  const auto clear = decode_image(before);
  ASSERT_TRUE(clear) << clear.error().message;
  EXPECT_EQ(clear->rgb.at<cv::Vec3b>(0, 1), kWhite);
}

TEST(ImageDecoder, RefusesBrokenGifs) {
  const std::string screen = gif_screen(16, 16, {kRed, kGreen});
  const std::string frame = gif_frame(0, 0, 16, 16, zero_pixels_lzw(256));
  for (const std::string& gif : {
           screen + ";",                                   // no image at all
           screen,                                         // ends after the screen
           screen + frame.substr(0, frame.size() / 2),     // first frame cut short
           screen + gif_frame(0, 0, 16, 16, zero_pixels_lzw(100)) + ";",  // too little data
           screen + gif_frame(0, 0, 0, 16, "") + ";",      // zero-width frame
           screen + "\x21\xF9\x04",                        // cut inside an extension
           screen + "\x99",                                // unknown record
           screen + frame.substr(0, 10),                   // descriptor without its LZW code size
       }) {
    const auto decoded = decode_image(gif);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kCorrupt) << decoded.error().message;
    EXPECT_EQ(decoded.error().message.rfind("GIF data is corrupt: ", 0), 0u) << decoded.error().message;
  }
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

TEST(ImageDecoder, NeverHandsWebpBytesToOpenCvsDicomDecoder) {
  // Found by fuzz/image_decode_fuzz.cc (fuzz/corpus/image_decode/regression-webp-dicom): a
  // RIFF/WEBP/VP8L header libwebp rejects, and "DICM" at offset 128. OpenCV's WebP decoder
  // declined it, its DICOM decoder (GDCM) took it and failed an assert: abort() of the process.
  const std::string bytes(
      "\x52\x49\x46\x46\x2c\x00\x00\x00\x57\x45\x42\x50\x56\x50\x38\x4c"
      "\x1f\x00\x00\x00\x2f\x01\xff\x02\x40\xff\x00\xd8\x02\x29\xff\xff"
      "\xd0\xff\xff\xff\xd0\xff\xff\xd0\xff\xff\xff\xd0\xff\xd2\xff\xff"
      "\xd2\xff\xd0\xff\xd0\xff\xd2\xff\xd0\xff\xd0\xff\xff\xd2\xff\x26"
      "\xd2\xff\xd0\xff\xd0\xff\xd2\xff\xd2\xff\xff\xd6\xff\xd6\xff\xff"
      "\xff\xd2\xff\xd2\xff\xff\xd6\xff\xd6\xff\xff\xd0\xff\xff\xd2\xff"
      "\xd0\xff\xd0\xff\xff\xd2\xff\xff\xd0\xff\xff\xd0\xff\xff\xff\xd0"
      "\xff\xff\xd2\xff\xd0\xff\xd0\xff\xd2\xff\xd0\xff\xff\xd2\xff\xff"
      "\x44\x49\x43\x4d\xd7\xff",
      134);
  ASSERT_EQ(probe_image(bytes).format, ImageFormat::kWebp);
  const auto decoded = decode_image(bytes);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().kind, DecodeErrorKind::kCorrupt);
  EXPECT_NE(decoded.error().message.find("DICOM"), std::string::npos) << decoded.error().message;
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

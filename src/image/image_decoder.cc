#include "image/image_decoder.h"

#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace lookalike {
namespace {

DecodeError corrupt(ImageFormat format, const std::string& why) {
  return {DecodeErrorKind::kCorrupt, std::string(image_format_name(format)) + " data is corrupt: " + why};
}

struct GifSource {
  std::string_view bytes;
  size_t offset = 0;
};

int read_gif_bytes(GifFileType* gif, GifByteType* out, int wanted) {
  auto* source = static_cast<GifSource*>(gif->UserData);
  const size_t n = std::min<size_t>(static_cast<size_t>(wanted), source->bytes.size() - source->offset);
  std::memcpy(out, source->bytes.data() + source->offset, n);
  source->offset += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = 0;
    DGifCloseFile(gif, &error);
  }
};

// First frame composited on a white canvas of the logical screen size; transparent pixels
// stay white, which is what a shopper sees on a product page.
std::expected<cv::Mat, DecodeError> decode_gif(std::string_view bytes) {
  GifSource source{bytes};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&source, read_gif_bytes, &error));
  if (!gif) return std::unexpected(corrupt(ImageFormat::kGif, GifErrorString(error)));
  if (DGifSlurp(gif.get()) != GIF_OK || gif->ImageCount < 1) {
    return std::unexpected(corrupt(ImageFormat::kGif, GifErrorString(gif->Error)));
  }
  const SavedImage& frame = gif->SavedImages[0];
  const ColorMapObject* palette = frame.ImageDesc.ColorMap ? frame.ImageDesc.ColorMap : gif->SColorMap;
  if (!palette) return std::unexpected(corrupt(ImageFormat::kGif, "no colour map"));
  int transparent = NO_TRANSPARENT_COLOR;
  GraphicsControlBlock gcb;
  if (DGifSavedExtensionToGCB(gif.get(), 0, &gcb) == GIF_OK) transparent = gcb.TransparentColor;
  cv::Mat rgb(std::max(1, gif->SHeight), std::max(1, gif->SWidth), CV_8UC3, cv::Scalar(255, 255, 255));
  const auto& d = frame.ImageDesc;
  for (int y = 0; y < d.Height; ++y) {
    for (int x = 0; x < d.Width; ++x) {
      const int cx = d.Left + x, cy = d.Top + y;
      if (cx < 0 || cy < 0 || cx >= rgb.cols || cy >= rgb.rows) continue;
      const int index = frame.RasterBits[y * d.Width + x];
      if (index == transparent || index >= palette->ColorCount) continue;
      const GifColorType c = palette->Colors[index];
      rgb.at<cv::Vec3b>(cy, cx) = cv::Vec3b(c.Red, c.Green, c.Blue);
    }
  }
  return rgb;
}

std::expected<cv::Mat, DecodeError> decode_with_opencv(std::string_view bytes, ImageFormat format) {
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(encoded, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return std::unexpected(corrupt(format, e.what()));
  }
  if (bgr.empty()) return std::unexpected(corrupt(format, "the decoder rejected it"));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace

std::expected<DecodedImage, DecodeError> decode_image(std::string_view bytes, const DecodeOptions& options) {
  if (bytes.empty())
    return std::unexpected(DecodeError{DecodeErrorKind::kEmpty, "the file is empty (0 bytes)"});
  const ImageHeader header = probe_image(bytes);
  if (header.format == ImageFormat::kUnknown) {
    return std::unexpected(
        DecodeError{DecodeErrorKind::kNotAnImage, "not an image: expected JPEG, PNG, WebP or GIF data"});
  }
  if (header.width == 0 || header.height == 0) {
    return std::unexpected(corrupt(header.format, "the header holds no image size"));
  }
  const uint64_t pixels = uint64_t{header.width} * header.height;
  if (pixels > options.max_pixels) {
    return std::unexpected(DecodeError{DecodeErrorKind::kTooLarge,
                                       std::to_string(header.width) + "x" + std::to_string(header.height) +
                                           " is " + std::to_string(pixels) + " pixels, over the limit of " +
                                           std::to_string(options.max_pixels)});
  }
  if (!header.complete) return std::unexpected(corrupt(header.format, "truncated (no end-of-image marker)"));
  auto rgb =
      header.format == ImageFormat::kGif ? decode_gif(bytes) : decode_with_opencv(bytes, header.format);
  if (!rgb) return std::unexpected(rgb.error());
  return DecodedImage{std::move(*rgb), header.format};
}

DecodedImage decode_image_or_throw(std::string_view bytes, const DecodeOptions& options) {
  auto decoded = decode_image(bytes, options);
  if (decoded) return std::move(*decoded);
  const DecodeError& e = decoded.error();
  switch (e.kind) {
    case DecodeErrorKind::kEmpty:
    case DecodeErrorKind::kNotAnImage:
      throw Error(ErrorCode::kUnsupportedMedia, e.message);
    case DecodeErrorKind::kTooLarge:
    case DecodeErrorKind::kCorrupt:
      throw Error(ErrorCode::kUnprocessable, e.message);
  }
  throw Error(ErrorCode::kInternal, e.message);
}

}  // namespace lookalike

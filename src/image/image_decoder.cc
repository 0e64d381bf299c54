#include "image/image_decoder.h"

#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>
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

// giflib's message for an error code. Some failures (a read that comes up short inside the image
// header, a frame DGifSlurp found too large) set no code, and GifErrorString returns NULL for
// those: building a std::string from it threw std::logic_error out of decode_image.
std::string gif_error(int code) {
  if (code == 0) return "truncated or malformed data";
  const char* text = GifErrorString(code);
  return text ? text : "giflib error " + std::to_string(code);
}

// Draws one decoded row of the frame onto the canvas, clipped to it.
void composite_gif_row(cv::Mat& canvas, const GifImageDesc& d, int y, const GifPixelType* row,
                       const ColorMapObject& palette, int transparent) {
  const int cy = d.Top + y;
  if (cy < 0 || cy >= canvas.rows) return;
  const int x_end = std::min(d.Width, canvas.cols - d.Left);
  auto* out = canvas.ptr<cv::Vec3b>(cy);
  for (int x = std::max(0, -d.Left); x < x_end; ++x) {
    const int index = row[x];
    if (index == transparent || index >= palette.ColorCount) continue;
    const GifColorType c = palette.Colors[index];
    out[d.Left + x] = cv::Vec3b(c.Red, c.Green, c.Blue);
  }
}

// First frame composited on a white canvas of the logical screen size; transparent pixels
// stay white, which is what a shopper sees on a product page.
//
// Reads the file record by record rather than with DGifSlurp: DGifSlurp decodes every frame
// into a raster of the frame's own size, and only the logical screen was checked against the
// pixel limit, so a tiny screen with one 16000x16000 frame (190 KB of LZW) cost seconds and
// hundreds of megabytes. Here the first frame's size is checked before any of its data is
// decoded, it is decoded one row at a time (memory: the canvas plus one row), and nothing
// after it is read.
std::expected<cv::Mat, DecodeError> decode_gif(std::string_view bytes, uint64_t max_pixels) {
  GifSource source{bytes};
  int error = 0;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&source, read_gif_bytes, &error));
  if (!gif) return std::unexpected(corrupt(ImageFormat::kGif, gif_error(error)));
  int transparent = NO_TRANSPARENT_COLOR;  // from the graphics control block before the frame
  for (;;) {
    GifRecordType type = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif.get(), &type) != GIF_OK)
      return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
    if (type == TERMINATE_RECORD_TYPE) {
      return std::unexpected(corrupt(ImageFormat::kGif, "the file ends before its first image"));
    }
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;  // block[0] is its length
      if (DGifGetExtension(gif.get(), &code, &block) != GIF_OK)
        return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
      if (code == GRAPHICS_EXT_FUNC_CODE && block) {
        GraphicsControlBlock gcb{};
        transparent = DGifExtensionToGCB(block[0], block + 1, &gcb) == GIF_OK ? gcb.TransparentColor
                                                                             : NO_TRANSPARENT_COLOR;
      } else if (code == PLAINTEXT_EXT_FUNC_CODE) {
        transparent = NO_TRANSPARENT_COLOR;  // a control block applies to the next graphic only
      }
      while (block) {
        if (DGifGetExtensionNext(gif.get(), &block) != GIF_OK)
          return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
      }
      continue;
    }
    // IMAGE_DESC_RECORD_TYPE (anything else was refused by DGifGetRecordType): the first frame.
    if (DGifGetImageDesc(gif.get()) != GIF_OK)
      return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
    const GifImageDesc& d = gif->Image;
    if (d.Width <= 0 || d.Height <= 0) {
      return std::unexpected(corrupt(ImageFormat::kGif, "the first frame is " + std::to_string(d.Width) + "x" +
                                                            std::to_string(d.Height)));
    }
    const uint64_t pixels = uint64_t(d.Width) * uint64_t(d.Height);
    if (pixels > max_pixels) {
      return std::unexpected(DecodeError{DecodeErrorKind::kTooLarge,
                                         "GIF frame " + std::to_string(d.Width) + "x" + std::to_string(d.Height) +
                                             " is " + std::to_string(pixels) + " pixels, over the limit of " +
                                             std::to_string(max_pixels)});
    }
    const ColorMapObject* palette = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (!palette) return std::unexpected(corrupt(ImageFormat::kGif, "no colour map"));
    cv::Mat rgb(std::max(1, gif->SHeight), std::max(1, gif->SWidth), CV_8UC3, cv::Scalar(255, 255, 255));
    std::vector<GifPixelType> row(static_cast<size_t>(d.Width));
    const auto decode_row = [&](int y) {
      if (DGifGetLine(gif.get(), row.data(), d.Width) != GIF_OK) return false;
      composite_gif_row(rgb, d, y, row.data(), *palette, transparent);
      return true;
    };
    if (d.Interlace) {  // four passes: every 8th row from 0, every 8th from 4, every 4th from 2, odd rows
      constexpr int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass) {
        for (int y = kStart[pass]; y < d.Height; y += kStep[pass]) {
          if (!decode_row(y)) return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
        }
      }
    } else {
      for (int y = 0; y < d.Height; ++y) {
        if (!decode_row(y)) return std::unexpected(corrupt(ImageFormat::kGif, gif_error(gif->Error)));
      }
    }
    return rgb;  // later frames are never read
  }
}

// cv::imdecode chooses its decoder from the bytes, not from our probe: it asks each decoder of its
// list in turn. In OpenCV 4.6 the JPEG and PNG decoders come early and always claim their
// signatures. The WebP decoder claims only what libwebp's header parser accepts; when it declines,
// every later decoder looks for its magic at offset 0, which "RIFF" rules out, except DICOM
// (GDCM), which looks for "DICM" at offset 128, and GDCM aborts the process on a malformed file
// (a failed assert). Found by fuzz/image_decode_fuzz.cc; such bytes are refused here.
bool opencv_could_take_for_dicom(std::string_view bytes) {
  return bytes.size() >= 132 && bytes.substr(128, 4) == "DICM";
}

std::expected<cv::Mat, DecodeError> decode_with_opencv(std::string_view bytes, ImageFormat format) {
  if (format == ImageFormat::kWebp && opencv_could_take_for_dicom(bytes)) {
    return std::unexpected(corrupt(format, "it carries a DICOM signature at offset 128, which OpenCV "
                                           "would decode as DICOM"));
  }
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
      header.format == ImageFormat::kGif ? decode_gif(bytes, options.max_pixels)
                                          : decode_with_opencv(bytes, header.format);
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

// Turns untrusted bytes (uploads, catalog files) into an 8-bit RGB image, or a typed reason
// why not. JPEG, PNG and WebP go through OpenCV imgcodecs; GIF (first frame) through giflib,
// because OpenCV 4.6 has no GIF decoder.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

#include "image/image_probe.h"

namespace lookalike {

struct DecodeOptions {
  uint64_t max_pixels = 40'000'000;  // refused from the header, before any pixel is decoded
};

enum class DecodeErrorKind {
  kEmpty,       // zero bytes
  kNotAnImage,  // no known signature
  kTooLarge,    // width * height over max_pixels
  kCorrupt,     // known format, but the data is truncated or invalid
};

struct DecodeError {
  DecodeErrorKind kind;
  std::string message;
};

struct DecodedImage {
  cv::Mat rgb;  // CV_8UC3, RGB order, owns its pixels
  ImageFormat format = ImageFormat::kUnknown;
};

std::expected<DecodedImage, DecodeError> decode_image(std::string_view bytes,
                                                      const DecodeOptions& options = {});

// Throws lookalike::Error with the matching code (415 / 422 family); for request paths.
DecodedImage decode_image_or_throw(std::string_view bytes, const DecodeOptions& options = {});

}  // namespace lookalike

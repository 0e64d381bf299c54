// Reads an image's format and size from its header, without decoding pixels, so that a
// 30000x30000 PNG is refused before a gigabyte is allocated for it.
#pragma once

#include <cstdint>
#include <string_view>

namespace lookalike {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kGif };

const char* image_format_name(ImageFormat format);
// File extension for stored copies: ".jpg", ".png", ".webp", ".gif" (".bin" when unknown).
const char* image_format_extension(ImageFormat format);

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  uint32_t width = 0;  // 0 when the header is recognised but truncated or malformed
  uint32_t height = 0;
  bool complete = true;  // JPEG only: false when no end-of-image marker follows the scan
};

// Never throws, never reads past bytes.size(); fuzzed in fuzz/image_probe_fuzz.cc.
ImageHeader probe_image(std::string_view bytes);

}  // namespace lookalike

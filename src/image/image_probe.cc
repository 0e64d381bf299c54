#include "image/image_probe.h"

#include <cstring>

namespace lookalike {
namespace {

uint32_t be16(const unsigned char* p) {
  return (uint32_t{p[0]} << 8) | p[1];
}
uint32_t be32(const unsigned char* p) {
  return (be16(p) << 16) | be16(p + 2);
}
uint32_t le16(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8);
}
uint32_t le24(const unsigned char* p) {
  return le16(p) | (uint32_t{p[2]} << 16);
}

bool starts_with(std::string_view bytes, const char* magic) {
  const size_t n = std::strlen(magic);
  return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
}

bool is_jpeg_sof(unsigned char marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Entropy-coded data escapes 0xFF as FF 00, so FF D9 after the scan can only be the real EOI.
bool has_end_marker(const unsigned char* p, size_t from, size_t size) {
  for (size_t i = from; i + 1 < size; ++i) {
    if (p[i] == 0xFF && p[i + 1] == 0xD9) return true;
  }
  return false;
}

ImageHeader probe_jpeg(const unsigned char* p, size_t size) {
  ImageHeader header{ImageFormat::kJpeg, 0, 0, false};
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (p[pos] != 0xFF) return header;  // lost sync: malformed
    const unsigned char marker = p[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    const size_t length = be16(p + pos + 2);
    if (length < 2) return header;
    if (is_jpeg_sof(marker) && pos + 9 <= size) {
      header.height = be16(p + pos + 5);
      header.width = be16(p + pos + 7);
    }
    if (marker == 0xDA) {
      header.complete = has_end_marker(p, pos + 2 + length, size);
      return header;
    }
    pos += 2 + length;
  }
  return header;
}

ImageHeader probe_webp(const unsigned char* p, size_t size) {
  ImageHeader header{ImageFormat::kWebp, 0, 0, true};
  if (size < 30) return header;
  if (std::memcmp(p + 12, "VP8 ", 4) == 0 && p[23] == 0x9D && p[24] == 0x01 && p[25] == 0x2A) {
    header.width = le16(p + 26) & 0x3FFF;
    header.height = le16(p + 28) & 0x3FFF;
  } else if (std::memcmp(p + 12, "VP8L", 4) == 0 && p[20] == 0x2F) {
    const uint32_t bits = le16(p + 21) | (uint32_t{p[23]} << 16) | (uint32_t{p[24]} << 24);
    header.width = (bits & 0x3FFF) + 1;
    header.height = ((bits >> 14) & 0x3FFF) + 1;
  } else if (std::memcmp(p + 12, "VP8X", 4) == 0) {
    header.width = le24(p + 24) + 1;
    header.height = le24(p + 27) + 1;
  }
  return header;
}

}  // namespace

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kGif:
      return "GIF";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

const char* image_format_extension(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return ".jpg";
    case ImageFormat::kPng:
      return ".png";
    case ImageFormat::kWebp:
      return ".webp";
    case ImageFormat::kGif:
      return ".gif";
    case ImageFormat::kUnknown:
      break;
  }
  return ".bin";
}

ImageHeader probe_image(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();
  if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return probe_jpeg(p, size);
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n")) {
    ImageHeader header{ImageFormat::kPng, 0, 0, true};
    if (size >= 24 && std::memcmp(p + 12, "IHDR", 4) == 0) {
      header.width = be32(p + 16);
      header.height = be32(p + 20);
    }
    return header;
  }
  if (starts_with(bytes, "GIF87a") || starts_with(bytes, "GIF89a")) {
    ImageHeader header{ImageFormat::kGif, 0, 0, true};
    if (size >= 10) {
      header.width = le16(p + 6);
      header.height = le16(p + 8);
    }
    return header;
  }
  if (size >= 12 && starts_with(bytes, "RIFF") && std::memcmp(p + 8, "WEBP", 4) == 0)
    return probe_webp(p, size);
  return ImageHeader{};
}

}  // namespace lookalike

// libFuzzer target: the whole decoder (header probe, size limits, OpenCV for JPEG/PNG/WebP, the
// record-by-record GIF reader) on arbitrary bytes. It must return an RGB image within the pixel
// limit or a typed error, never crash, hang, read out of bounds or allocate past the limit.
// The limit is low (4 million pixels) so that legal-but-large inputs stay within libFuzzer's
// memory limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <opencv2/core.hpp>

#include "image/image_decoder.h"
#include "image/image_probe.h"

namespace {
constexpr uint64_t kMaxPixels = 4'000'000;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  cv::setNumThreads(1);  // one thread: reproducible runs, no pool started per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lookalike::DecodeOptions options;
  options.max_pixels = kMaxPixels;
  const auto decoded = lookalike::decode_image(bytes, options);
  if (decoded) {
    const cv::Mat& rgb = decoded->rgb;
    if (rgb.empty() || rgb.type() != CV_8UC3 || !rgb.isContinuous()) __builtin_trap();
    if (uint64_t(rgb.rows) * uint64_t(rgb.cols) > kMaxPixels) __builtin_trap();
    if (decoded->format != lookalike::probe_image(bytes).format) __builtin_trap();
  } else if (decoded.error().message.empty()) {
    __builtin_trap();
  }
  return 0;
}

// libFuzzer target: the image header probe and the decoder's refusal paths must never crash,
// hang or read out of bounds on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/image_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto header = lookalike::probe_image(bytes);
  if (header.format == lookalike::ImageFormat::kUnknown && (header.width != 0 || header.height != 0))
    __builtin_trap();
  return 0;
}

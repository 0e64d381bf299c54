// libFuzzer target: everything a client sends besides the image — search options JSON, the
// seed API's `setting`, numeric query parameters and base64 — must be accepted with checked
// values or refused with lookalike::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "http/request_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto q = lookalike::parse_search_options_text(text);
    if (q.k < 1 || q.k > lookalike::kMaxResults) __builtin_trap();
    if (q.crop && (q.crop->width < 1 || q.crop->height < 1)) __builtin_trap();
  } catch (const lookalike::Error&) {
  }
  try {
    const auto s = lookalike::parse_seed_setting(text);
    if (s.output_limit < 1 || s.output_limit > lookalike::kMaxResults) __builtin_trap();
  } catch (const lookalike::Error&) {
  }
  try {
    lookalike::parse_count("k", text, 1, 500);
  } catch (const lookalike::Error&) {
  }
  try {
    const auto bytes = lookalike::decode_base64(text, 1 << 16);
    if (bytes.size() > (1 << 16) + 2) __builtin_trap();
  } catch (const lookalike::Error&) {
  }
  return 0;
}

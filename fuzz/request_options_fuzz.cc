// libFuzzer target: everything a client sends besides the image — search options JSON (as the
// multipart `options` field, and as the `options` object of a JSON search body), the seed API's
// `setting`, numeric query and path parameters and base64 — must be accepted with checked
// values or refused with lookalike::Error. Every public function of http/request_options.h is
// called on each input.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "http/request_options.h"

namespace {

void check(const lookalike::QueryOptions& q) {
  if (q.k < 1 || q.k > lookalike::kMaxResults) __builtin_trap();
  if (q.min_confidence && (*q.min_confidence < 0 || *q.min_confidence > 1)) __builtin_trap();
  if (q.crop && (q.crop->width < 1 || q.crop->height < 1 || q.crop->x < 0 || q.crop->y < 0)) __builtin_trap();
  if (q.filter.price_min && q.filter.price_max && *q.filter.price_min > *q.filter.price_max) __builtin_trap();
}

// The (min, max) pairs the API passes to parse_count: k, offset, limit, a model version.
struct Range {
  size_t min, max;
};
constexpr Range kRanges[] = {{1, lookalike::kMaxResults}, {0, 1'000'000'000}, {1, 500},
                             {0, std::numeric_limits<int64_t>::max()}};
constexpr size_t kBase64Limits[] = {0, 1, 3, 10u << 20};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check(lookalike::parse_search_options_text(text));
  } catch (const lookalike::Error&) {
  }
  // The JSON search body: options arrive as an already-parsed value of any JSON type.
  const auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) {
    try {
      check(lookalike::parse_search_options(doc));
    } catch (const lookalike::Error&) {
    }
    if (doc.is_object() && doc.contains("options")) {
      try {
        check(lookalike::parse_search_options(doc["options"]));
      } catch (const lookalike::Error&) {
      }
    }
  }
  try {
    const auto s = lookalike::parse_seed_setting(text);
    if (s.output_limit < 1 || s.output_limit > lookalike::kMaxResults) __builtin_trap();
  } catch (const lookalike::Error&) {
  }
  // The first byte picks the range / the size limit; the rest is the parameter.
  const uint8_t selector = size > 0 ? data[0] : 0;
  const std::string rest = size > 0 ? text.substr(1) : text;
  for (const std::string* value : {&text, &rest}) {
    const Range r = kRanges[selector % std::size(kRanges)];
    try {
      const size_t v = lookalike::parse_count("k", *value, r.min, r.max);
      if (v < r.min || v > r.max) __builtin_trap();
    } catch (const lookalike::Error&) {
    }
  }
  for (const std::string* value : {&text, &rest}) {
    const size_t limit = value == &text ? size_t{1} << 16 : kBase64Limits[(selector >> 2) % std::size(kBase64Limits)];
    try {
      const auto bytes = lookalike::decode_base64(*value, limit);
      // decode_base64 checks the length before it knows the padding, so an unpadded input may
      // decode to up to 2 bytes over the limit (harmless, and what the API has always done).
      if (bytes.size() > limit + 2) __builtin_trap();
    } catch (const lookalike::Error&) {
    }
  }
  return 0;
}

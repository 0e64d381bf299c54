// Validation of everything a client sends besides the image: search options, the seed API's
// `setting` field, query parameters, base64 payloads. Each function either returns a fully
// checked value or throws Error(kInvalidArgument) naming the field and what was expected.
// Fuzzed in fuzz/request_options_fuzz.cc.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "service/query.h"

namespace lookalike {

constexpr size_t kMaxResults = 500;

// {"k", "category", "min_confidence", "filters": {"categories", "price": {"min","max"},
//  "attributes": {name: value}}, "crop": {"x","y","w","h"}, "color_weight"}; unknown keys are
// refused.
QueryOptions parse_search_options(const nlohmann::json& options);
// Same, from JSON text (an empty string means defaults).
QueryOptions parse_search_options_text(std::string_view text);

struct SeedSetting {
  size_t output_limit = 12;
  bool on_cnn = false;
};
// The original API's `setting` form field: {"output_limit": int 1..500, "on_cnn": bool}.
SeedSetting parse_seed_setting(std::string_view text);

// A decimal integer query parameter within [min, max].
size_t parse_count(std::string_view name, std::string_view text, size_t min, size_t max);

// A decimal number query parameter within [0, 1] ("0.5", "1", ".25").
float parse_fraction(std::string_view name, std::string_view text);

// Standard base64 (optionally a data: URL), whitespace ignored. At most max_bytes decoded.
std::string decode_base64(std::string_view text, size_t max_bytes);

}  // namespace lookalike

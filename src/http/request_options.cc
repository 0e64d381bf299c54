#include "http/request_options.h"

#include <openssl/evp.h>

#include <charconv>
#include <cmath>

#include "common/error.h"

namespace lookalike {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

json parse_object(std::string_view text, const std::string& what) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) bad(what + " is not valid JSON");
  if (!doc.is_object()) bad(what + " must be a JSON object");
  return doc;
}

int64_t integer_field(const json& j, const std::string& name, int64_t min, int64_t max) {
  if (!j.is_number_integer() && !j.is_number_unsigned()) {
    // 12.0 is accepted; 12.5, "12" and true are not. (No cast to an integer here: 1e300 does
    // not fit one, undefined behaviour found by fuzz/request_options_fuzz.cc; the range check
    // below refuses it.)
    if (!(j.is_number_float() && std::trunc(j.get<double>()) == j.get<double>())) {
      bad("'" + name + "' must be an integer");
    }
  }
  const double v = j.get<double>();
  if (v < static_cast<double>(min) || v > static_cast<double>(max)) {
    bad("'" + name + "' must be within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return static_cast<int64_t>(v);
}

double number_field(const json& j, const std::string& name) {
  if (!j.is_number()) bad("'" + name + "' must be a number");
  return j.get<double>();
}

void parse_filters(const json& f, ItemFilter& filter) {
  if (!f.is_object()) bad("'filters' must be an object");
  for (const auto& [key, value] : f.items()) {
    if (key == "categories") {
      if (!value.is_array()) bad("'filters.categories' must be an array of strings");
      for (const auto& c : value) {
        if (!c.is_string()) bad("'filters.categories' must be an array of strings");
        filter.categories.push_back(c.get<std::string>());
      }
    } else if (key == "price") {
      if (!value.is_object()) bad("'filters.price' must be an object like {\"max\": 60}");
      for (const auto& [bound, v] : value.items()) {
        if (bound == "min") {
          filter.price_min = number_field(v, "filters.price.min");
        } else if (bound == "max") {
          filter.price_max = number_field(v, "filters.price.max");
        } else {
          bad("unknown key 'filters.price." + bound + "' (expected min, max)");
        }
      }
      if (filter.price_min && filter.price_max && *filter.price_min > *filter.price_max) {
        bad("'filters.price.min' is greater than 'filters.price.max'");
      }
    } else if (key == "attributes") {
      if (!value.is_object()) bad("'filters.attributes' must be an object of name: value");
      for (const auto& [name, v] : value.items()) {
        if (v.is_object() || v.is_array() || v.is_null()) {
          bad("'filters.attributes." + name + "' must be a string, number or boolean");
        }
        filter.attributes[name] = v;
      }
    } else {
      bad("unknown key 'filters." + key + "' (expected categories, price, attributes)");
    }
  }
}

cv::Rect parse_crop(const json& c) {
  if (!c.is_object()) bad("'crop' must be an object {x, y, w, h} in source pixels");
  for (const auto& [key, value] : c.items()) {
    if (key != "x" && key != "y" && key != "w" && key != "h") bad("unknown key 'crop." + key + "'");
  }
  for (const char* key : {"x", "y", "w", "h"}) {
    if (!c.contains(key)) bad(std::string("'crop' needs '") + key + "'");
  }
  constexpr int64_t kMax = 100000;
  return cv::Rect(static_cast<int>(integer_field(c["x"], "crop.x", 0, kMax)),
                  static_cast<int>(integer_field(c["y"], "crop.y", 0, kMax)),
                  static_cast<int>(integer_field(c["w"], "crop.w", 1, kMax)),
                  static_cast<int>(integer_field(c["h"], "crop.h", 1, kMax)));
}

}  // namespace

QueryOptions parse_search_options(const json& options) {
  if (!options.is_object()) bad("'options' must be a JSON object");
  QueryOptions q;
  for (const auto& [key, value] : options.items()) {
    if (key == "k") {
      q.k = static_cast<size_t>(integer_field(value, "k", 1, kMaxResults));
    } else if (key == "category") {
      if (!value.is_string() || value.get<std::string>().empty())
        bad("'category' must be auto, all or a category name");
      q.category = value.get<std::string>();
    } else if (key == "min_confidence") {
      const double v = number_field(value, "min_confidence");
      if (v < 0 || v > 1) bad("'min_confidence' must be within 0..1");
      q.min_confidence = static_cast<float>(v);
    } else if (key == "filters") {
      parse_filters(value, q.filter);
    } else if (key == "crop") {
      q.crop = parse_crop(value);
    } else if (key == "color_weight") {
      const double v = number_field(value, "color_weight");
      if (!(v >= 0 && v <= 1)) bad("'color_weight' must be within 0..1");
      q.colour_weight = static_cast<float>(v);
    } else if (key == "collapse_duplicates") {
      if (!value.is_boolean()) bad("'collapse_duplicates' must be true or false");
      q.collapse_duplicates = value.get<bool>();
    } else {
      bad("unknown option '" + key +
          "' (expected k, category, min_confidence, filters, crop, color_weight, collapse_duplicates)");
    }
  }
  return q;
}

QueryOptions parse_search_options_text(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return QueryOptions{};
  return parse_search_options(parse_object(text, "'options'"));
}

SeedSetting parse_seed_setting(std::string_view text) {
  const json doc = parse_object(text, "'setting'");
  SeedSetting s;
  if (!doc.contains("output_limit")) bad("'setting' needs 'output_limit' (an integer 1..500)");
  if (!doc.contains("on_cnn")) bad("'setting' needs 'on_cnn' (true or false)");
  s.output_limit = static_cast<size_t>(integer_field(doc["output_limit"], "output_limit", 1, kMaxResults));
  if (!doc["on_cnn"].is_boolean()) bad("'on_cnn' must be true or false");
  s.on_cnn = doc["on_cnn"].get<bool>();
  return s;
}

size_t parse_count(std::string_view name, std::string_view text, size_t min, size_t max) {
  size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    bad("'" + std::string(name) + "' must be an integer within " + std::to_string(min) + ".." +
        std::to_string(max));
  }
  return value;
}

float parse_fraction(std::string_view name, std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(value >= 0 && value <= 1))
    bad("'" + std::string(name) + "' must be a number within 0..1");
  return static_cast<float>(value);
}

std::string decode_base64(std::string_view text, size_t max_bytes) {
  if (text.starts_with("data:")) {
    const auto comma = text.find(',');
    if (comma == std::string_view::npos || text.substr(0, comma).find(";base64") == std::string_view::npos) {
      bad("'image_base64' data URL must be base64-encoded");
    }
    text.remove_prefix(comma + 1);
  }
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
      bad("'image_base64' holds a character outside the base64 alphabet");
    }
    clean.push_back(c);
  }
  if (clean.empty()) bad("'image_base64' is empty");
  if (clean.size() % 4 != 0) bad("'image_base64' length is not a multiple of 4");
  if (clean.size() / 4 * 3 > max_bytes + 2) {
    throw Error(ErrorCode::kPayloadTooLarge,
                "'image_base64' decodes to more than " + std::to_string(max_bytes) + " bytes");
  }
  std::string out(clean.size() / 4 * 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(clean.data()), static_cast<int>(clean.size()));
  if (n < 0) bad("'image_base64' is not valid base64");
  size_t padding = 0;
  if (clean.ends_with("==")) {
    padding = 2;
  } else if (clean.ends_with("=")) {
    padding = 1;
  }
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

}  // namespace lookalike

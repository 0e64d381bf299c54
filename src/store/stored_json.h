// Internal to the store layer: JSON text as the stores keep it (item attributes, a model
// version's info, evaluations).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace lookalike {

// The object stored as `text`; an empty object when the text is not one (edited by hand,
// written by an older version), so that a damaged field never hides the item or version.
inline nlohmann::json stored_json_object(std::string_view text) {
  if (text == "{}") return nlohmann::json::object();  // most items' attributes: no parse
  auto value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return value.is_object() ? value : nlohmann::json::object();
}

}  // namespace lookalike

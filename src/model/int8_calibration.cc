#include "model/int8_calibration.h"

#include <cmath>

#include "common/error.h"

namespace lookalike {
namespace {
constexpr const char* kFormat = "lookalike-int8-calibration/1";
}

nlohmann::json Int8Calibration::to_json() const {
  return {{"format", kFormat}, {"model", model}, {"images", images}, {"max", max}};
}

Int8Calibration Int8Calibration::from_json(const nlohmann::json& doc) {
  Int8Calibration c;
  try {
    if (doc.at("format").get<std::string>() != kFormat)
      throw Error(ErrorCode::kInvalidArgument, std::string("int8 calibration: format is not ") + kFormat);
    c.model = doc.at("model").get<std::string>();
    c.images = doc.at("images").get<size_t>();
    c.max = doc.at("max").get<std::map<std::string, float>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("int8 calibration: ") + e.what());
  }
  for (const auto& [name, value] : c.max) {
    if (!std::isfinite(value) || value < 0)
      throw Error(ErrorCode::kInvalidArgument, "int8 calibration: bad maximum for " + name);
  }
  return c;
}

}  // namespace lookalike

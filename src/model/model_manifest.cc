#include "model/model_manifest.h"

#include <filesystem>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

namespace lookalike {
namespace {

using nlohmann::json;

template <typename T>
T field(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key))
    throw Error(ErrorCode::kInvalidArgument, where + ": missing field '" + key + "'");
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // get<int>() converts 1e300 (undefined behaviour) and 4294967304 (wraps to 8) unchecked.
    const json& value = object.at(key);
    if (!value.is_number())
      throw Error(ErrorCode::kInvalidArgument, where + ": field '" + key + "' has the wrong type");
    const double v = value.get<double>();
    if (!(v >= static_cast<double>(std::numeric_limits<T>::min()) &&
          v <= static_cast<double>(std::numeric_limits<T>::max()))) {
      throw Error(ErrorCode::kInvalidArgument, where + ": field '" + key + "' is out of range");
    }
  }
  try {
    return object.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(ErrorCode::kInvalidArgument, where + ": field '" + key + "' has the wrong type");
  }
}

ResizePolicy parse_resize(const std::string& name, const std::string& where) {
  if (name == "stretch_bilinear_align_corners") return ResizePolicy::kStretchBilinearAlignCorners;
  if (name == "stretch_bilinear") return ResizePolicy::kStretchBilinear;
  throw Error(ErrorCode::kInvalidArgument, where + ": unknown resize policy '" + name + "'");
}

}  // namespace

std::string_view engine_name(InferenceEngine engine) {
  return engine == InferenceEngine::kDnnl ? "dnnl" : "opencv";
}

InferenceEngine parse_engine(std::string_view name) {
  if (name == "opencv") return InferenceEngine::kOpenCv;
  if (name == "dnnl") return InferenceEngine::kDnnl;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown inference engine '" + std::string(name) + "' (opencv or dnnl)");
}

ModelManifest ModelManifest::load(const std::string& path) {
  const std::string text = read_file(path, 1 << 20);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw Error(ErrorCode::kInvalidArgument, path + ": not valid JSON: " + e.what());
  }
  ModelManifest m;
  m.name = field<std::string>(doc, "name", path);
  const auto folder = std::filesystem::path(path).parent_path();
  m.onnx_path = (folder / field<std::string>(doc, "onnx", path)).string();
  const json input = field<json>(doc, "input", path);
  const std::string where = path + " input";
  m.input_name = field<std::string>(input, "name", where);
  m.width = field<int>(input, "width", where);
  m.height = field<int>(input, "height", where);
  if (m.width < 8 || m.height < 8 || m.width > 4096 || m.height > 4096) {
    throw Error(ErrorCode::kInvalidArgument, where + ": width/height must be within 8..4096");
  }
  const std::string colour = field<std::string>(input, "colour", where);
  if (colour != "rgb" && colour != "bgr")
    throw Error(ErrorCode::kInvalidArgument, where + ": colour must be rgb or bgr");
  m.bgr = colour == "bgr";
  m.scale = field<float>(input, "scale", where);
  m.mean = field<std::array<float, 3>>(input, "mean", where);
  m.std = field<std::array<float, 3>>(input, "std", where);
  for (float s : m.std) {
    if (!(s > 0)) throw Error(ErrorCode::kInvalidArgument, where + ": std values must be > 0");
  }
  m.resize = parse_resize(field<std::string>(input, "resize", where), where);
  m.outputs = field<std::vector<std::string>>(doc, "outputs", path);
  if (m.outputs.empty()) throw Error(ErrorCode::kInvalidArgument, path + ": 'outputs' is empty");
  if (doc.contains("descriptor")) m.gem_p = field<float>(doc["descriptor"], "gem_p", path + " descriptor");
  if (!(m.gem_p >= 1.f && m.gem_p <= 16.f))
    throw Error(ErrorCode::kInvalidArgument, path + ": gem_p must be in 1..16");
  if (doc.contains("engine")) {
    try {
      m.engine = parse_engine(field<std::string>(doc, "engine", path));
    } catch (const Error& e) {
      throw Error(ErrorCode::kInvalidArgument, path + ": " + e.what());
    }
  }
  if (doc.contains("classes")) m.classes = field<std::vector<std::string>>(doc, "classes", path);
  return m;
}

}  // namespace lookalike

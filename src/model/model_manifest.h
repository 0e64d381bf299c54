// The JSON manifest that sits next to an ONNX file and says how to feed it and what to read
// from it. Written by tools/model/convert.js; any CNN described this way can be loaded.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace lookalike {

enum class ResizePolicy { kStretchBilinearAlignCorners, kStretchBilinear };

// Which library runs the network's forward (model/inference_network.h). Both read the same ONNX.
enum class InferenceEngine { kOpenCv, kDnnl };

// "opencv" / "dnnl", as the manifest's "engine" field spells them.
std::string_view engine_name(InferenceEngine engine);
// Throws Error(kInvalidArgument) naming the accepted values.
InferenceEngine parse_engine(std::string_view name);

struct ModelManifest {
  std::string name;
  std::string onnx_path;  // absolute, resolved against the manifest's folder
  std::string input_name;
  int width = 0;
  int height = 0;
  bool bgr = false;  // colour order the network expects
  float scale = 1.f;
  std::array<float, 3> mean{0, 0, 0};
  std::array<float, 3> std{1, 1, 1};
  ResizePolicy resize = ResizePolicy::kStretchBilinearAlignCorners;
  std::vector<std::string> outputs;  // graph outputs, in the order the descriptor uses them
  float gem_p = 3.f;                 // descriptor: GeM exponent (1 = average pooling)
  std::vector<std::string> classes;  // optional: labels of a classification output
  // Optional "engine" field; absent means the default, oneDNN (faster: docs/benchmarks.md).
  // Every pool built from one manifest (embedders, extractors) runs the same engine; `--engine`
  // overrides it for a whole run.
  InferenceEngine engine = InferenceEngine::kDnnl;

  // Throws Error(kNotFound / kInvalidArgument) naming the file and the offending field.
  static ModelManifest load(const std::string& path);
};

}  // namespace lookalike

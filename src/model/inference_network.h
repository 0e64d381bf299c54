// One converted CNN (its ONNX file and manifest) loaded once and run many times. One interface,
// one implementation per engine beside it:
//   OpenCvNetwork (model/opencv_network.h)  OpenCV DNN, fp32, NCHW
//   DnnlNetwork   (model/dnnl_network.h)    oneDNN, fp32 or calibrated int8, layouts of
//                                           oneDNN's choosing (the default engine)
//
// Layout at the API, whatever the engine does inside: a blob is a 4-D CV_32F cv::Mat in NCHW
// order (batch, channels, height, width), dense and row-major. forward() returns one 4-D NCHW
// CV_32F Mat per requested tensor; each owns its data, so the next forward never overwrites it.
//
// Thread safety: an InferenceNetwork is not thread-safe (each keeps per-forward state). Use one
// per thread, leased from a NetworkPool; distinct networks may run at the same time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "model/int8_calibration.h"
#include "model/model_manifest.h"

namespace lookalike {

// RGB CV_8UC3 image -> CV_32FC3 network input of the manifest's size, colour order and scaling.
cv::Mat preprocess_image(const cv::Mat& rgb, const ModelManifest& manifest);

// Preprocessed CV_32FC3 images (all of one size) -> one NCHW blob [n, 3, height, width].
cv::Mat make_nchw_blob(const std::vector<cv::Mat>& inputs);

class InferenceNetwork {
 public:
  virtual ~InferenceNetwork() = default;

  virtual const ModelManifest& manifest() const = 0;
  virtual InferenceEngine engine() const = 0;

  // Preprocessed CV_32FC3 inputs -> one NCHW blob (make_nchw_blob).
  cv::Mat make_blob(const std::vector<cv::Mat>& inputs) const { return make_nchw_blob(inputs); }

  // Runs the graph on an NCHW blob (any batch size >= 1); returns one NCHW blob per name, in
  // order. Throws Error when a name is not a tensor of the graph or the engine fails.
  virtual std::vector<cv::Mat> forward(const cv::Mat& blob, const std::vector<std::string>& names) = 0;
};

// The arithmetic of a network's forwards. int8 runs only on oneDNN and needs a calibration
// (model/int8_calibration.h); kAuto picks per CPU (resolve_precision).
enum class Precision { kAuto, kFp32, kInt8 };

// "auto" / "fp32" / "int8", as `--precision` spells them.
std::string_view precision_name(Precision precision);
// Throws Error(kInvalidArgument) naming the accepted values.
Precision parse_precision(std::string_view name);

// kAuto -> kInt8 on the oneDNN engine when the CPU multiplies 8-bit values natively (VNNI:
// without it oneDNN's int8 kernels must keep 7-bit weights and gain less), kFp32 otherwise.
// Throws Error(kInvalidArgument) when int8 is asked of the OpenCV engine.
Precision resolve_precision(Precision asked, InferenceEngine engine);

// How a network is built beyond its manifest; every network of one pool gets the same.
struct NetworkOptions {
  std::optional<Int8Calibration> int8;  // set: int8 forwards (oneDNN only); unset: fp32
};

// The network the manifest's `engine` names, loaded from its ONNX file.
// Throws Error(kNotFound) when the file is missing, Error(kInvalidArgument) when the engine
// cannot run the graph (an unsupported op, or int8 asked of OpenCV), Error(kInternal) otherwise.
std::unique_ptr<InferenceNetwork> make_inference_network(const ModelManifest& manifest,
                                                         const NetworkOptions& options = {});

}  // namespace lookalike

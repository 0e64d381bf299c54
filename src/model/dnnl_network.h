// The oneDNN engine: runs a converted CNN's ONNX graph (model/onnx_graph.h) on oneDNN's CPU
// primitives, fp32. The same ONNX file OpenCvNetwork reads; results agree within float rounding.
//
// Built once, run many times: the ONNX is read at construction, and the primitives for one
// (batch size, input size, thread count, requested outputs) are built at the first forward of
// that shape and kept. Convolutions carry their BatchNorm (folded into the weights) and ReLU
// (a post-op); weights are reordered once per layout and shared by every shape.
//
// Layouts: every primitive is created with format_tag::any, so oneDNN picks its blocked or
// channels-last layouts; activations stay in them from one primitive to the next, and only the
// requested outputs are reordered to NCHW. Convolutions use the direct algorithm (never
// Winograd), so the result stays within float rounding of the reference.
//
// Threads: Debian's libdnnl2 is built with OpenMP (DNNL_CPU_RUNTIME OMP). A forward runs on
// `DnnlOptions::threads` OpenMP threads, 0 meaning cv::getNumThreads(), which `--threads` sets:
// one setting drives both engines. The count is set for the calling thread only.
//
// Thread safety: not thread-safe (primitives share the network's buffers). Use one DnnlNetwork
// per thread, leased from a NetworkPool; distinct DnnlNetworks may run at the same time.
// Networks of the same ONNX file and calibration in one process share the parsed graph and the
// prepared weights (read-only once built), so each further inference slot costs its
// activation buffers only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/inference_network.h"
#include "model/int8_calibration.h"

namespace lookalike {

struct DnnlOptions {
  int threads = 0;  // OpenMP threads per forward; 0 = cv::getNumThreads()
  // When set, forwards run in int8 (static quantization): every Conv (each must end in a ReLU)
  // takes u8 activations (zero point 0) and s8 weights scaled per output channel, and writes
  // u8; pooling and concat stay in u8. Tensors joined by a concat or a pooling share one
  // scale, 255 / the largest calibrated maximum among them. Requested outputs come back
  // dequantized to fp32 NCHW, as in fp32. The input blob is quantized to u8 too, so it must be
  // non-negative (the converted InceptionV3 takes [0, 1]). Without VNNI the weights keep 7 bits
  // (see quantize_conv in the .cc).
  std::optional<Int8Calibration> int8;
};

class DnnlNetwork final : public InferenceNetwork {
 public:
  // Throws Error(kNotFound) for a missing file, Error(kInvalidArgument) for an op or attribute
  // the engine does not run (naming it), Error(kInternal) when oneDNN fails.
  explicit DnnlNetwork(ModelManifest manifest, DnnlOptions options = {});
  ~DnnlNetwork() override;
  DnnlNetwork(const DnnlNetwork&) = delete;
  DnnlNetwork& operator=(const DnnlNetwork&) = delete;

  const ModelManifest& manifest() const override;
  InferenceEngine engine() const override { return InferenceEngine::kDnnl; }
  std::vector<cv::Mat> forward(const cv::Mat& blob, const std::vector<std::string>& names) override;

  // Runs fp32 forwards over `blobs` (NCHW, any batch size) and records every tensor's largest
  // value: the calibration an int8 DnnlNetwork of the same model is built with.
  Int8Calibration calibrate(const std::vector<cv::Mat>& blobs);

  // The instruction set oneDNN dispatches to on this CPU ("avx2", "avx512_core_vnni", ...).
  static std::string cpu_isa();
  // Whether that instruction set multiplies 8-bit values into 32-bit sums (VNNI or AMX).
  static bool cpu_has_vnni();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lookalike

// A converted CNN's ONNX graph read into plain structs an engine builds its primitives from
// (model/dnnl_network.h). The ONNX file stays the one description of the network; this only
// reads it, with the ONNX project's own protobuf classes (Debian libonnx-dev).
//
// Accepted ops (what the converted InceptionV3 trunk is made of, plus BatchNormalization):
//   Conv (2-D, group 1, no dilation), Relu, MaxPool, AveragePool, Concat (axis 1),
//   BatchNormalization directly after a Conv (folded into its weights and bias).
// Anything else, or an attribute outside what is handled (ceil_mode, auto_pad, dilations,
// groups), is refused at load with Error(kInvalidArgument) naming the node and the op: a graph
// is never half-run.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lookalike {

enum class OnnxOp { kConv, kRelu, kMaxPool, kAveragePool, kConcat };

struct OnnxLayer {
  OnnxOp op = OnnxOp::kRelu;
  std::string name;                 // the node's name, for messages
  std::vector<std::string> inputs;  // activation inputs; weights live in `weights` and `bias`
  std::string output;
  // Conv and pooling, as (height, width).
  std::array<int64_t, 2> kernel{1, 1}, strides{1, 1}, pad_begin{0, 0}, pad_end{0, 0};
  bool count_include_pad = false;  // AveragePool: whether padded cells count in the mean
  bool relu = false;               // Conv: a Relu that alone consumed its output, folded in
  // Conv: [out_channels, in_channels, kernel h, kernel w] row-major, BatchNorm folded in.
  std::array<int64_t, 4> weight_dims{};
  std::vector<float> weights;
  std::vector<float> bias;  // Conv: out_channels values (zeros when the node has no bias)
};

struct OnnxGraph {
  std::string input;                 // name of the graph's one activation input
  std::vector<std::string> outputs;  // the graph's declared outputs
  std::vector<OnnxLayer> layers;     // topological order (ONNX requires it)

  // Throws Error(kNotFound) for a missing file, Error(kInvalidArgument) for an unreadable or
  // unsupported graph; `where` names the model in messages.
  static OnnxGraph load(const std::string& path);
  static OnnxGraph parse(const std::string& bytes, const std::string& where);
};

}  // namespace lookalike

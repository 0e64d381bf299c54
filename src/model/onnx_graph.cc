#include "model/onnx_graph.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/files.h"

namespace lookalike {
namespace {

// Reads one graph into layers, folding BatchNormalization and Relu into the Conv before them.
class GraphReader {
 public:
  GraphReader(const onnx::GraphProto& graph, std::string where) : graph_(graph), where_(std::move(where)) {
    for (const auto& t : graph.initializer()) initializers_[t.name()] = &t;
    for (const auto& node : graph.node())
      for (const auto& in : node.input()) ++consumers_[in];
    for (const auto& out : graph.output()) graph_outputs_.insert(out.name());
  }

  OnnxGraph read() {
    OnnxGraph g;
    for (const auto& in : graph_.input())
      if (!initializers_.contains(in.name())) g.input = in.name();
    if (g.input.empty()) throw Error(ErrorCode::kInvalidArgument, where_ + ": the graph has no input");
    for (const auto& out : graph_.output()) g.outputs.push_back(out.name());
    for (const auto& node : graph_.node()) add(node);
    g.layers = std::move(layers_);
    return g;
  }

 private:
  [[noreturn]] void fail(const onnx::NodeProto& node, const std::string& why) const {
    throw Error(ErrorCode::kInvalidArgument,
                where_ + ": node '" + node.name() + "' (" + node.op_type() + "): " + why);
  }

  const onnx::AttributeProto* attribute(const onnx::NodeProto& node, const std::string& name) const {
    for (const auto& a : node.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }

  int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) const {
    const auto* a = attribute(node, name);
    return a ? a->i() : fallback;
  }

  // A 2-D attribute as (height, width); pads come as (top, left, bottom, right).
  std::vector<int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name,
                                      std::vector<int64_t> fallback) const {
    const auto* a = attribute(node, name);
    if (!a) return fallback;
    std::vector<int64_t> v(a->ints().begin(), a->ints().end());
    if (v.size() != fallback.size())
      fail(node, name + " must have " + std::to_string(fallback.size()) + " values");
    return v;
  }

  std::vector<float> tensor_values(const onnx::NodeProto& node, const std::string& name,
                                   std::vector<int64_t>* dims) const {
    const auto it = initializers_.find(name);
    if (it == initializers_.end()) fail(node, "input " + name + " must be a constant initializer");
    const onnx::TensorProto& t = *it->second;
    if (t.data_type() != onnx::TensorProto::FLOAT) fail(node, "tensor " + name + " is not float32");
    size_t count = 1;
    for (int64_t d : t.dims()) count *= static_cast<size_t>(d);
    std::vector<float> values(count);
    if (!t.raw_data().empty()) {
      if (t.raw_data().size() != count * sizeof(float)) fail(node, "tensor " + name + " has the wrong size");
      std::memcpy(values.data(), t.raw_data().data(), t.raw_data().size());  // little-endian, as x86
    } else {
      if (static_cast<size_t>(t.float_data_size()) != count)
        fail(node, "tensor " + name + " has the wrong size");
      std::copy(t.float_data().begin(), t.float_data().end(), values.begin());
    }
    if (dims) dims->assign(t.dims().begin(), t.dims().end());
    return values;
  }

  // Attributes oneDNN could run but this reader does not map are refused rather than ignored.
  void refuse_unhandled(const onnx::NodeProto& node) const {
    if (const auto* a = attribute(node, "auto_pad"); a && a->s() != "NOTSET")
      fail(node, "auto_pad is not supported");
    if (int_attribute(node, "ceil_mode", 0) != 0) fail(node, "ceil_mode is not supported");
    if (int_attribute(node, "group", 1) != 1) fail(node, "grouped convolution is not supported");
    if (int_attribute(node, "storage_order", 0) != 0) fail(node, "storage_order is not supported");
    if (ints_attribute(node, "dilations", {1, 1}) != std::vector<int64_t>{1, 1})
      fail(node, "dilation is not supported");
  }

  void read_window(const onnx::NodeProto& node, OnnxLayer& layer, std::vector<int64_t> kernel) const {
    refuse_unhandled(node);
    kernel = ints_attribute(node, "kernel_shape", kernel);
    const auto strides = ints_attribute(node, "strides", {1, 1});
    const auto pads = ints_attribute(node, "pads", {0, 0, 0, 0});
    layer.kernel = {kernel[0], kernel[1]};
    layer.strides = {strides[0], strides[1]};
    layer.pad_begin = {pads[0], pads[1]};
    layer.pad_end = {pads[2], pads[3]};
  }

  void add_conv(const onnx::NodeProto& node, OnnxLayer& layer) {
    if (node.input_size() < 2) fail(node, "needs weights");
    std::vector<int64_t> dims;
    layer.weights = tensor_values(node, node.input(1), &dims);
    if (dims.size() != 4) fail(node, "only 2-D convolution is supported");
    layer.weight_dims = {dims[0], dims[1], dims[2], dims[3]};
    layer.bias.assign(static_cast<size_t>(dims[0]), 0.f);
    if (node.input_size() > 2 && !node.input(2).empty()) {
      layer.bias = tensor_values(node, node.input(2), nullptr);
      if (layer.bias.size() != static_cast<size_t>(dims[0]))
        fail(node, "bias size differs from the output channels");
    }
    read_window(node, layer, {dims[2], dims[3]});
    if (layer.kernel[0] != dims[2] || layer.kernel[1] != dims[3])
      fail(node, "kernel_shape differs from the weights");
  }

  // A layer that writes `name` and whose result nothing else reads: the next op can fold into it.
  OnnxLayer* sole_producer(const std::string& name, OnnxOp op) {
    const auto it = producer_.find(name);
    if (it == producer_.end() || layers_[it->second].op != op) return nullptr;
    if (consumers_[name] != 1 || graph_outputs_.contains(name)) return nullptr;
    return &layers_[it->second];
  }

  // The folded layer now writes `output` instead of its own result.
  void rename_output(OnnxLayer& layer, const std::string& output) {
    const size_t index = producer_.at(layer.output);
    producer_.erase(layer.output);
    layer.output = output;
    producer_[output] = index;
  }

  // y = (x - mean) / sqrt(var + eps) * scale + b, applied to the convolution's weights and bias.
  void fold_batch_norm(const onnx::NodeProto& node) {
    OnnxLayer* conv = sole_producer(node.input(0), OnnxOp::kConv);
    if (!conv || conv->relu)
      fail(node, "only a BatchNormalization right after a Conv (alone reading it) is supported");
    if (node.input_size() != 5) fail(node, "needs scale, bias, mean and variance");
    const float eps = attribute(node, "epsilon") ? attribute(node, "epsilon")->f() : 1e-5f;
    const auto scale = tensor_values(node, node.input(1), nullptr),
               shift = tensor_values(node, node.input(2), nullptr),
               mean = tensor_values(node, node.input(3), nullptr),
               var = tensor_values(node, node.input(4), nullptr);
    const size_t out = conv->bias.size(), per_channel = conv->weights.size() / out;
    for (const auto* v : {&scale, &shift, &mean, &var})
      if (v->size() != out) fail(node, "parameter sizes differ from the Conv's output channels");
    for (size_t c = 0; c < out; ++c) {
      const float k = scale[c] / std::sqrt(var[c] + eps);
      for (size_t i = 0; i < per_channel; ++i) conv->weights[c * per_channel + i] *= k;
      conv->bias[c] = (conv->bias[c] - mean[c]) * k + shift[c];
    }
    rename_output(*conv, node.output(0));
  }

  void add(const onnx::NodeProto& node) {
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      fail(node, "ops outside the default domain are not supported");
    if (node.input_size() < 1 || node.output_size() != 1) fail(node, "expected one output");
    const std::string& op = node.op_type();
    if (op == "BatchNormalization") return fold_batch_norm(node);
    if (op == "Relu") {
      if (OnnxLayer* conv = sole_producer(node.input(0), OnnxOp::kConv); conv && !conv->relu) {
        conv->relu = true;
        rename_output(*conv, node.output(0));
        return;
      }
    }
    OnnxLayer layer;
    layer.name = node.name();
    layer.output = node.output(0);
    layer.inputs = {node.input(0)};
    if (op == "Conv") {
      layer.op = OnnxOp::kConv;
      add_conv(node, layer);
    } else if (op == "Relu") {
      layer.op = OnnxOp::kRelu;
    } else if (op == "MaxPool" || op == "AveragePool") {
      layer.op = op == "MaxPool" ? OnnxOp::kMaxPool : OnnxOp::kAveragePool;
      if (!attribute(node, "kernel_shape")) fail(node, "kernel_shape is required");
      read_window(node, layer, {0, 0});
      layer.count_include_pad = int_attribute(node, "count_include_pad", 0) != 0;
    } else if (op == "Concat") {
      layer.op = OnnxOp::kConcat;
      if (int_attribute(node, "axis", 0) != 1)
        fail(node, "only concatenation along channels (axis 1) is supported");
      layer.inputs.assign(node.input().begin(), node.input().end());
    } else {
      fail(node, "op " + op +
                     " is not supported by this engine (supported: Conv, BatchNormalization, Relu, "
                     "MaxPool, AveragePool, Concat)");
    }
    producer_[layer.output] = layers_.size();
    layers_.push_back(std::move(layer));
  }

  const onnx::GraphProto& graph_;
  const std::string where_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializers_;
  std::unordered_map<std::string, int> consumers_;
  std::unordered_set<std::string> graph_outputs_;
  std::unordered_map<std::string, size_t> producer_;  // tensor name -> index in layers_
  std::vector<OnnxLayer> layers_;
};

}  // namespace

OnnxGraph OnnxGraph::load(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(ErrorCode::kNotFound,
                "model file " + path + " is missing; run scripts/prepare-model.sh to convert it");
  }
  return parse(read_file(path, size_t{2} << 30), path);
}

OnnxGraph OnnxGraph::parse(const std::string& bytes, const std::string& where) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw Error(ErrorCode::kInvalidArgument, where + ": not a readable ONNX model");
  return GraphReader(model.graph(), where).read();
}

}  // namespace lookalike

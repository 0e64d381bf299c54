#include "model/head_model.h"

#include <onnx/onnx_pb.h>

#include "common/error.h"

namespace lookalike {
namespace {

void add_tensor(onnx::GraphProto* graph, const std::string& name, const std::vector<int64_t>& dims,
                const std::vector<float>& values) {
  onnx::TensorProto* t = graph->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->mutable_raw_data()->assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

onnx::NodeProto* add_node(onnx::GraphProto* graph, const std::string& op, std::vector<std::string> inputs,
                          const std::string& output) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name(output);
  for (auto& in : inputs) node->add_input(in);
  node->add_output(output);
  return node;
}

void add_int_attribute(onnx::NodeProto* node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void add_value_info(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                    const std::vector<int64_t>& dims) {
  onnx::ValueInfoProto* v = list->Add();
  v->set_name(name);
  auto* tensor = v->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(d);
    }
  }
}

void add_ints_attribute(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

}  // namespace

void HeadWeights::validate() const {
  const bool ok = in_channels > 0 && channels > 0 && conv_weight.size() == channels * in_channels &&
                  conv_bias.size() == channels && !classes.empty() &&
                  linear_weight.size() == classes.size() * channels && linear_bias.size() == classes.size() &&
                  gem_p >= 1.f && gem_eps > 0.f;
  if (!ok) throw Error(ErrorCode::kInvalidArgument, "head weights have inconsistent sizes");
}

std::string export_head_onnx(const HeadWeights& head) {
  head.validate();
  onnx::ModelProto model;
  model.set_ir_version(6);
  model.set_producer_name("lookalike-head-trainer");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(11);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("lookalike_head");
  const auto c = static_cast<int64_t>(head.channels);
  const auto k = static_cast<int64_t>(head.classes.size());
  add_tensor(g, "conv_w", {c, static_cast<int64_t>(head.in_channels), 1, 1}, head.conv_weight);
  add_tensor(g, "conv_b", {c}, head.conv_bias);
  add_tensor(g, "gem_eps", {1}, {head.gem_eps});
  add_tensor(g, "gem_p", {1}, {head.gem_p});
  add_tensor(g, "gem_inverse_p", {1}, {1.f / head.gem_p});
  add_tensor(g, "linear_w", {k, c}, head.linear_weight);
  add_tensor(g, "linear_b", {k}, head.linear_bias);
  add_ints_attribute(add_node(g, "Conv", {"mixed7", "conv_w", "conv_b"}, "conv"), "kernel_shape", {1, 1});
  add_node(g, "Relu", {"conv"}, "relu");
  add_node(g, "Add", {"relu", "gem_eps"}, "shifted");
  add_node(g, "Pow", {"shifted", "gem_p"}, "powered");
  add_node(g, "GlobalAveragePool", {"powered"}, "pooled");
  add_node(g, "Pow", {"pooled", "gem_inverse_p"}, "gem");
  add_int_attribute(add_node(g, "Flatten", {"gem"}, "flat"), "axis", 1);
  add_int_attribute(add_node(g, "Gemm", {"flat", "linear_w", "linear_b"}, "logits"), "transB", 1);
  add_value_info(g->mutable_input(), "mixed7", {-1, static_cast<int64_t>(head.in_channels), -1, -1});
  add_value_info(g->mutable_output(), "gem", {-1, c, 1, 1});
  add_value_info(g->mutable_output(), "logits", {-1, k});
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw Error(ErrorCode::kInternal, "cannot serialise the head as ONNX");
  return bytes;
}

HeadNetwork::HeadNetwork(const std::string& onnx_bytes) {
  try {
    net_ = cv::dnn::readNetFromONNX(onnx_bytes.data(), onnx_bytes.size());
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kCorruptStore, std::string("cannot load the trained head: ") + e.what());
  }
  net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
}

HeadNetwork::Output HeadNetwork::forward(const cv::Mat& maps) {
  std::vector<cv::Mat> outs;
  try {
    net_.setInput(maps, "mixed7");
    net_.forward(outs, std::vector<cv::String>{"gem", "logits"});
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kInternal, std::string("head forward failed: ") + e.what());
  }
  const int n = maps.size[0];
  Output out;
  out.gem = outs[0].reshape(1, n).clone();
  out.logits = outs[1].reshape(1, n).clone();
  return out;
}

}  // namespace lookalike

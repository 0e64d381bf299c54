#include "model/dnnl_network.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <oneapi/dnnl/dnnl.hpp>
#include <opencv2/core/utility.hpp>

#include "common/error.h"
#include "model/onnx_graph.h"

namespace lookalike {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using Dims = memory::dims;
using Tag = memory::format_tag;
using Type = memory::data_type;
constexpr auto kF32 = Type::f32;

// A descriptor that lets the primitive choose the layout.
memory::desc any_layout(const Dims& dims, Type type = kF32) {
  return {dims, type, Tag::any};
}

dnnl::primitive_attr scaled(const std::vector<float>& scales, int mask = 0) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(mask, scales);
  return attr;
}

// int8 scales (quantized = real * scale) of every tensor. A concat's inputs and output, and a
// pooling's or a ReLU's input and output, share one scale, so those ops move u8 values without
// rescaling; each group's scale is 255 / the largest calibrated maximum in it.
class Int8Scales {
 public:
  Int8Scales(const OnnxGraph& graph, const Int8Calibration& calibration, const std::string& where) {
    for (const auto& l : graph.layers) {
      if (l.op == OnnxOp::kConv && !l.relu)
        throw Error(ErrorCode::kInvalidArgument,
                    where + ": int8 needs a ReLU after every Conv; " + l.name + " has none");
      if (l.op != OnnxOp::kConv)
        for (const auto& in : l.inputs) join(in, l.output);
    }
    std::unordered_map<std::string, float> group_max;
    for (const auto& name : names(graph)) {
      const auto it = calibration.max.find(name);
      if (it == calibration.max.end())
        throw Error(ErrorCode::kInvalidArgument, where + ": the int8 calibration lacks tensor " + name);
      float& m = group_max[root(name)];
      m = std::max(m, it->second);
    }
    for (const auto& name : names(graph)) {
      const float m = group_max[root(name)];
      scale_[name] = m > 0 ? 255.f / m : 1.f;
    }
  }

  float of(const std::string& tensor) const { return scale_.at(tensor); }

 private:
  static std::vector<std::string> names(const OnnxGraph& graph) {
    std::vector<std::string> all{graph.input};
    for (const auto& l : graph.layers) all.push_back(l.output);
    return all;
  }

  std::string root(const std::string& name) {
    auto it = parent_.find(name);
    if (it == parent_.end() || it->second == name) return name;
    return it->second = root(it->second);
  }

  void join(const std::string& a, const std::string& b) {
    const std::string ra = root(a), rb = root(b);
    if (ra != rb) parent_[ra] = rb;
  }

  std::unordered_map<std::string, std::string> parent_;  // union-find over tensor names
  std::unordered_map<std::string, float> scale_;
};

// Whether the CPU multiplies 8-bit values into 32-bit sums (VNNI). Without it, oneDNN's int8
// kernels add u8 x s8 products in pairs into 16-bit sums, which saturate past 32767:
// 255 * 127 * 2 would, and did (errors of 40 steps in the tiny-graph test on AVX2).
bool has_vnni() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2_vnni:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
      return true;
    default:
      return false;
  }
}

// A convolution's weights quantized to s8 per output channel (scale 127 / max |w|; 63 without
// VNNI, so a pair of products fits 16 bits: 255 * 63 * 2 < 32768), and its bias moved into the
// accumulator's units (oneDNN 2.x adds the bias before the output scale).
struct Int8Conv {
  std::vector<int8_t> weights;  // oihw
  std::vector<float> bias;
  std::vector<float> output_scales;  // per output channel: dst scale / (src scale * weight scale)
};

Int8Conv quantize_conv(const OnnxLayer& l, float src_scale, float dst_scale) {
  static const float levels = has_vnni() ? 127.f : 63.f;
  const size_t out = l.bias.size(), per_channel = l.weights.size() / out;
  Int8Conv q;
  q.weights.resize(l.weights.size());
  for (size_t c = 0; c < out; ++c) {
    const float* w = l.weights.data() + c * per_channel;
    float largest = 0;
    for (size_t i = 0; i < per_channel; ++i) largest = std::max(largest, std::abs(w[i]));
    const float w_scale = largest > 0 ? levels / largest : 1.f;
    for (size_t i = 0; i < per_channel; ++i)
      q.weights[c * per_channel + i] = static_cast<int8_t>(std::lround(w[i] * w_scale));
    q.bias.push_back(l.bias[c] * src_scale * w_scale);
    q.output_scales.push_back(dst_scale / (src_scale * w_scale));
  }
  return q;
}

// Output cells of a window (floor, as ONNX's ceil_mode 0).
int64_t window_output(int64_t size, int64_t kernel, int64_t stride, int64_t pad_begin, int64_t pad_end) {
  return (size + pad_begin + pad_end - kernel) / stride + 1;
}

Dims window_dst(const Dims& src, const OnnxLayer& l, int64_t channels) {
  return {src[0], channels, window_output(src[2], l.kernel[0], l.strides[0], l.pad_begin[0], l.pad_end[0]),
          window_output(src[3], l.kernel[1], l.strides[1], l.pad_begin[1], l.pad_end[1])};
}

Dims pair(const std::array<int64_t, 2>& v) {
  return {v[0], v[1]};
}

struct Step {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<void, FreeDeleter>;

// The primitives for one input shape, thread count and set of outputs, in execution order.
struct Plan {
  memory input;                 // the caller's NCHW blob; its data handle is set at each forward
  std::vector<memory> outputs;  // the caller's NCHW results, likewise
  std::vector<Step> steps;
  std::vector<Buffer> buffers;  // every intermediate tensor lives in one of these
};

// Lays the intermediate tensors into as few buffers as their lifetimes allow: a tensor takes a
// buffer whose last reader ran before the tensor's first writer. InceptionV3 keeps ~1/5 of its
// activations alive at once, so memory per plan (and per batch size cached) drops about as
// much, and the reused buffers stay warm in cache.
class BufferPlanner {
 public:
  // `tensor` is written or read by step `step`; steps come in execution order.
  void use(const memory& tensor, size_t step) {
    auto [it, added] = index_.try_emplace(tensor.get(), lives_.size());
    if (added) lives_.push_back({tensor, step, step});
    lives_[it->second].last = step;
  }

  std::vector<Buffer> assign() {
    struct Slot {
      size_t bytes = 0, free_after = 0;  // size, and the last step that reads what it holds
      std::vector<memory> tensors;
    };
    std::vector<Slot> slots;
    for (const Life& life : lives_) {  // in order of first use
      const size_t bytes = life.tensor.get_desc().get_size();
      Slot* best = nullptr;
      for (Slot& s : slots) {
        if (s.free_after >= life.first) continue;  // still holds a live tensor
        // The smallest that fits, else the largest (to be grown): fewer, fuller buffers.
        const bool fits = s.bytes >= bytes, best_fits = best && best->bytes >= bytes;
        if (!best || (fits != best_fits ? fits : fits ? s.bytes < best->bytes : s.bytes > best->bytes))
          best = &s;
      }
      if (!best) best = &slots.emplace_back();
      best->bytes = std::max(best->bytes, bytes);
      best->free_after = life.last;
      best->tensors.push_back(life.tensor);
    }
    std::vector<Buffer> buffers;
    for (Slot& s : slots) {
      const size_t bytes = (s.bytes + 63) / 64 * 64;
      buffers.emplace_back(std::aligned_alloc(64, bytes));
      if (!buffers.back()) throw std::bad_alloc();
      // Zeros, so the padding of a blocked layout (channels rounded up to 8 or 16) never holds
      // a NaN bit pattern that a convolution would multiply by its zero padded weights.
      std::memset(buffers.back().get(), 0, bytes);
      for (memory& m : s.tensors) m.set_data_handle(buffers.back().get());
    }
    return buffers;
  }

 private:
  struct Life {
    memory tensor;
    size_t first, last;
  };
  std::unordered_map<dnnl_memory_t, size_t> index_;
  std::vector<Life> lives_;
};

// Each convolution's weights in every layout a plan's primitive chose, reordered once and
// shared by all plans (a new batch size usually picks the same layout: no second copy) and by
// every network of the same model (SharedModel below), hence the mutex: plans are built
// lazily, by whichever network first meets a shape.
class WeightCache {
 public:
  WeightCache(const OnnxGraph& graph, const dnnl::engine& engine) : graph_(graph), engine_(engine) {
    copies_.resize(graph.layers.size());
    for (const auto& l : graph.layers) {
      // oneDNN reads these buffers only; the const_cast lends them without a copy.
      biases_.push_back(l.op != OnnxOp::kConv ? memory()
                                              : memory({{l.weight_dims[0]}, kF32, Tag::x}, engine,
                                                       const_cast<float*>(l.bias.data())));
    }
  }

  // The weights in the layout `wanted` (f32, or s8 from quantize_conv when `int8` is given).
  memory weights(size_t layer, const memory::desc& wanted, dnnl::stream& stream,
                 const Int8Conv* int8 = nullptr) {
    std::lock_guard lock(mutex_);
    for (const auto& m : copies_[layer])
      if (m.get_desc() == wanted) return m;
    const OnnxLayer& l = graph_.layers[layer];
    const Dims dims(l.weight_dims.begin(), l.weight_dims.end());
    memory plain =
        int8 ? memory({dims, Type::s8, Tag::oihw}, engine_, const_cast<int8_t*>(int8->weights.data()))
             : memory({dims, kF32, Tag::oihw}, engine_, const_cast<float*>(l.weights.data()));
    memory copy(wanted, engine_);
    // The reorder also applies what an int8 kernel's layout may ask for (compensation, scale
    // adjustment); on AVX2 with oneDNN 2.6 it asks for none.
    dnnl::reorder(plain, copy).execute(stream, plain, copy);
    stream.wait();
    copies_[layer].push_back(copy);
    return copy;
  }

  const memory& bias(size_t layer) const { return biases_[layer]; }

  // Quantized once per layer, with its bias; the scales are fixed by the model's calibration.
  // The reference stays valid (unordered_map never moves its elements).
  const std::pair<Int8Conv, memory>& int8(size_t layer, const Int8Scales& scales) {
    std::lock_guard lock(mutex_);
    auto it = int8_.find(layer);
    if (it == int8_.end()) {
      const OnnxLayer& l = graph_.layers[layer];
      Int8Conv q = quantize_conv(l, scales.of(l.inputs[0]), scales.of(l.output));
      memory bias({{static_cast<int64_t>(q.bias.size())}, kF32, Tag::x}, engine_);
      std::memcpy(bias.get_data_handle(), q.bias.data(), q.bias.size() * sizeof(float));
      it = int8_.emplace(layer, std::make_pair(std::move(q), bias)).first;
    }
    return it->second;
  }

 private:
  const OnnxGraph& graph_;
  dnnl::engine engine_;
  std::vector<std::vector<memory>> copies_;
  std::vector<memory> biases_;
  std::unordered_map<size_t, std::pair<Int8Conv, memory>> int8_;
  std::mutex mutex_;  // guards copies_ and int8_ (biases_ is fixed at construction)
};

// Builds one Plan: the needed layers only, each primitive's layout chosen by oneDNN, a reorder
// inserted only where a consumer wants another layout than its producer wrote.
class PlanBuilder {
 public:
  // `int8`: the scales of an int8 plan; null for fp32.
  PlanBuilder(const OnnxGraph& graph, WeightCache& weights, const dnnl::engine& engine, dnnl::stream& stream,
              const std::string& where, const Int8Scales* int8)
      : graph_(graph), weights_(weights), engine_(engine), stream_(stream), where_(where), int8_(int8) {}

  Plan build(const Dims& input, const std::vector<std::string>& names) {
    const std::vector<bool> needed = needed_layers(names);
    plan_.input = memory({input, kF32, Tag::nchw}, engine_, DNNL_MEMORY_NONE);
    tensors_[graph_.input] = int8_ ? quantized_input(input) : plan_.input;
    for (size_t i = 0; i < graph_.layers.size(); ++i)
      if (needed[i]) add(i);
    for (const auto& name : names) {
      const memory& m = tensor(name);
      memory out({m.get_desc().dims(), kF32, Tag::nchw}, engine_, DNNL_MEMORY_NONE);
      // int8 tensors come back in real units: dequantized by the reorder.
      const bool quantized = m.get_desc().data_type() != kF32;
      const auto attr = quantized ? scaled({1.f / int8_->of(name)}) : dnnl::primitive_attr();
      add_step(dnnl::reorder(m, out, attr), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, out}});
      plan_.outputs.push_back(out);
    }
    plan_.buffers = place_intermediates();
    return std::move(plan_);
  }

 private:
  // Layers the requested tensors depend on; throws for a name no layer writes.
  std::vector<bool> needed_layers(const std::vector<std::string>& names) const {
    std::unordered_map<std::string, size_t> producer;
    for (size_t i = 0; i < graph_.layers.size(); ++i) producer[graph_.layers[i].output] = i;
    std::vector<bool> needed(graph_.layers.size(), false);
    std::vector<std::string> pending(names);
    while (!pending.empty()) {
      const std::string name = pending.back();
      pending.pop_back();
      if (name == graph_.input) continue;
      const auto it = producer.find(name);
      if (it == producer.end())
        throw Error(ErrorCode::kInvalidArgument, where_ + " has no tensor named " + name);
      if (needed[it->second]) continue;
      needed[it->second] = true;
      for (const auto& in : graph_.layers[it->second].inputs) pending.push_back(in);
    }
    return needed;
  }

  const memory& tensor(const std::string& name) const { return tensors_.at(name); }

  // The caller's fp32 blob as u8 (channels-last, what the first int8 convolution reads best).
  memory quantized_input(const Dims& input) {
    memory q = intermediate({input, Type::u8, Tag::nhwc});
    add_step(dnnl::reorder(plan_.input, q, scaled({int8_->of(graph_.input)})),
             {{DNNL_ARG_FROM, plan_.input}, {DNNL_ARG_TO, q}});
    return q;
  }

  // The type activations have in this plan.
  Type activation_type() const { return int8_ ? Type::u8 : kF32; }

  // A tensor written by a step of the plan; its buffer is placed once the plan is complete.
  memory intermediate(const memory::desc& desc) {
    memory m(desc, engine_, DNNL_MEMORY_NONE);
    intermediates_.insert(m.get());
    return m;
  }

  std::vector<Buffer> place_intermediates() {
    BufferPlanner planner;
    for (size_t i = 0; i < plan_.steps.size(); ++i)
      for (const auto& [arg, m] : plan_.steps[i].args)
        if (intermediates_.contains(m.get())) planner.use(m, i);
    return planner.assign();
  }

  // `name` in the layout `wanted`, reordered (once per layout) when its producer chose another.
  memory in_layout(const std::string& name, const memory::desc& wanted) {
    const memory& m = tensor(name);
    if (m.get_desc() == wanted) return m;
    for (const auto& c : copies_[name])
      if (c.get_desc() == wanted) return c;
    memory copy = intermediate(wanted);
    add_step(dnnl::reorder(m, copy), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, copy}});
    copies_[name].push_back(copy);
    return copy;
  }

  void add_step(dnnl::primitive p, std::unordered_map<int, memory> args) {
    plan_.steps.push_back({std::move(p), std::move(args)});
  }

  void add(size_t index) {
    const OnnxLayer& l = graph_.layers[index];
    switch (l.op) {
      case OnnxOp::kConv:
        return add_conv(index, l);
      case OnnxOp::kRelu:
        return add_relu(l);
      case OnnxOp::kMaxPool:
      case OnnxOp::kAveragePool:
        return add_pool(l);
      case OnnxOp::kConcat:
        return add_concat(l);
    }
  }

  void add_conv(size_t index, const OnnxLayer& l) {
    const Dims src = tensor(l.inputs[0]).get_desc().dims();
    const Dims weights(l.weight_dims.begin(), l.weight_dims.end());
    if (src[1] != weights[1]) {
      throw Error(ErrorCode::kInvalidArgument, where_ + ": " + l.name + " expects " +
                                                   std::to_string(weights[1]) + " channels, gets " +
                                                   std::to_string(src[1]));
    }
    const Dims dst = window_dst(src, l, weights[0]);
    const auto* quantized = int8_ ? &weights_.int8(index, *int8_) : nullptr;
    const Int8Conv* q = quantized ? &quantized->first : nullptr;
    const memory& bias = quantized ? quantized->second : weights_.bias(index);
    // Direct, never Winograd: Winograd's transforms cost accuracy the equivalence test forbids.
    const dnnl::convolution_forward::desc desc(
        prop_kind::forward_inference, algorithm::convolution_direct, any_layout(src, activation_type()),
        any_layout(weights, q ? Type::s8 : kF32), bias.get_desc(), any_layout(dst, activation_type()),
        pair(l.strides), pair(l.pad_begin), pair(l.pad_end));
    // int8: one output scale per output channel (mask bit 1), as the weights are scaled.
    dnnl::primitive_attr attr = q ? scaled(q->output_scales, 1 << 1) : dnnl::primitive_attr();
    if (l.relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine_);
    memory out = intermediate(pd.dst_desc());
    add_step(dnnl::convolution_forward(pd),
             {{DNNL_ARG_SRC, in_layout(l.inputs[0], pd.src_desc())},
              {DNNL_ARG_WEIGHTS, weights_.weights(index, pd.weights_desc(), stream_, q)},
              {DNNL_ARG_BIAS, bias},
              {DNNL_ARG_DST, out}});
    tensors_[l.output] = out;
  }

  void add_relu(const OnnxLayer& l) {
    const memory& src = tensor(l.inputs[0]);
    const dnnl::eltwise_forward::desc desc(prop_kind::forward_inference, algorithm::eltwise_relu,
                                           src.get_desc(), 0.f, 0.f);
    const dnnl::eltwise_forward::primitive_desc pd(desc, engine_);
    memory out = intermediate(pd.dst_desc());
    add_step(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out}});
    tensors_[l.output] = out;
  }

  // ONNX's count_include_pad maps one to one: 0 divides by the cells inside the image
  // (pooling_avg_exclude_padding), 1 by the whole window (pooling_avg_include_padding).
  void add_pool(const OnnxLayer& l) {
    const memory& src = tensor(l.inputs[0]);
    const Dims src_dims = src.get_desc().dims();
    const algorithm alg = l.op == OnnxOp::kMaxPool ? algorithm::pooling_max
                          : l.count_include_pad    ? algorithm::pooling_avg_include_padding
                                                   : algorithm::pooling_avg_exclude_padding;
    const dnnl::pooling_forward::desc desc(
        prop_kind::forward_inference, alg, src.get_desc(),
        any_layout(window_dst(src_dims, l, src_dims[1]), activation_type()), pair(l.strides), pair(l.kernel),
        pair(l.pad_begin), pair(l.pad_end));
    const dnnl::pooling_forward::primitive_desc pd(desc, engine_);
    memory out = intermediate(pd.dst_desc());
    add_step(dnnl::pooling_forward(pd),
             {{DNNL_ARG_SRC, in_layout(l.inputs[0], pd.src_desc())}, {DNNL_ARG_DST, out}});
    tensors_[l.output] = out;
  }

  void add_concat(const OnnxLayer& l) {
    std::vector<memory::desc> sources;
    std::unordered_map<int, memory> args;
    for (size_t i = 0; i < l.inputs.size(); ++i) {
      const memory& src = tensor(l.inputs[i]);
      sources.push_back(src.get_desc());
      args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] = src;
    }
    const dnnl::concat::primitive_desc pd(1, sources, engine_);  // the layout follows the sources'
    memory out = intermediate(pd.dst_desc());
    args[DNNL_ARG_DST] = out;
    add_step(dnnl::concat(pd), std::move(args));
    tensors_[l.output] = out;
  }

  const OnnxGraph& graph_;
  WeightCache& weights_;
  const dnnl::engine& engine_;
  dnnl::stream& stream_;
  const std::string& where_;
  const Int8Scales* int8_;
  Plan plan_;
  std::unordered_map<std::string, memory> tensors_;              // each tensor as its producer wrote it
  std::unordered_map<std::string, std::vector<memory>> copies_;  // reordered for other consumers
  std::unordered_set<dnnl_memory_t> intermediates_;
};

std::string plan_key(const Dims& input, int threads, const std::vector<std::string>& names, bool int8) {
  std::string key = int8 ? "int8/" : "f32/";
  for (auto d : input) key += std::to_string(d) + "x";
  key += "/" + std::to_string(threads);
  for (const auto& n : names) key += "/" + n;
  return key;
}

// What every network of one model file and calibration shares: the graph, the engine and the
// weights in each layout built so far. A pool of N inference slots thus parses the ONNX and
// reorders (or quantizes) its weights once, not N times: measured at start-up on 2 cores, the
// second slot's network cost 0.6 s and another copy of the weights.
struct SharedModel {
  SharedModel(const std::string& path, const std::optional<Int8Calibration>& calibration)
      : graph(OnnxGraph::load(path)), weights(graph, engine) {
    if (calibration) int8.emplace(graph, *calibration, path);
  }
  OnnxGraph graph;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};  // thread-safe; each network has its stream
  WeightCache weights;
  std::optional<Int8Scales> int8;
};

// The model of `path` as calibrated by `calibration`, loaded once while any network holds it.
// Keyed by the file's size and time too, so a reconverted model is read again.
std::shared_ptr<SharedModel> shared_model(const std::string& path,
                                          const std::optional<Int8Calibration>& calibration) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<SharedModel>> loaded;
  std::error_code ec;
  std::string key = path + "|" + std::to_string(std::filesystem::file_size(path, ec)) + "|" +
                    std::to_string(std::filesystem::last_write_time(path, ec).time_since_epoch().count());
  if (calibration) {
    key += "|int8:" + calibration->model;
    for (const auto& [tensor, max] : calibration->max) key += "|" + tensor + "=" + std::to_string(max);
  }
  std::lock_guard lock(mutex);
  if (auto model = loaded[key].lock()) return model;
  std::erase_if(loaded, [](const auto& entry) { return entry.second.expired(); });
  auto model = std::make_shared<SharedModel>(path, calibration);
  loaded[key] = model;
  return model;
}

}  // namespace

struct DnnlNetwork::Impl {
  Impl(ModelManifest m, DnnlOptions o)
      : manifest(std::move(m)),
        options(std::move(o)),
        model(shared_model(manifest.onnx_path, options.int8)),
        graph(model->graph),
        stream(model->engine) {}

  int threads() const { return options.threads > 0 ? options.threads : std::max(1, cv::getNumThreads()); }

  Plan& plan_for(const Dims& input, int threads, const std::vector<std::string>& names, bool use_int8) {
    const std::string key = plan_key(input, threads, names, use_int8);
    auto it = plans.find(key);
    if (it == plans.end()) {
      PlanBuilder builder(graph, model->weights, model->engine, stream, manifest.onnx_path,
                          use_int8 ? &*model->int8 : nullptr);
      it = plans.emplace(key, builder.build(input, names)).first;
    }
    return it->second;
  }

  std::vector<cv::Mat> run(const cv::Mat& blob, const std::vector<std::string>& names, bool use_int8);

  ModelManifest manifest;
  DnnlOptions options;
  std::shared_ptr<SharedModel> model;  // shared with the model's other networks (read-only)
  const OnnxGraph& graph;
  dnnl::stream stream;
  std::map<std::string, Plan> plans;  // this network's own: primitives write its buffers
};

DnnlNetwork::DnnlNetwork(ModelManifest manifest, DnnlOptions options) {
  try {
    impl_ = std::make_unique<Impl>(std::move(manifest), options);
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, std::string("cannot start oneDNN: ") + e.what());
  }
  if (impl_->graph.input != impl_->manifest.input_name) {
    throw Error(ErrorCode::kInvalidArgument, impl_->manifest.onnx_path + ": the graph's input is " +
                                                 impl_->graph.input + ", the manifest says " +
                                                 impl_->manifest.input_name);
  }
}

DnnlNetwork::~DnnlNetwork() = default;

const ModelManifest& DnnlNetwork::manifest() const {
  return impl_->manifest;
}

std::vector<cv::Mat> DnnlNetwork::forward(const cv::Mat& blob, const std::vector<std::string>& names) {
  return impl_->run(blob, names, impl_->model->int8.has_value());
}

Int8Calibration DnnlNetwork::calibrate(const std::vector<cv::Mat>& blobs) {
  Int8Calibration c;
  c.model = impl_->manifest.name;
  std::vector<std::string> names{impl_->graph.input};
  for (const auto& l : impl_->graph.layers) names.push_back(l.output);
  for (const auto& name : names) c.max[name] = 0;
  for (const auto& blob : blobs) {
    const auto tensors = impl_->run(blob, names, /*use_int8=*/false);
    for (size_t i = 0; i < names.size(); ++i) {
      double largest = 0;
      cv::minMaxLoc(tensors[i].reshape(1, 1), nullptr, &largest);
      c.max[names[i]] = std::max(c.max[names[i]], static_cast<float>(largest));
    }
    c.images += static_cast<size_t>(blob.size[0]);
  }
  return c;
}

std::vector<cv::Mat> DnnlNetwork::Impl::run(const cv::Mat& blob, const std::vector<std::string>& names,
                                            bool use_int8) {
  if (blob.dims != 4 || blob.type() != CV_32F || !blob.isContinuous() || blob.size[0] < 1)
    throw Error(ErrorCode::kInvalidArgument, "a forward needs a dense 4-D NCHW float blob");
  const int n_threads = threads();
  // OpenMP's thread count is per calling thread, and oneDNN sizes a primitive's work split at
  // creation: set it before the plan is built or run.
  omp_set_num_threads(n_threads);
  const Dims input{blob.size[0], blob.size[1], blob.size[2], blob.size[3]};
  try {
    Plan& plan = plan_for(input, n_threads, names, use_int8);
    plan.input.set_data_handle(const_cast<uchar*>(blob.data));  // read only
    std::vector<cv::Mat> outputs;
    for (auto& out : plan.outputs) {
      const Dims d = out.get_desc().dims();
      const int sizes[] = {int(d[0]), int(d[1]), int(d[2]), int(d[3])};
      outputs.emplace_back(4, sizes, CV_32F);
      out.set_data_handle(outputs.back().data);
    }
    for (auto& step : plan.steps) step.primitive.execute(stream, step.args);
    stream.wait();
    return outputs;
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, "oneDNN forward failed: " + std::string(e.what()));
  }
}

bool DnnlNetwork::cpu_has_vnni() {
  return has_vnni();
}

std::string DnnlNetwork::cpu_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

}  // namespace lookalike

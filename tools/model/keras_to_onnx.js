'use strict';
// Translates a Keras 2.2 functional model (channels_last) into an ONNX graph (NCHW) that
// OpenCV 4.6 DNN imports. Only the layer types InceptionV3-style CNNs use are supported;
// anything else is refused by name rather than converted approximately.
const { onnx } = require('onnx-proto');

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const A = onnx.AttributeProto.AttributeType;

function ints(name, values) { return { name, type: A.INTS, ints: values }; }
function int(name, value) { return { name, type: A.INT, i: value }; }
function float(name, value) { return { name, type: A.FLOAT, f: value }; }

function tensor(name, dims, data) {
  const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
  return { name, dims, dataType: FLOAT, rawData: Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength) };
}

function inboundNames(layer) {
  if (!layer.inbound_nodes.length) return [];
  if (layer.inbound_nodes.length !== 1) throw new Error(`${layer.name}: shared layers are not supported`);
  return layer.inbound_nodes[0].map((x) => x[0]);
}

// Keras 'same' padding for stride 1 puts the extra pixel (even kernels) at the end.
function samePads(kernel, strides, layerName) {
  if (strides.some((s) => s !== 1)) throw new Error(`${layerName}: 'same' padding with stride > 1 is not supported`);
  const before = kernel.map((k) => Math.floor((k - 1) / 2));
  const after = kernel.map((k, i) => k - 1 - before[i]);
  return [before[0], before[1], after[0], after[1]];
}

function pads(config, kernel, layerName) {
  if (config.padding === 'valid') return [0, 0, 0, 0];
  if (config.padding === 'same') return samePads(kernel, config.strides, layerName);
  throw new Error(`${layerName}: unknown padding ${config.padding}`);
}

// HWIO (Keras) -> OIHW (ONNX), optionally scaling each output channel.
function convKernel(w, scale) {
  const [kh, kw, cin, cout] = w.shape;
  const out = new Float32Array(w.data.length);
  for (let o = 0; o < cout; ++o) {
    const s = scale ? scale[o] : 1;
    for (let i = 0; i < cin; ++i)
      for (let y = 0; y < kh; ++y)
        for (let x = 0; x < kw; ++x)
          out[((o * cin + i) * kh + y) * kw + x] = w.data[((y * kw + x) * cin + i) * cout + o] * s;
  }
  return { dims: [cout, cin, kh, kw], data: out };
}

// Keras BatchNormalization folded into the preceding convolution (inference only):
// y = gamma * (x - mean) / sqrt(var + eps) + beta.
function foldBatchNorm(model, bn, cout) {
  const get = (n) => model.weights.get(`${bn.name}/${n}`);
  const mean = get('moving_mean').data;
  const variance = get('moving_variance').data;
  const beta = bn.config.center ? get('beta').data : new Float32Array(cout);
  const gamma = bn.config.scale ? get('gamma').data : null;
  const scale = new Float64Array(cout);
  const bias = new Float32Array(cout);
  for (let c = 0; c < cout; ++c) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + bn.config.epsilon);
    bias[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, bias };
}

function activationNode(kind, input, output) {
  if (kind === 'linear') return null;
  if (kind === 'relu') return { opType: 'Relu', input: [input], output: [output], name: output };
  if (kind === 'softmax') return { opType: 'Softmax', input: [input], output: [output], name: output, attribute: [int('axis', 1)] };
  throw new Error(`unsupported activation ${kind}`);
}

class GraphBuilder {
  constructor(model) {
    this.model = model;
    this.byName = new Map(model.layers.map((l) => [l.name, l]));
    this.consumers = new Map();
    for (const l of model.layers) for (const src of inboundNames(l)) {
      if (!this.consumers.has(src)) this.consumers.set(src, []);
      this.consumers.get(src).push(l);
    }
    this.nodes = [];
    this.initializers = [];
    this.tensorOf = new Map(); // keras layer name -> onnx tensor name
  }

  needed(outputs) {
    const keep = new Set();
    const stack = [...outputs];
    while (stack.length) {
      const name = stack.pop();
      if (keep.has(name)) continue;
      if (!this.byName.has(name)) throw new Error(`no layer named ${name}`);
      keep.add(name);
      stack.push(...inboundNames(this.byName.get(name)));
    }
    return keep;
  }

  weight(name) {
    const w = this.model.weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    return w;
  }

  addNode(node) { if (node) this.nodes.push(node); }
  input(layer) { return inboundNames(layer).map((n) => this.tensorOf.get(n)); }

  conv(layer, keep) {
    const c = layer.config;
    if (c.data_format !== 'channels_last') throw new Error(`${layer.name}: channels_first not supported`);
    if (c.dilation_rate.some((d) => d !== 1)) throw new Error(`${layer.name}: dilation not supported`);
    const kernel = this.weight(`${layer.name}/kernel`);
    const cout = kernel.shape[3];
    const next = this.consumers.get(layer.name) || [];
    const bn = next.length === 1 && next[0].class_name === 'BatchNormalization' && keep.has(next[0].name) ? next[0] : null;
    let bias = c.use_bias ? Float32Array.from(this.weight(`${layer.name}/bias`).data) : new Float32Array(cout);
    let scale = null;
    if (bn) {
      if (c.activation !== 'linear') throw new Error(`${layer.name}: activation before batch norm not supported`);
      const folded = foldBatchNorm(this.model, bn, cout);
      scale = folded.scale;
      bias = bias.map((b, i) => b * scale[i] + folded.bias[i]);
    }
    const k = convKernel(kernel, scale);
    const out = bn ? bn.name : layer.name;
    const preact = c.activation === 'linear' ? out : `${out}_preact`;
    this.initializers.push(tensor(`${layer.name}/W`, k.dims, k.data), tensor(`${layer.name}/B`, [cout], bias));
    this.addNode({
      opType: 'Conv', name: preact, input: [this.input(layer)[0], `${layer.name}/W`, `${layer.name}/B`], output: [preact],
      attribute: [ints('kernel_shape', c.kernel_size), ints('strides', c.strides), ints('pads', pads(c, c.kernel_size, layer.name))],
    });
    this.addNode(activationNode(c.activation, preact, out));
    this.tensorOf.set(layer.name, out);
    if (bn) this.tensorOf.set(bn.name, out);
  }

  pool(layer, opType) {
    const c = layer.config;
    const attrs = [ints('kernel_shape', c.pool_size), ints('strides', c.strides), ints('pads', pads(c, c.pool_size, layer.name))];
    // Keras/TensorFlow average pooling divides by the number of real (unpadded) pixels.
    if (opType === 'AveragePool') attrs.push(int('count_include_pad', 0));
    this.addNode({ opType, name: layer.name, input: this.input(layer), output: [layer.name], attribute: attrs });
    this.tensorOf.set(layer.name, layer.name);
  }

  dense(layer) {
    const c = layer.config;
    const kernel = this.weight(`${layer.name}/kernel`);
    const [nin, nout] = kernel.shape;
    // OpenCV 4.6 rejects Gemm with transB=0: store the kernel as [out, in] and set transB=1.
    const wt = new Float32Array(nin * nout);
    for (let i = 0; i < nin; ++i) for (let o = 0; o < nout; ++o) wt[o * nin + i] = kernel.data[i * nout + o];
    const bias = c.use_bias ? this.weight(`${layer.name}/bias`).data : new Float32Array(nout);
    this.initializers.push(tensor(`${layer.name}/W`, [nout, nin], wt), tensor(`${layer.name}/B`, [nout], bias));
    const preact = c.activation === 'linear' ? layer.name : `${layer.name}_preact`;
    this.addNode({
      opType: 'Gemm', name: preact, input: [this.input(layer)[0], `${layer.name}/W`, `${layer.name}/B`], output: [preact],
      attribute: [float('alpha', 1), float('beta', 1), int('transB', 1)],
    });
    this.addNode(activationNode(c.activation, preact, layer.name));
    this.tensorOf.set(layer.name, layer.name);
  }

  layer(layer, keep) {
    const c = layer.config;
    switch (layer.class_name) {
      case 'InputLayer': this.tensorOf.set(layer.name, layer.name); return;
      case 'Conv2D': this.conv(layer, keep); return;
      case 'BatchNormalization':
        if (!this.tensorOf.has(layer.name)) throw new Error(`${layer.name}: batch norm not after a convolution`);
        return;
      case 'Activation':
        this.addNode(activationNode(c.activation, this.input(layer)[0], layer.name));
        this.tensorOf.set(layer.name, layer.name);
        return;
      case 'MaxPooling2D': this.pool(layer, 'MaxPool'); return;
      case 'AveragePooling2D': this.pool(layer, 'AveragePool'); return;
      case 'Concatenate':
        if (c.axis !== 3 && c.axis !== -1) throw new Error(`${layer.name}: concat on axis ${c.axis} not supported`);
        this.addNode({ opType: 'Concat', name: layer.name, input: this.input(layer), output: [layer.name], attribute: [int('axis', 1)] });
        this.tensorOf.set(layer.name, layer.name);
        return;
      case 'Flatten':
        // Only used after global pooling here (1x1 spatial), where NHWC and NCHW flatten agree.
        this.addNode({ opType: 'Flatten', name: layer.name, input: this.input(layer), output: [layer.name], attribute: [int('axis', 1)] });
        this.tensorOf.set(layer.name, layer.name);
        return;
      case 'Dense': this.dense(layer); return;
      case 'Dropout': this.tensorOf.set(layer.name, this.input(layer)[0]); return;
      default: throw new Error(`${layer.name}: unsupported layer type ${layer.class_name}`);
    }
  }

  build(outputs, inputSize) {
    const keep = this.needed(outputs);
    for (const layer of this.model.layers) if (keep.has(layer.name)) this.layer(layer, keep);
    const inputName = this.model.inputs[0];
    const valueInfo = (name, dims) => ({
      name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
    });
    // Outputs are renamed to their Keras layer names so the manifest can refer to them.
    for (const out of outputs) {
      const t = this.tensorOf.get(out);
      if (t !== out) this.addNode({ opType: 'Identity', name: out, input: [t], output: [out] });
    }
    return {
      irVersion: 6,
      producerName: 'lookalike-keras-to-onnx',
      opsetImport: [{ domain: '', version: 11 }],
      graph: {
        name: 'lookalike',
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(inputName, ['N', 3, inputSize, inputSize])],
        output: outputs.map((o) => valueInfo(o, [])),
      },
    };
  }
}

function toOnnx(model, outputs, inputSize) {
  const proto = new GraphBuilder(model).build(outputs, inputSize);
  const message = onnx.ModelProto.fromObject(proto);
  return onnx.ModelProto.encode(message).finish();
}

module.exports = { toOnnx };

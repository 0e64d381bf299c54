'use strict';
// Reads the Keras layer model that nsfwjs ships wrapped in UMD JavaScript files:
// `model.min.js` exports {modelTopology, weightsManifest}; each `group1-shardNofM.min.js`
// exports one base64 string holding that shard's bytes. Weights are uint8-quantised
// (value = q * scale + min) and laid out in manifest order across the concatenated shards.
const path = require('path');

function loadUmd(file) {
  // The bundles are plain CommonJS-compatible UMD; require() evaluates them without a browser.
  return require(path.resolve(file));
}

function dequantise(spec, bytes) {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const q = spec.quantization;
  if (spec.dtype !== 'float32') throw new Error(`${spec.name}: unsupported dtype ${spec.dtype}`);
  if (!q) {
    if (bytes.length !== count * 4) throw new Error(`${spec.name}: expected ${count * 4} bytes`);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4));
  }
  if (q.dtype !== 'uint8') throw new Error(`${spec.name}: unsupported quantisation ${q.dtype}`);
  if (bytes.length !== count) throw new Error(`${spec.name}: expected ${count} bytes`);
  const out = new Float32Array(count);
  for (let i = 0; i < count; ++i) out[i] = bytes[i] * q.scale + q.min;
  return out;
}

function shardBytes(modelDir, group) {
  const parts = group.paths.map((p) => {
    const text = loadUmd(path.join(modelDir, `${p}.min.js`));
    if (typeof text !== 'string') throw new Error(`${p}: expected a base64 string export`);
    return Buffer.from(text, 'base64');
  });
  return Buffer.concat(parts);
}

// Returns {layers, inputs, outputs, weights: Map(name -> {shape, data: Float32Array}), raw}
function loadKerasModel(modelDir) {
  const model = loadUmd(path.join(modelDir, 'model.min.js'));
  if (!model.modelTopology || !model.weightsManifest) {
    throw new Error(`${modelDir}: model.min.js lacks modelTopology / weightsManifest`);
  }
  const weights = new Map();
  for (const group of model.weightsManifest) {
    const bytes = shardBytes(modelDir, group);
    let offset = 0;
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const width = spec.quantization ? 1 : 4;
      const slice = bytes.subarray(offset, offset + count * width);
      offset += count * width;
      weights.set(spec.name, { shape: spec.shape, data: dequantise(spec, slice) });
    }
    if (offset !== bytes.length) {
      throw new Error(`weight group uses ${offset} of ${bytes.length} shard bytes`);
    }
  }
  const config = model.modelTopology.model_config.config;
  return {
    layers: config.layers,
    inputs: config.input_layers.map((x) => x[0]),
    outputs: config.output_layers.map((x) => x[0]),
    weights,
    raw: model,
  };
}

module.exports = { loadKerasModel };

#!/usr/bin/env node
'use strict';
// Usage: node convert.js OUT_DIR
// Converts nsfwjs's InceptionV3 (pinned in package.json) into two ONNX graphs plus the
// JSON manifests the C++ engine reads:
//   inception_v3_full.onnx  the whole network ending in the 5-class softmax (conversion check)
//   inception_v3_gem.onnx   cut after mixed9, exposing mixed5..mixed9 for the GeM descriptor
//   inception_v3_mixed7.onnx cut after mixed7: the feature maps the trained head learns from
//                            (running no further than needed is 22-34% faster than the gem cut)
const fs = require('fs');
const path = require('path');
const { loadKerasModel } = require('./keras_model');
const { toOnnx } = require('./keras_to_onnx');

const DESCRIPTOR_BLOCKS = ['mixed5', 'mixed6', 'mixed7', 'mixed8', 'mixed9'];
const TRUNK_BLOCK = 'mixed7';
const INPUT_SIZE = 299;

function writeAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function manifest(onnxFile, outputs, extra) {
  return {
    format: 'lookalike-model-manifest/1',
    name: path.basename(onnxFile, '.onnx'),
    onnx: path.basename(onnxFile),
    source: 'nsfwjs@4.2.1 dist/models/inception_v3 (Keras 2.2.4, MIT)',
    input: {
      name: 'input_1', width: INPUT_SIZE, height: INPUT_SIZE, colour: 'rgb',
      // nsfwjs: pixels / 255, then tf.image.resizeBilinear(..., alignCorners=true), aspect not kept.
      scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch_bilinear_align_corners',
    },
    outputs,
    ...extra,
  };
}

function main() {
  const out = process.argv[2];
  if (!out) { console.error('usage: node convert.js OUT_DIR'); process.exit(2); }
  const modelDir = path.join(path.join(__dirname, 'node_modules', 'nsfwjs'), 'dist/models/inception_v3');
  fs.mkdirSync(out, { recursive: true });
  const started = Date.now();
  const model = loadKerasModel(modelDir);
  const full = path.join(out, 'inception_v3_full.onnx');
  writeAtomic(full, toOnnx(model, model.outputs, INPUT_SIZE));
  writeAtomic(path.join(out, 'inception_v3_full.json'), JSON.stringify(manifest(full, model.outputs, {
    classes: ['drawing', 'hentai', 'neutral', 'porn', 'sexy'],
  }), null, 2));
  const gem = path.join(out, 'inception_v3_gem.onnx');
  writeAtomic(gem, toOnnx(model, DESCRIPTOR_BLOCKS, INPUT_SIZE));
  writeAtomic(path.join(out, 'inception_v3_gem.json'), JSON.stringify(manifest(gem, DESCRIPTOR_BLOCKS, {
    descriptor: { pooling: 'gem', gem_p: 3, normalise_each: true },
  }), null, 2));
  const trunk = path.join(out, 'inception_v3_mixed7.onnx');
  writeAtomic(trunk, toOnnx(model, [TRUNK_BLOCK], INPUT_SIZE));
  writeAtomic(path.join(out, 'inception_v3_mixed7.json'), JSON.stringify(manifest(trunk, [TRUNK_BLOCK], {
    descriptor: { pooling: 'gem', gem_p: 3, normalise_each: true },
  }), null, 2));
  console.log(`converted ${model.layers.length} Keras layers, ${model.weights.size} weight tensors into ${out} in ${Date.now() - started} ms`);
}

main();

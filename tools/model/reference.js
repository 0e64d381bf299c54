#!/usr/bin/env node
'use strict';
// Usage: node reference.js OUT_DIR IMAGE.jpg [IMAGE.jpg ...]
// Runs the ORIGINAL nsfwjs Keras model with @tensorflow/tfjs (wasm backend) on each JPEG, using
// nsfwjs's own preprocessing, and writes what the C++ conversion test compares against:
//   NAME.rgb        decoded RGB bytes (height x width x 3), so both sides start from the same pixels
//   NAME.input.f32  the preprocessed 299x299x3 tensor tfjs fed to the model (NHWC float32)
//   NAME.json       {width, height, probabilities, gem: {mixedN: [...]}}
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const jpeg = require('jpeg-js');

const BLOCKS = ['mixed5', 'mixed6', 'mixed7', 'mixed8', 'mixed9'];
const modelDir = path.join(__dirname, 'node_modules', 'nsfwjs', 'dist', 'models', 'inception_v3');

async function loadOriginal() {
  const m = require(path.join(modelDir, 'model.min.js'));
  const group = m.weightsManifest[0];
  const data = Buffer.concat(group.paths.map((p) => Buffer.from(require(path.join(modelDir, `${p}.min.js`)), 'base64')));
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: group.weights, weightData }));
  const outputs = [model.outputs[0], ...BLOCKS.map((b) => model.getLayer(b).output)];
  return tf.model({ inputs: model.inputs, outputs });
}

// Generalised-mean pooling (p = 3) over H and W of an NHWC map, then L2 normalisation.
function gem(map) {
  return tf.tidy(() => {
    const pooled = map.clipByValue(1e-6, Infinity).pow(3).mean([1, 2]).pow(1 / 3).squeeze([0]);
    return pooled.div(pooled.norm());
  });
}

async function main() {
  const [out, ...images] = process.argv.slice(2);
  if (!out || !images.length) { console.error('usage: node reference.js OUT_DIR IMAGE...'); process.exit(2); }
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  await tf.setBackend('wasm');
  fs.mkdirSync(out, { recursive: true });
  const model = await loadOriginal();
  for (const file of images) {
    const started = Date.now();
    const name = path.basename(file).replace(/\.[^.]+$/, '');
    const decoded = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false });
    const rgb = Buffer.from(decoded.data);
    fs.writeFileSync(path.join(out, `${name}.rgb`), rgb);
    // Exactly nsfwjs's classify() preprocessing.
    const input = tf.tidy(() => tf.image.resizeBilinear(
      tf.tensor3d(rgb, [decoded.height, decoded.width, 3], 'int32').toFloat().div(tf.scalar(255)), [299, 299], true).reshape([1, 299, 299, 3]));
    fs.writeFileSync(path.join(out, `${name}.input.f32`), Buffer.from((await input.data()).buffer));
    const [probs, ...maps] = model.predict(input);
    const result = { width: decoded.width, height: decoded.height, probabilities: Array.from(await probs.data()), gem: {} };
    for (let i = 0; i < BLOCKS.length; ++i) result.gem[BLOCKS[i]] = Array.from(await gem(maps[i]).data());
    fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(result));
    tf.dispose([input, probs, ...maps]);
    console.log(`${file}: ${result.probabilities.map((p) => p.toFixed(5)).join(' ')} (${Date.now() - started} ms)`);
  }
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });

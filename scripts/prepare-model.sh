#!/usr/bin/env bash
# Converts nsfwjs's Keras InceptionV3 (pinned npm package) into models/*.onnx + manifests.
# Idempotent: npm ci runs only when the lockfile changed, the conversion only when its inputs did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/tools/model"
"$root/scripts/require-node.sh" prepare-model "$tools/package.json"
stamp="$tools/node_modules/.lookalike-lock-sha256"
want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
out="$root/models"
if [[ ! -f "$out/inception_v3_gem.onnx" || ! -f "$out/inception_v3_full.onnx" || ! -f "$out/inception_v3_mixed7.onnx" ]] ||
   [[ -n "$(find "$tools" -maxdepth 1 -name '*.js' -newer "$out/inception_v3_gem.onnx")" ]] ||
   [[ "$tools/package-lock.json" -nt "$out/inception_v3_gem.onnx" ]]; then
  node "$tools/convert.js" "$out"
fi

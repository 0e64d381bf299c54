#!/usr/bin/env bash
# Builds the web page into web/dist (served by `lookalike serve` at /). Idempotent and fast when
# nothing changed: `npm ci` runs only when web/package-lock.json changed (its sha256 is kept in
# web/node_modules/.lookalike-lock.sha256), and `npm run build` only when a source or config file
# is newer than web/dist/index.html. Needs the Node that web/package.json's engines.node names
# (>=18: Debian 12's nodejs 18.20 and npm 9.2 are enough); checked first by require-node.sh.
#   scripts/build-web.sh [--force]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
web="$root/web"
force=0
[[ "${1:-}" == "--force" ]] && force=1

# node and npm present and as new as web/package.json's engines.node (one clear line if not).
"$root/scripts/require-node.sh" build-web "$web/package.json"

stamp="$web/node_modules/.lookalike-lock.sha256"
want=$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)
if [[ $force == 1 || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "build-web: installing packages (npm ci)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
  force=1
fi

out="$web/dist/index.html"
sources=("$web/src" "$web/public" "$web/index.html" "$web/package.json" "$web/package-lock.json"
         "$web/vite.config.ts" "$web/tsconfig.json" "$web/tsconfig.app.json" "$web/tsconfig.node.json")
existing=()
for s in "${sources[@]}"; do [[ -e "$s" ]] && existing+=("$s"); done
if [[ $force == 0 && -f "$out" ]] && [[ -z "$(find "${existing[@]}" -type f -newer "$out" -print -quit)" ]]; then
  echo "build-web: web/dist is up to date"
  exit 0
fi

echo "build-web: building web/dist"
(cd "$web" && npm run --silent build)
# vite may keep the old index.html's mtime when its content did not change: mark the build.
touch "$out"

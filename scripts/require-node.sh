#!/usr/bin/env bash
# Stops early, with one line, when node or npm is missing or node is older than a package.json's
# engines.node asks for: the lowest version named there is the minimum (">=18" -> 18,
# "^20.19.0 || >=22.12" -> 20.19.0). Without this, a too-old Node fails deep inside the tooling
# (e.g. Vite 7+ on Node 18: "node:util has no export styleText"). npm's own version is not asked
# (Debian's npm takes a second to start): every Node >= 18 comes with an npm >= 7, which
# `npm ci` needs for our version-3 lockfiles.
#   scripts/require-node.sh WHO PACKAGE_JSON      (WHO prefixes the message: build-web, prepare-model)
set -euo pipefail
who=$1
pkg=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
rel=${pkg#"$root"/}

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "$who: $tool is missing: scripts/install-deps.sh installs Debian's nodejs and npm" >&2; exit 1; }
done

range=$(node -e 'var p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
                 console.log((p.engines && p.engines.node) || "")' "$pkg")
have=$(node --version); have=${have#v}
need=$(grep -oE '[0-9]+(\.[0-9]+){0,2}' <<<"$range" | sort -V | head -1 || true)
if [[ -n "$need" && "$(printf '%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]]; then
  echo "$who: found Node $have ($(command -v node)), but $rel needs Node $range: install Node $need or newer (https://nodejs.org/en/download; Debian 12's nodejs package is 18.20) and put it first in PATH" >&2
  exit 1
fi


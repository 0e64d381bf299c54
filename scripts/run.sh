#!/usr/bin/env bash
# README command 1: install, build, convert the model, import a catalog folder and serve it
# (the head on the shop's categories trains in the background while it serves).
#   scripts/run.sh [CATALOG] [--data DIR] [--port PORT] [--host HOST]
# CATALOG defaults to ../shared/datasets/fashion6-dev. A second run skips what is done: no
# reinstall, no rebuild, no re-embedding (the import resumes and stored photos are skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
catalog="$root/../shared/datasets/fashion6-dev"
data="$root/lookalike-data"
port=8080
host=127.0.0.1
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) catalog=$1; shift ;;
  esac
done
if [[ ! -e "$catalog" ]]; then
  echo "run.sh: catalog $catalog not found; pass a folder of category sub-folders or a CSV/JSONL manifest" >&2
  exit 2
fi
step() { printf '\n== %s\n' "$*"; }
step "dependencies"; "$root/scripts/install-deps.sh"
step "model"; "$root/scripts/prepare-model.sh"
step "build"; "$root/scripts/build.sh" release lookalike
if [[ -f "$root/web/package.json" ]]; then step "web page"; "$root/scripts/build-web.sh"; fi
# The import embeds the photos and learns the frozen recipe, which is enough to search; the
# server then answers at once and trains the head on the shop's categories in the background,
# switching to it when it is ready (`serve --background-training auto`).
step "import $catalog"; "$root/build/src/lookalike" --data "$data" import "$catalog" --no-head
step "serve on http://$host:$port (Ctrl-C stops)"
exec "$root/build/src/lookalike" --data "$data" serve --host "$host" --port "$port"

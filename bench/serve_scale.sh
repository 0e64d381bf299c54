#!/usr/bin/env bash
# `lookalike serve` at scale: start-up time, the server's memory (RssAnon: its own; RssFile:
# files mapped into it, the index snapshot's float16 copies) and HTTP latencies.
#
#   bench/serve_scale.sh rows [ITEMS] [DIR]     (default 1000000, /tmp/bench-serve)
#       ITEMS untrained rows (bench_store's), next to a serve of an empty catalog (the CNN and the
#       HTTP server, which issue 14's memory target leaves out); HTTP p50 of
#       GET /api/v1/items?category=X&limit=50 and /api/v1/stats. DIR/data is kept between runs.
#   bench/serve_scale.sh starts DIR RUNS LOOKALIKE[:DATA]...
#       RUNS start-ups of `serve` on DIR by each LOOKALIKE binary in turn (an A/B of two builds);
#       a binary given as LOOKALIKE:DATA starts on DATA instead (a copy in an older schema).
#   bench/serve_scale.sh catalog DIR [DATASET]
#       a trained catalog, e.g. one grown by `bench_scale --write-catalog` (docs/benchmarks.md):
#       the same figures, search latency under load (bench_http on DATASET's photos, default
#       ../shared/datasets/fashion6-dev), and a second start from the snapshot the first one
#       saved on its way out.
# Needs build/src/lookalike, build/bench/bench_store and build/bench/bench_http
# (scripts/build.sh release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-rows}
bin=$root/build/src/lookalike

pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; true' EXIT
# serve DATA LOG: starts a server on DATA, waits until it is ready; sets pid, port, ready_line.
serve() {
  : > "$2"
  "$bin" --data "$1" serve --port 0 --background-training off > "$2" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do
    ready_line=$(grep -m1 '^ready:' "$2" || true)
    [[ -n "$ready_line" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$2"; echo "serve exited"; exit 1; }
    sleep 0.2
  done
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$2" | grep -oE '[0-9]+$' | head -1)
}
rss() { awk '/^(RssAnon|RssFile|VmHWM):/ {printf "%s %.0f MB  ", $1, $2 / 1024}' "/proc/$pid/status"; }
stop() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

if [[ "$mode" == rows ]]; then
  items=${2:-1000000}
  dir=${3:-/tmp/bench-serve}
  mkdir -p "$dir"
  if [[ "$(cat "$dir/data/items" 2>/dev/null)" != "$items" ]]; then
    rm -rf "$dir/data"
    "$root/build/bench/bench_store" --items "$items" --dir "$dir/data" --runs 50 > "$dir/store.json"
    echo "$items" > "$dir/data/items"
  fi
  rm -rf "$dir/empty"
  serve "$dir/empty" "$dir/serve.log"
  echo "empty catalog:      $ready_line"
  echo "                    $(rss)"
  stop
  serve "$dir/data" "$dir/serve.log"
  echo "$items rows:       $ready_line"
  echo "                    $(rss)"
  "$root/build/bench/bench_store" --http-port "$port" --runs 200
  echo "after the requests: $(rss)"
  stop
elif [[ "$mode" == catalog ]]; then
  dir=${2:?usage: serve_scale.sh catalog DIR [DATASET]}
  dataset=${3:-$root/../shared/datasets/fashion6-dev}
  for start in first second; do
    serve "$dir" "$dir/serve-$start.log"
    echo "$start start: $ready_line"
    echo "                    $(rss)"
    grep -E 'caught up|rebuil' "$dir/serve-$start.log" || true
    if [[ "$start" == first ]]; then
      "$root/build/bench/bench_store" --http-port "$port" --runs 200
      "$root/build/bench/bench_http" --port "$port" --dataset "$dataset" --seconds 10 --threads 1 | grep clients=
      echo "after the requests: $(rss)"
    fi
    stop
  done
elif [[ "$mode" == starts ]]; then
  dir=${2:?usage: serve_scale.sh starts DIR RUNS LOOKALIKE[:DATA]...}
  runs=${3:?usage: serve_scale.sh starts DIR RUNS LOOKALIKE[:DATA]...}
  shift 3
  # Start-up only, binaries alternating (an A/B on one machine state: the page cache and the
  # CPU's share move between runs, so only runs side by side compare).
  for _ in $(seq 1 "$runs"); do
    for spec in "$@"; do
      bin=${spec%%:*}
      data=$dir
      [[ "$spec" == *:* ]] && data=${spec#*:}
      serve "$data" "$data/serve-starts.log"
      echo "$bin: $(grep -oE 'state of version.*' "$data/serve-starts.log" | head -1) | $ready_line"
      stop
    done
  done
else
  echo "usage: serve_scale.sh rows [ITEMS] [DIR] | catalog DIR [DATASET] | starts DIR RUNS LOOKALIKE[:DATA]..." >&2
  exit 2
fi

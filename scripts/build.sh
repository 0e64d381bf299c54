#!/usr/bin/env bash
# Configures (once) and builds. Incremental: a second run with nothing changed takes seconds.
#   scripts/build.sh [release|asan] [TARGET...]   (default: everything, tests included)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-release}
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done
case "$kind" in
  release) dir="$root/build"; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  asan) dir="$root/build-asan"; flags=(-DCMAKE_BUILD_TYPE=Debug -DLOOKALIKE_SANITIZE=ON -DLOOKALIKE_BUILD_BENCH=OFF) ;;
  *) echo "usage: scripts/build.sh [release|asan]" >&2; exit 2 ;;
esac
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$dir" "${flags[@]}" >/dev/null
fi
cmake --build "$dir" -j "$(nproc)" "${targets[@]}" -- --no-print-directory -s

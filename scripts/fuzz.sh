#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan+UBSan) and runs each for a while.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
out="$root/build-fuzz"
mkdir -p "$out"
flags=(-std=c++2b -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root/src"
       -isystem /usr/include/opencv4 -Wall -Wextra -Werror)
common=("$root/src/common/error.cc" "$root/src/common/files.cc")
build() {  # name sources... -- libs...
  local name=$1; shift
  local sources=() libs=()
  while (($#)) && [[ $1 != -- ]]; do sources+=("$1"); shift; done
  shift || true
  libs=("$@")
  if [[ ! -x "$out/$name" ]] || [[ -n "$(find "${sources[@]}" "$root/src" -newer "$out/$name" -name '*.h' -o -newer "$out/$name" -name '*.cc' | head -1)" ]]; then
    clang++ "${flags[@]}" "${sources[@]}" "${common[@]}" -o "$out/$name" "${libs[@]}" -lcrypto
  fi
}
build image_probe_fuzz "$root/fuzz/image_probe_fuzz.cc" "$root/src/image/image_probe.cc"
build manifest_fuzz "$root/fuzz/manifest_fuzz.cc" "$root/src/service/import_source.cc" -- -lcsv
build request_options_fuzz "$root/fuzz/request_options_fuzz.cc" "$root/src/http/request_options.cc"
for target in image_probe manifest request_options; do
  work="$out/corpus-$target"
  mkdir -p "$work"
  echo "fuzzing $target for ${seconds}s"
  "$out/${target}_fuzz" "$work" "$root/fuzz/corpus/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  test "${PIPESTATUS[0]}" -eq 0
done

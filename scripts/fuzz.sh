#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan+UBSan) into build-fuzz/ and runs each
# for a while, one after another, starting from its seed corpus fuzz/corpus/<target>/. Fails
# when a target crashes, leaks, times out or runs out of memory; the input that did it is kept
# as build-fuzz/artifacts/<target>-crash-* (or -leak-, -timeout-, -oom-).
#   scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]
#                                          build, then run every target (default 20 s each) or
#                                          the ones named
#   scripts/fuzz.sh --build                build only
#   scripts/fuzz.sh --list                 target names, one a line
# FUZZ_WORK_DIR=DIR puts the working corpora (DIR/corpus-<target>), logs (DIR/<target>.log)
# and artifacts (DIR/artifacts) elsewhere; bench/fuzz_campaign.sh uses it for long runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-fuzz"

# name | sources besides fuzz/<name>_fuzz.cc and src/common/{error,files}.cc | flags, libraries
targets=(
  "image_probe    | image/image_probe.cc                          |"
  "image_decode   | image/image_decoder.cc image/image_probe.cc   | -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lgif"
  "manifest       | service/import_source.cc                      | -lcsv"
  "model_manifest | model/model_manifest.cc                       |"
  "request_options| http/request_options.cc                       |"
  "index_snapshot | index/index_options.cc index/faiss_flat_index.cc index/faiss_compressed_index.cc index/float16_rows.cc index/dot_kernels.cc index/id_positions.cc index/pq_scan.cc common/vectors.cc | -lfaiss -llapack -lblas -lz -fopenmp"
  "url_policy     | http/image_fetch.cc                           | -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT -lcpp-httplib -lssl"
)
field() { echo "$1" | cut -d'|' -f"$2" | xargs; }
names=()
for t in "${targets[@]}"; do names+=("$(field "$t" 1)"); done

usage="usage: scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...] | --build | --list]"
run_names=("${names[@]}")
case "${1:-}" in
  --list) printf '%s\n' "${names[@]}"; exit 0 ;;
  --build) mode=build ;;
  '') mode=run; seconds=20 ;;
  *[!0-9]*) echo "$usage" >&2; exit 2 ;;
  *) mode=run; seconds=$1; shift
     if (($#)); then
       for t in "$@"; do
         [[ " ${names[*]} " == *" $t "* ]] || { echo "scripts/fuzz.sh: no target '$t' (${names[*]})" >&2; exit 2; }
       done
       run_names=("$@")
     fi ;;
esac

work_dir=${FUZZ_WORK_DIR:-$out}
mkdir -p "$out" "$work_dir/artifacts"
# clang 16 with libFuzzer's runtime. Debian 12: the packages clang-16 (the compiler) and
# libclang-rt-16-dev (libFuzzer, ASan, UBSan runtimes; not pulled in by a --no-install-recommends
# install). clang 14, Debian's default `clang`, cannot compile libstdc++'s <expected>, which
# image/image_decoder.h uses: that needs conditionally trivial destructors (P0848, clang 16).
# clang 16 implements them but still reports __cpp_concepts 201907, so the macro is raised.
cxx=${FUZZ_CXX:-clang++-16}
packages="install the Debian packages clang-16 and libclang-rt-16-dev (scripts/install-deps.sh --test does)"
if ! command -v "$cxx" >/dev/null; then
  echo "scripts/fuzz.sh: $cxx not found; $packages" >&2
  exit 1
fi
flags=(-std=c++2b -U__cpp_concepts -D__cpp_concepts=202002L -Wno-builtin-macro-redefined
       -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$root/src"
       -isystem /usr/include/opencv4 -Wall -Wextra -Werror)
probe="$out/.libfuzzer-probe"
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    "$cxx" -x c++ - -fsanitize=fuzzer,address,undefined -o "$probe" 2>"$probe.log"; then
  cat "$probe.log" >&2
  echo "scripts/fuzz.sh: $cxx cannot link a libFuzzer target (no libclang_rt.fuzzer); $packages" >&2
  exit 1
fi
if ! printf '#include <expected>\nstd::expected<int, int> f() { return 1; }\n' |
    "$cxx" "${flags[@]}" -x c++ - -fsyntax-only 2>"$probe.log"; then
  cat "$probe.log" >&2
  echo "scripts/fuzz.sh: $cxx cannot compile std::expected (clang 16 or newer needed); $packages" >&2
  exit 1
fi

common=("$root/src/common/error.cc" "$root/src/common/files.cc")
# Rebuilt when the target, one of its sources, any header under src/ or this script is newer
# than the binary (other engineers' edits to unrelated .cc files do not rebuild everything).
build() {  # name
  local name=$1 spec sources=() libs=() binary="$out/${1}_fuzz"
  for spec in "${targets[@]}"; do [[ $(field "$spec" 1) == "$name" ]] && break; done
  for s in $(field "$spec" 2); do sources+=("$root/src/$s"); done
  read -r -a libs <<<"$(field "$spec" 3)"
  local main="$root/fuzz/${name}_fuzz.cc"
  if [[ ! -x "$binary" ]] ||
     [[ -n "$(find "$main" "${sources[@]}" "${common[@]}" "$0" -newer "$binary" | head -1)" ]] ||
     [[ -n "$(find "$root/src" -name '*.h' -newer "$binary" | head -1)" ]]; then
    "$cxx" "${flags[@]}" "$main" "${sources[@]}" "${common[@]}" -o "$binary.tmp" "${libs[@]}" -lcrypto
    mv "$binary.tmp" "$binary"
  fi
}
pids=()
for name in "${names[@]}"; do
  build "$name" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if ((failed)); then echo "scripts/fuzz.sh: a fuzz target failed to build" >&2; exit 1; fi
[[ $mode == build ]] && exit 0

# Symbolized stack traces in the reports (clang 16's runtime does not find llvm-symbolizer alone).
for symbolizer in llvm-symbolizer-16 llvm-symbolizer; do
  if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && command -v "$symbolizer" >/dev/null; then
    export ASAN_SYMBOLIZER_PATH UBSAN_SYMBOLIZER_PATH
    ASAN_SYMBOLIZER_PATH=$(command -v "$symbolizer")
    UBSAN_SYMBOLIZER_PATH=$ASAN_SYMBOLIZER_PATH
  fi
done
# 10 s per input, 2 GB; the decoders' own chatter (libpng, libjpeg, OpenCV) on stdout/stderr is
# dropped (-close_fd_mask=3): libFuzzer and the sanitizers still report. bench/fuzz_campaign.sh
# runs the targets with the same options.
status=0
for name in "${run_names[@]}"; do
  work="$work_dir/corpus-$name"
  log="$work_dir/$name.log"
  mkdir -p "$work"
  echo "fuzzing $name for ${seconds}s"
  rc=0
  started=$SECONDS
  # The one known third-party leak (tests/lsan.supp: FAISS's read_index on a damaged file) is
  # suppressed as in the unit tests; any other leak fails the run.
  # intercept_tls_get_addr=0: see scripts/test.sh (LeakSanitizer's tracer crashing at exit).
  LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
  ASAN_OPTIONS="intercept_tls_get_addr=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  "$out/${name}_fuzz" "$work" "$root/fuzz/corpus/$name" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=3 \
    -artifact_prefix="$work_dir/artifacts/$name-" >"$log" 2>&1 || rc=$?
  echo "fuzz.sh: ran for $((SECONDS - started)) s, exit status $rc" >>"$log"
  grep -E "^#[0-9]+[[:space:]]+DONE" "$log" || true
  if ((rc != 0)); then
    echo "FAILED: $name exited with $rc; the input is kept in $work_dir/artifacts/$name-*" >&2
    grep -E -A25 "ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:" "$log" | head -60 >&2 ||
      tail -40 "$log" >&2
    status=1
  fi
done
exit $status

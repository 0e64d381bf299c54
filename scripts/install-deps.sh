#!/usr/bin/env bash
# Installs the Debian 12 packages Lookalike builds, tests and runs with. Idempotent: when every
# package is already installed it returns at once without touching apt.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also what the test suite needs (Chromium for the web e2e,
#                                    PostgreSQL 15 for the store tests)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopencv-dev libfaiss-dev libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev
  libcli11-dev libgif-dev libcsv-dev libssl-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpq-dev  # libpq: the PostgreSQL catalog store (src/store/postgres_store.cc); no server needed
  libopenblas0-pthread  # FAISS and the PCA use BLAS/LAPACK: the reference build is ~20x slower
  libtorch-dev libonnx-dev  # trains the category head (C++ API); writes it as ONNX
  libdnnl-dev  # oneDNN: the CNN inference engine (src/model/dnnl_network)
  ocl-icd-opencl-dev  # only a Recommends of libdnnl-dev, but its CMake config requires OpenCL
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(chromium fonts-noto-cjk)  # Korean glyphs in the page's screenshots
  packages+=(clang-16 libclang-rt-16-dev)  # scripts/fuzz.sh: libFuzzer+ASan+UBSan; clang 14 lacks std::expected
  packages+=(postgresql-15)  # the store tests' throwaway server (scripts/postgres.sh)
  packages+=(haproxy)  # the cluster test's load balancer (scripts/cluster.sh)
  packages+=(libomp-16-dev)  # scripts/fuzz.sh: omp.h for clang (FAISS headers include it)
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

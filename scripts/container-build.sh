#!/usr/bin/env bash
# Builds Lookalike's container image without a registry: the debian:12 base from Debian's apt
# (scripts/container-base.sh, skipped when it exists), then deploy/Containerfile with podman,
# tagged lookalike:latest. Slow (a C++ build plus the model conversion: docs/cluster.md,
# "Containers"), so not part of scripts/test.sh. The heavy steps run at nice 19 / idle I/O
# (LOOKALIKE_NICE="" turns that off). Prints the image's size and the build's time at the end.
#   scripts/container-build.sh [--tag lookalike:latest] [--no-cache]
# Needs root, Debian's apt mirror and the npm registry (the model comes from the nsfwjs package).
# LOOKALIKE_HOST_CA_DIR: folder of extra CA certificates (*.crt) the build's npm must trust
# (default /usr/local/share/ca-certificates, Debian's place for local CAs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
read -r -a nice_cmd <<<"${LOOKALIKE_NICE-nice -n 19 ionice -c3}"
tag=lookalike:latest
extra=()
while (($#)); do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --no-cache) extra+=(--no-cache); shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "container-build: unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/container-base.sh"
start=$(date +%s)
# --network=host: the build's apt and npm reach the mirror and the registry as the host does.
# The host's local CAs (an inspecting proxy's, say) go to the build stage's npm through a
# build-time mount, never into an image layer of the runtime stage (deploy/Containerfile).
ca_dir=${LOOKALIKE_HOST_CA_DIR:-/usr/local/share/ca-certificates}
if compgen -G "$ca_dir/*.crt" >/dev/null; then extra+=(--volume "$ca_dir:/run/host-ca:ro"); fi
"${nice_cmd[@]}" podman build --network=host --pull=never --layers "${extra[@]}" \
  -f "$root/deploy/Containerfile" -t "$tag" "$root"
secs=$(( $(date +%s) - start ))
echo "container-build: $tag built in $((secs / 60)) min $((secs % 60)) s"
podman image ls "$tag"

#!/usr/bin/env bash
# Builds the `debian:12` base image locally, for hosts that reach Debian's apt mirror but no
# container registry: a bookworm rootfs made by debootstrap (minbase variant, with
# bookworm-updates and bookworm-security in its apt sources), imported with `podman import` as
# localhost/debian:12, which is what podman names a local `debian:12` tag and where it looks
# first for `FROM debian:12` (deploy/Containerfile): found there, nothing is pulled.
# Idempotent: when the image exists it prints its id and returns at once.
#   scripts/container-base.sh [--force]      (--force: build and import it again)
# Needs root (debootstrap; rootful podman). Installs debootstrap, podman and runc from apt when
# missing. Environment: LOOKALIKE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# LOOKALIKE_NICE (default "nice -n 19 ionice -c3": the heavy steps yield to other work).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mirror=${LOOKALIKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
read -r -a nice_cmd <<<"${LOOKALIKE_NICE-nice -n 19 ionice -c3}"
image=localhost/debian:12
force=0
[[ "${1:-}" == "--force" ]] && force=1

fail() { echo "container-base: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "run as root (debootstrap needs it, and the images live in root's podman storage)"

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
if ((${#missing[@]})); then
  echo "container-base: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${nice_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
"$root/scripts/container-config.sh"

if ((force == 0)) && podman image exists "$image"; then
  echo "container-base: $image exists ($(podman image inspect --format '{{.Id}}' "$image" | cut -c1-12)); --force rebuilds it"
  exit 0
fi

work=$(mktemp -d /var/tmp/lookalike-debian12.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
start=$(date +%s)
echo "container-base: debootstrap bookworm from $mirror into $rootfs"
"${nice_cmd[@]}" debootstrap --variant=minbase --include=ca-certificates \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }

# What the official debian:12 image has: full apt sources, no apt caches, no recommends, and
# dpkg told not to unpack documentation (smaller layers for everything built on it).
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cat >"$rootfs/etc/apt/apt.conf.d/90lookalike-container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90lookalike-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# No services start in an image build.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/usr/share/doc/*/changelog* "$rootfs"/usr/share/man/* \
  "$rootfs"/usr/share/info/*
: >"$rootfs/etc/machine-id"
echo lookalike >"$rootfs/etc/hostname"

echo "container-base: importing as $image"
"${nice_cmd[@]}" tar -C "$rootfs" --numeric-owner -c . |
  podman import -q --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
    --message "debootstrap --variant=minbase bookworm $mirror, $(date -u +%F)" - "$image" >/dev/null
echo "container-base: $image built in $(( $(date +%s) - start )) s, $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) uncompressed"

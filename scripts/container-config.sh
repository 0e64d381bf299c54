#!/usr/bin/env bash
# Writes the podman settings Lookalike's container scripts rely on, once, into
# /etc/containers/containers.conf.d/50-lookalike.conf (a drop-in: the main containers.conf, if
# any, stays as it is). Debian 12's podman 4.3 on this kind of host (a VM, cgroup v1, no systemd
# as PID 1) needs:
#   runtime = "runc"            crun is not installed with Debian's podman here; runc is
#   cgroup_manager = "cgroupfs" no systemd to ask for cgroups
#   events_logger = "file"      no journald
#   default_ulimits             podman raises RLIMIT_NPROC (and NOFILE) to its own defaults, above
#                               this host's hard limits (96364 processes, 20000 files), which the
#                               VM refuses ("error setting rlimit type 6: operation not
#                               permitted"); modest limits below them, which the server's 512
#                               connections and a build's make -j fit in
#   pids_limit = 4096           a build's make -j and the server's threads fit
# Storage: the overlay driver on the host's ext4 (podman's default, /var/lib/containers/storage).
# Idempotent; prints nothing when the file is already current.
#   scripts/container-config.sh
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "container-config: run as root" >&2; exit 1; }
dir=/etc/containers/containers.conf.d
file=$dir/50-lookalike.conf
want=$(cat <<'EOF'
# Written by Lookalike's scripts/container-config.sh (see there why).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
pids_limit = 4096

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
)
if [[ -f "$file" && "$(cat "$file")" == "$want" ]]; then exit 0; fi
mkdir -p "$dir"
printf '%s\n' "$want" >"$file"
echo "container-config: wrote $file"

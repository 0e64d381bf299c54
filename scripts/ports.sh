# shellcheck shell=bash
# Loopback ports for the project's scripts (postgres.sh, cluster.sh): sourced, not run.

# Whether something accepts connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port on 127.0.0.1 that nothing listens on now (20000-49999); fails after 50 tries.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found on 127.0.0.1" >&2
  return 1
}

#!/usr/bin/env bash
# A throwaway PostgreSQL 15 (Debian's server binaries) for development and the store tests: its
# data in DIR, listening on 127.0.0.1 only (no Unix socket), the superuser `lookalike` trusted
# without a password from loopback, any other role by its password; a database `lookalike`.
#   scripts/postgres.sh start DIR [--port N]   starts it (initialising DIR the first time) and
#                                              prints "store: postgresql://lookalike@127.0.0.1:PORT/lookalike"
#   scripts/postgres.sh stop DIR               stops it (nothing to do when it is not running)
#   scripts/postgres.sh status DIR             prints the store line (exit 0), or "not running" (exit 3)
# `start` on a running DIR prints the same line again. Without --port it picks a free port the
# first time and keeps it while that port stays free. initdb refuses root: as root the server
# runs as the `postgres` system user and DIR is handed to it. Not for data you keep: fsync is off.
set -euo pipefail
# shellcheck source=scripts/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

bin=${LOOKALIKE_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
superuser=lookalike
database=lookalike

usage() {
  echo "usage: scripts/postgres.sh start DIR [--port N] | stop DIR | status DIR" >&2
  exit 2
}
fail() {
  echo "postgres.sh: $*" >&2
  exit 1
}

(($# >= 2)) || usage
command=$1
dir=$2
shift 2
port=""
while (($#)); do
  case "$1" in
    --port) [[ "${2:-}" =~ ^[0-9]+$ ]] || usage; port=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$command" == start || "$command" == stop || "$command" == status ]] || usage
if [[ ! -x "$bin/pg_ctl" || ! -x "$bin/initdb" ]]; then
  echo "postgres.sh: the PostgreSQL 15 server binaries are absent from $bin" \
    "(install postgresql-15: scripts/install-deps.sh --test)" >&2
  exit 4
fi

as_root=false
if [[ $(id -u) -eq 0 ]]; then as_root=true; fi
# Runs a server program as the owner of the data directory, from a directory it may enter,
# without the lock on DIR (fd 9), which the server would otherwise hold as long as it runs.
as_owner() {
  if $as_root; then
    (cd / && runuser -u postgres -- "$@" 9<&-)
  else
    (cd / && "$@" 9<&-)
  fi
}

running() {
  [[ -f "$dir/data/PG_VERSION" ]] && as_owner "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

# Line 4 of postmaster.pid is the port the running server listens on.
store_line() {
  echo "store: postgresql://$superuser@127.0.0.1:$(sed -n 4p "$dir/data/postmaster.pid")/$database"
}

initialise() {
  local out
  if ! out=$(as_owner "$bin/initdb" -D "$dir/data" -U "$superuser" -A trust -E UTF8 --locale=C \
    --no-sync --no-instructions 2>&1); then
    echo "$out" >&2
    fail "initdb failed in $dir/data"
  fi
  as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<EOF
# TCP on loopback only: the superuser without a password, every other role with its own.
host all $superuser 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
EOF
  as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
# scripts/postgres.sh: a throwaway server on loopback.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

start() {
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # Test processes started in parallel may all ask for the same server: one starts it.
  exec 9<"$dir"
  flock 9
  if running; then
    store_line
    return
  fi
  if $as_root; then
    chown postgres:postgres "$dir"
    runuser -u postgres -- test -w "$dir" ||
      fail "the postgres user cannot write $dir: every parent directory must be searchable (o+x)"
  fi
  [[ -f "$dir/data/PG_VERSION" ]] || initialise
  local fixed=$port tries=1
  if [[ -z "$fixed" ]]; then
    tries=5
    port=$(cat "$dir/port" 2>/dev/null || true)
    if [[ -z "$port" ]] || port_in_use "$port"; then port=$(free_port); fi
  fi
  # Another program may take the chosen port between the check and the start: pick again.
  for attempt in $(seq "$tries"); do
    if as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/data/server.log" -w -t 60 -s -o "-p $port" \
      >/dev/null 2>&1; then
      break
    fi
    if ((attempt == tries)); then
      tail -n 20 "$dir/data/server.log" >&2 || true
      fail "the server in $dir did not start on port $port (log: $dir/data/server.log)"
    fi
    port=$(free_port)
  done
  echo "$port" >"$dir/port"
  local psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres -v ON_ERROR_STOP=1)
  if [[ -z $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'") ]]; then
    "${psql[@]}" -c "CREATE DATABASE $database" >/dev/null
  fi
  store_line
}

case "$command" in
  start) start ;;
  stop)
    if running; then as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w -s; fi
    ;;
  status)
    if running; then
      store_line
    else
      echo "not running"
      exit 3
    fi
    ;;
esac

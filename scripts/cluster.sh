#!/usr/bin/env bash
# Lookalike on several processes sharing one PostgreSQL catalog, on this machine's loopback: the
# layout of docs/cluster.md (PostgreSQL, embedding workers, query replicas, HAProxy in front)
# for a demo and for the tests.
#   scripts/cluster.sh up [DIR] [--workers N] [--replicas M] [--port P] [--store URL]
#       starts what is not running yet (PostgreSQL in DIR/pg, unless --store names a server
#       that runs elsewhere; it is remembered in DIR/store) and prints "store: postgresql://..." and
#       "url: http://127.0.0.1:P" (the load balancer); then `LOOKALIKE_STORE=<store> lookalike
#       import PHOTOS` fills it and the url answers searches and serves the page.
#   scripts/cluster.sh status [DIR]   the same two lines and each process's state (exit 3: down)
#   scripts/cluster.sh down [DIR]     stops everything; the catalog stays in DIR/pg
# DIR defaults to ./lookalike-cluster; N defaults to 1, M to 2, P to a free port (kept in DIR).
# Replicas run `lookalike serve --store ...` with their own data directory (index snapshots,
# photo cache) in DIR/replica-I, workers `lookalike worker` in DIR/worker-J; logs beside them.
# Writes through the url need the admin token in DIR/admin-token.
set -euo pipefail
# shellcheck source=scripts/ports.sh
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LOOKALIKE_BIN:-$root/build/src/lookalike}

usage() {
  echo "usage: scripts/cluster.sh up|status|down [DIR] [--workers N] [--replicas M] [--port P] [--store URL]" >&2
  exit 2
}
fail() {
  echo "cluster.sh: $*" >&2
  exit 1
}

(($# >= 1)) || usage
command=$1
shift
dir=lookalike-cluster
if (($#)) && [[ "$1" != --* ]]; then
  dir=$1
  shift
fi
workers=1
replicas=2
port=""
external_store=""
number() { [[ "${1:-}" =~ ^[0-9]+$ ]] || fail "$2 needs a number, got '${1:-}'"; }
while (($#)); do
  case "$1" in
    --workers) number "${2:-}" --workers; workers=$2; shift 2 ;;
    --replicas) number "${2:-}" --replicas; replicas=$2; shift 2 ;;
    --port) number "${2:-}" --port; port=$2; shift 2 ;;
    --store)
      [[ "${2:-}" == postgres://* || "${2:-}" == postgresql://* ]] || fail "--store needs a postgresql:// URL"
      external_store=$2
      shift 2
      ;;
    *) usage ;;
  esac
done
[[ "$command" == up || "$command" == status || "$command" == down ]] || usage
((replicas >= 1 && replicas <= 32)) || fail "--replicas must be 1 to 32"
((workers <= 64)) || fail "--workers must be at most 64"

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
# A port kept in FILE while it stays free (or is ours), else a new one.
kept_port() {
  local file=$1 pidfile=$2 p
  p=$(cat "$file" 2>/dev/null || true)
  if [[ -z "$p" ]] || { port_in_use "$p" && ! alive "$pidfile"; }; then p=$(free_port); fi
  echo "$p" >"$file"
  echo "$p"
}
store_url() {
  if [[ -s "$dir/store" ]]; then cat "$dir/store"; else "$root/scripts/postgres.sh" status "$dir/pg" | sed -n 's/^store: //p'; fi
}
count() { local n=0; for f in "$dir/$1"-*.pid; do [[ -e "$f" ]] && n=$((n + 1)); done; echo "$n"; }

start_replica() {
  local i=$1 store=$2 p
  alive "$dir/replica-$i.pid" && return
  p=$(kept_port "$dir/replica-$i.port" "$dir/replica-$i.pid")
  # No background training: replicas serve versions; one machine trains (`lookalike train`).
  nohup "$bin" --data "$dir/replica-$i" --store "$store" serve --host 127.0.0.1 --port "$p" \
    --background-training off --admin-token-file "$dir/admin-token" >>"$dir/replica-$i.log" 2>&1 8<&- &
  echo $! >"$dir/replica-$i.pid"
}

start_worker() {
  local j=$1 store=$2
  alive "$dir/worker-$j.pid" && return
  nohup "$bin" --data "$dir/worker-$j" --store "$store" worker --name "worker-$j" \
    >>"$dir/worker-$j.log" 2>&1 8<&- &
  echo $! >"$dir/worker-$j.pid"
}

write_haproxy_config() {
  local p=$1 i
  {
    cat <<EOF
# Written by scripts/cluster.sh: the load balancer in front of the query replicas.
global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  # A connection refused by a replica that died is tried again on another one.
  retries 3
  option redispatch
  retry-on conn-failure empty-response 503
frontend lookalike
  bind 127.0.0.1:$p
  default_backend replicas
backend replicas
  balance roundrobin
  # A replica takes requests only while /readyz says it has loaded the catalog.
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1
EOF
    for ((i = 1; i <= $(count replica); i++)); do
      echo "  server replica-$i 127.0.0.1:$(cat "$dir/replica-$i.port") check"
    done
  } >"$dir/haproxy.cfg.new"
  mv "$dir/haproxy.cfg.new" "$dir/haproxy.cfg"
}

start_haproxy() {
  local p
  command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps.sh --test)"
  if [[ -n "$port" ]]; then
    echo "$port" >"$dir/haproxy.port"
  fi
  p=$(kept_port "$dir/haproxy.port" "$dir/haproxy.pid")
  write_haproxy_config "$p"
  haproxy -c -q -f "$dir/haproxy.cfg" || fail "haproxy refused $dir/haproxy.cfg"
  if alive "$dir/haproxy.pid"; then
    # A changed replica list: a soft reload hands the port to a new process.
    haproxy -D -f "$dir/haproxy.cfg" -p "$dir/haproxy.pid" -sf "$(cat "$dir/haproxy.pid")" 8<&- </dev/null >/dev/null
  else
    haproxy -D -f "$dir/haproxy.cfg" -p "$dir/haproxy.pid" 8<&- </dev/null >/dev/null
  fi
}

print_lines() {
  echo "store: $1"
  echo "url: http://127.0.0.1:$(cat "$dir/haproxy.port")"
}

up() {
  [[ -x "$bin" ]] || fail "no lookalike binary at $bin (build it: scripts/build.sh release, or set LOOKALIKE_BIN)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # One `up` at a time per DIR; the processes it starts must not inherit (and hold) the lock.
  exec 8<"$dir"
  flock 8
  local line store i
  if [[ -n "$external_store" ]]; then
    (umask 077 && echo "$external_store" >"$dir/store")  # it may hold a password
  fi
  if [[ -s "$dir/store" ]]; then
    store=$(cat "$dir/store")
  else
    line=$("$root/scripts/postgres.sh" start "$dir/pg" 8<&-) || fail "PostgreSQL did not start"
    store=${line#store: }
  fi
  if [[ ! -s "$dir/admin-token" ]]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin-token")
  fi
  for ((i = 1; i <= replicas; i++)); do start_replica "$i" "$store"; done
  for ((i = 1; i <= workers; i++)); do start_worker "$i" "$store"; done
  start_haproxy
  # Replicas bind their port at once and load the catalog after: wait for the listeners, not for
  # readiness (an empty catalog is not ready until it is imported and trained).
  for ((i = 1; i <= replicas; i++)); do
    for _ in $(seq 300); do
      port_in_use "$(cat "$dir/replica-$i.port")" && break
      alive "$dir/replica-$i.pid" || fail "replica $i exited: $(tail -n 3 "$dir/replica-$i.log")"
      sleep 0.1
    done
  done
  print_lines "$store"
}

status() {
  [[ -d "$dir" ]] || { echo "not running"; exit 3; }
  local store i ready down=0
  store=$(store_url || true)
  [[ -n "$store" ]] || { echo "not running"; exit 3; }
  alive "$dir/haproxy.pid" || down=1
  print_lines "$store"
  for ((i = 1; i <= $(count replica); i++)); do
    if alive "$dir/replica-$i.pid"; then
      ready=$( (exec 3<>"/dev/tcp/127.0.0.1/$(cat "$dir/replica-$i.port")" &&
        printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n 1 <&3) 2>/dev/null || true)
      echo "replica $i: pid $(cat "$dir/replica-$i.pid"), port $(cat "$dir/replica-$i.port"), ${ready:-no answer}"
    else
      echo "replica $i: not running (log $dir/replica-$i.log)"
      down=1
    fi
  done
  for ((i = 1; i <= $(count worker); i++)); do
    if alive "$dir/worker-$i.pid"; then
      echo "worker $i: pid $(cat "$dir/worker-$i.pid")"
    else
      echo "worker $i: not running (log $dir/worker-$i.log)"
    fi
  done
  ((down == 0)) || exit 3
}

stop_pidfile() {
  local file=$1
  if alive "$file"; then
    local pid
    pid=$(cat "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  [[ -d "$dir" ]] || return 0
  local f
  stop_pidfile "$dir/haproxy.pid"
  for f in "$dir"/worker-*.pid "$dir"/replica-*.pid; do [[ -e "$f" ]] && stop_pidfile "$f"; done
  # A server given with --store is not ours to stop.
  [[ -s "$dir/store" ]] || "$root/scripts/postgres.sh" stop "$dir/pg" 2>/dev/null || true
}

"$command"

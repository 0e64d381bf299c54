#!/usr/bin/env bash
# kill -9 soak: KILLS kills at random moments of an import, a head training, a run of adds and
# removes, and model switches, in turn. After each kill `lookalike check` must pass and every
# write that was acknowledged (the command exited 0) must be there.
#   bench/kill_soak.sh [KILLS] [DATASET]        (default 20, ../shared/datasets/fashion6-dev)
# Needs build/src/lookalike (scripts/build.sh release). Prints one line per kill and a summary.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kills=${1:-20}
dataset=${2:-$root/../shared/datasets/fashion6-dev}
bin=$root/build/src/lookalike
work=$(mktemp -d /tmp/lookalike-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
data=$work/data
seed=${SOAK_SEED:-42}
RANDOM=$seed

subset() {  # subset DIR FROM COUNT: symlinks to photos FROM..FROM+COUNT-1 of every category
  for category in "$dataset"/*/; do
    local name; name=$(basename "$category")
    mkdir -p "$1/$name"
    ls "$category" | sort -n | sed -n "$(($2 + 1)),$(($2 + $3))p" | while read -r f; do ln -sf "$category$f" "$1/$name/$f"; done
  done
}

subset "$work/base" 0 20
subset "$work/more" 20 40
"$bin" --data "$data" import "$work/base" --no-head >/dev/null 2>&1 || { echo "setup import failed"; exit 1; }
"$bin" --data "$data" train --head-only --epochs 2 --activate-anyway >/dev/null 2>&1 || { echo "setup training failed"; exit 1; }
photos=("$work"/more/*/*)
: >"$work/acked-added"
: >"$work/acked-removed"
: >"$work/attempted-removes"

adds_and_removes() {  # acknowledges each add and remove that exited 0
  local i=0
  while true; do
    local id="soak-$1-$i" photo=${photos[$(( (RANDOM * 32768 + RANDOM) % ${#photos[@]} ))]}
    if "$bin" --data "$data" add "$photo" --id "$id" --category "$(basename "$(dirname "$photo")")" >/dev/null 2>&1; then
      echo "$id" >>"$work/acked-added"
    fi
    local victim; victim=$(shuf -n 1 "$work/acked-added" 2>/dev/null)
    if [[ -n "$victim" ]] && ! grep -qx "$victim" "$work/acked-removed"; then
      # A remove the kill interrupts may or may not have committed: its item may be gone.
      echo "$victim" >>"$work/attempted-removes"
      "$bin" --data "$data" remove "$victim" >/dev/null 2>&1 && echo "$victim" >>"$work/acked-removed"
    fi
    i=$((i + 1))
  done
}

switches() {
  while true; do
    "$bin" --data "$data" model use 0 >/dev/null 2>&1
    "$bin" --data "$data" model use 1 >/dev/null 2>&1
  done
}

passed=0 lost=0
started=$(date +%s)
for ((k = 1; k <= kills; k++)); do
  case $((k % 4)) in
    1) what="import"; setsid "$bin" --data "$data" import "$work/more" --no-train >/dev/null 2>&1 & ;;
    2) what="train"; setsid "$bin" --data "$data" train --epochs 3 >/dev/null 2>&1 & ;;
    3) what="add/remove"; setsid bash -c "$(declare -f adds_and_removes); bin=$bin data=$data work=$work \
         photos=(${photos[*]}); adds_and_removes $k" >/dev/null 2>&1 & ;;
    0) what="model switch"; setsid bash -c "$(declare -f switches); bin=$bin data=$data; switches" >/dev/null 2>&1 & ;;
  esac
  pid=$!
  delay=$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.5 + 7.5 * r / 32767 }')
  sleep "$delay"
  kill -9 -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  check=$("$bin" --data "$data" check 2>&1); status=$?
  missing=0
  "$bin" --data "$data" list --limit 100000 --json >"$work/listed" 2>/dev/null
  while read -r id; do
    [[ -z "$id" ]] && continue
    present=$(grep -c "\"$id\"" "$work/listed")
    if grep -qx "$id" "$work/acked-removed"; then
      [[ $present -eq 0 ]] || missing=$((missing + 1))
    elif ! grep -qx "$id" "$work/attempted-removes"; then
      [[ $present -gt 0 ]] || missing=$((missing + 1))
    fi
  done <"$work/acked-added"
  lost=$((lost + missing))
  [[ $status -eq 0 ]] && passed=$((passed + 1))
  echo "kill $k: $what after ${delay}s: check exit $status ($(echo "$check" | tail -1)); acknowledged writes wrong: $missing"
done
echo "kill -9 soak: $kills kills in $(($(date +%s) - started)) s, check passed after $passed, acknowledged writes lost: $lost," \
     "adds acknowledged: $(wc -l <"$work/acked-added"), removes acknowledged: $(wc -l <"$work/acked-removed")"
[[ $passed -eq $kills && $lost -eq 0 ]]

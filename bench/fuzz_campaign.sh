#!/usr/bin/env bash
# A longer fuzzing campaign: every libFuzzer target of scripts/fuzz.sh for SECONDS each, one after
# another, each from its seed corpus (fuzz/corpus/<target>) in a fresh working corpus, with the
# same options as the test suite's short run. Prints, per target: executions, exec/s, coverage
# (cov: edges and ft: features from libFuzzer's last status line), corpus size, peak RSS and
# crashes, as a Markdown table (also written to OUT/summary.md). Exits non-zero when any target
# crashed, leaked, timed out or ran out of memory; the input that did it stays in OUT/artifacts.
#   bench/fuzz_campaign.sh [SECONDS [TARGET...]]   (default 600 s, every target;
#                                                   OUT = build-fuzz/campaign-DATE-TIME)
# Long: run it as `nice -n 19 bench/fuzz_campaign.sh 600`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: bench/fuzz_campaign.sh [SECONDS [TARGET...]]" >&2
  exit 2
fi
out="$root/build-fuzz/campaign-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
"$root/scripts/fuzz.sh" --build
if (($#)); then
  names=("$@")
else
  mapfile -t names < <("$root/scripts/fuzz.sh" --list)
fi
echo "fuzz campaign: ${#names[@]} targets x ${seconds}s in $out"

status=0
FUZZ_WORK_DIR="$out" "$root/scripts/fuzz.sh" "$seconds" "${names[@]}" || status=$?

final_stat() {  # LOG NAME: the value of stat::NAME in libFuzzer's final stats, or ?
  local v
  v=$(sed -nE "s/^stat::$2:[[:space:]]*([0-9]+).*/\1/p" "$1" | tail -1)
  echo "${v:-?}"
}
table() {
  echo "| target | seconds | executions | exec/s | cov | ft | corpus (units / size) | new units | peak RSS | crashes |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in "${names[@]}"; do
    local log="$out/$name.log" last cov ft corp crashes ran
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/([0-9]+[A-Za-z]*).*/\1 \/ \2/p' <<<"$last")
    crashes=$(find "$out/artifacts" -name "$name-*" -type f | wc -l)
    ran=$(sed -nE 's/^fuzz.sh: ran for ([0-9]+) s.*/\1/p' "$log")
    echo "| $name | ${ran:-?} | $(final_stat "$log" number_of_executed_units) | $(final_stat "$log" average_exec_per_sec)" \
         "| ${cov:-?} | ${ft:-?} | ${corp:-?} | $(final_stat "$log" new_units_added) | $(final_stat "$log" peak_rss_mb) MB" \
         "| $crashes |"
  done
}
table | tee "$out/summary.md"
if ((status != 0)); then
  echo "fuzz campaign: a target failed; inputs kept in $out/artifacts:" >&2
  ls -l "$out/artifacts" >&2
fi
exit $status

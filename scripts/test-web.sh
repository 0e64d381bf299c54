#!/usr/bin/env bash
# The web page's tests: builds it (scripts/build-web.sh), runs the Vitest unit tests (jsdom), then
# type-checks and runs the end-to-end tests (Playwright Test: `cd web && npx playwright test`,
# web/playwright.config.ts), which drive Debian's Chromium against a real `lookalike serve` holding
# a small subset of ../shared/datasets/fashion6-dev (skipped when that folder is absent, unless
# CI=true, which also gives each failed test one retry).
# Needs build/src/lookalike (scripts/build.sh) and /usr/bin/chromium (scripts/install-deps.sh --test).
# Screenshots and logs: web/test-output/ (e2e.log: the run's output; report/: Playwright's HTML
# report, `npx playwright show-report test-output/report` from web/; results/: screenshots and traces of failed tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)

scripts/build-web.sh
t_build=$(now)

if [[ ! -x "$root/build/src/lookalike" ]]; then
  echo "test-web: $root/build/src/lookalike is missing: build the server first (scripts/build.sh)" >&2
  exit 1
fi

mkdir -p web/test-output
unit_rc=0
(cd web && npx vitest run --reporter=default --reporter=json --outputFile=test-output/vitest.json) || unit_rc=$?
t_unit=$(now)

rm -f web/test-output/e2e.json
set +e
(cd web && npx tsc -p tsconfig.e2e.json --noEmit && npx playwright test) 2>&1 | tee web/test-output/e2e.log
e2e_rc=${PIPESTATUS[0]}
set -e
t_e2e=$(now)

# One summary over both: counts from Vitest's and Playwright's JSON reports. A test that failed and
# then passed on its retry (CI=true) counts as passed, and as flaky; an error outside the tests
# (the checks in web/e2e/global-setup.ts) as a failure.
read -r unit_pass unit_fail < <(node -e '
  try { const r = require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites || 0)); }
  catch { console.log(0, 1); }' "$root/web/test-output/vitest.json")
read -r e2e_pass e2e_fail e2e_flaky e2e_skipped < <(node -e '
  try { const r = require(process.argv[1]), s = r.stats; console.log(s.expected + s.flaky, s.unexpected + r.errors.length, s.flaky, s.skipped); }
  catch { console.log(0, 1, 0, 0); }' "$root/web/test-output/e2e.json")
[[ $unit_rc != 0 && $unit_fail == 0 ]] && unit_fail=1
[[ $e2e_rc != 0 && $e2e_fail == 0 ]] && e2e_fail=1

echo "test-web: build $(secs "$t0" "$t_build") s, unit $(secs "$t_build" "$t_unit") s ($unit_pass passed, $unit_fail failed), e2e $(secs "$t_unit" "$t_e2e") s ($e2e_pass passed, $e2e_fail failed, $e2e_flaky flaky, $e2e_skipped skipped)"
echo "web: $((unit_pass + e2e_pass)) passed, $((unit_fail + e2e_fail)) failed"
[[ $unit_rc == 0 && $e2e_rc == 0 ]]

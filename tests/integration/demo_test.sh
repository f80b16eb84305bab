#!/usr/bin/env bash
# The README's demo, run as a newcomer runs it (with the test build's binary): it must end
# with exit 0, tell both acts, and leave no simulator behind.
#   demo_test.sh ROLLOUT_BINARY SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
out=$(mktemp)
# The demo's own folder (its mktemp -d lands under this TMPDIR): its simulator's --request-log
# names it, so that a simulator of another suite running beside this one is not taken for it.
tmp=$(mktemp -d)
trap 'rm -rf "$out" "$tmp"' EXIT
TMPDIR=$tmp ROLLOUT_BIN=$bin timeout 300 bash "$src/scripts/demo.sh" >"$out" 2>&1
code=$?
fail() { echo "demo_test: $*"; echo "---- the demo's output:"; cat "$out"; exit 1; }
[ "$code" -eq 0 ] || fail "scripts/demo.sh exited $code"
for expected in \
  "Act 1: firmware 2.4" \
  "(exit code 4: paused, waiting for a person)" \
  "approved by" \
  "(exit code 0: completed)" \
  "run_completed" \
  "bench-flaky" \
  "Act 2: firmware 2.5 is a bad build" \
  "(exit code 3: stopped by a failed gate; on_failure ran)" \
  "rolled_back" \
  "sensor-fw-2.4            completed" \
  "sensor-fw-2.5            stopped" \
  "deploy_update calls the simulator applied: 6" \
  "The demo went as told."; do
  grep -qF -- "$expected" "$out" || fail "the output lacks: $expected"
done
# Act 2's devices: every canary device listed with its update id; at least one failed.
grep -qE "^canary +d-[0-9a-f-]+ +canary-000[1-5] +Canary +[0-9]+ +failed" "$out" ||
  fail "act 2 lists no failed canary device with its update"
if pgrep -f "sim --fleet examples/fleets/small.yaml .*--request-log $tmp/" >/dev/null; then
  fail "the demo left its simulator running"
fi
echo "demo_test: the demo went as told"

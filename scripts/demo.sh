#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then roll firmware out to a simulated
# fleet of 55 devices, with a canary, two regions in parallel, a person's approval, and
# the rest; then show what happened. A second act shows a bad build caught by its canary
# and rolled back. Takes well under a minute; exits 0 when both acts went as told.
#   ROLLOUT_BIN=path/to/rollout  use that binary: no setup, no build (tests/demo_test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ROLLOUT_BIN:-}" ]; then
  bash scripts/setup.sh
  cmake -S . -B build -G Ninja >/dev/null
  cmake --build build --target rollout
  ROLLOUT_BIN=build/rollout
fi
rollout() { "$ROLLOUT_BIN" "$@"; }

work=$(mktemp -d)
sim_pid=
trap 'if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
export ROLLOUT_STATE=$work/rollout.db
export UPSWIFT_USER_TOKEN=demo-token   # the simulator takes any token

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
act() { printf '\n\033[1;7m %s \033[0m\n' "$*"; }
# Runs a rollout command that must end with the given exit code; anything else ends the demo.
expect() {
  local want=$1; shift
  local code=0
  rollout "$@" || code=$?
  if [ "$code" -ne "$want" ]; then
    echo "demo: 'rollout $*' exited $code, expected $want" >&2
    exit 1
  fi
  echo "(exit code $code: $(meaning "$code"))"
}
meaning() {
  case $1 in
    0) echo "completed";;
    3) echo "stopped by a failed gate; on_failure ran";;
    4) echo "paused, waiting for a person";;
    *) echo "see rollout --help";;
  esac
}

act "Act 1: firmware 2.4, from the canary to the whole fleet"

step "Check the plan"
rollout validate plans/canary-then-fleet.yaml

step "Start the fleet simulator (55 devices; one simulated minute passes every 0.1 s)"
# The binary itself in the background (not the shell function), so that $! is its pid.
"$ROLLOUT_BIN" sim --fleet examples/fleets/small.yaml --listen 127.0.0.1:0 --time-scale 600 \
  --request-log "$work/requests.jsonl" > "$work/sim.out" &
sim_pid=$!
for _ in $(seq 100); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/sim.out"
export UPSWIFT_API_URL=$(grep -o 'http://[^ ]*/v1/' "$work/sim.out")

step "rollout plan: what each stage will target, read from the fleet (nothing is sent)"
rollout plan plans/canary-then-fleet.yaml

step "rollout apply: canary, then eu and us in parallel (us waits for a person), then everyone"
expect 4 apply plans/canary-then-fleet.yaml --yes --time-scale 600

step "A person looks at eu's numbers and approves us"
rollout approve last us --comment "EU healthy, go ahead"

step "rollout resume: picks up from the state database"
expect 0 resume last --time-scale 600

step "What happened"
rollout show last
step "The devices that did not succeed (everyone's gate allows one in twenty)"
rollout show last --devices --status failed --status aborted --status missing

act "Act 2: firmware 2.5 is a bad build; the canary catches it"

step "rollout apply: the canary's devices fail, its gate fails at once, 2.4 goes back on them"
expect 3 apply examples/demo/bad-build.yaml --yes --time-scale 600

step "Which devices failed, on which update, since when"
rollout show last --devices --stage canary

step "All runs"
rollout runs
echo
applied=$(grep -c '"applied":true' "$work/requests.jsonl" || true)
echo "deploy_update calls the simulator applied: $applied (act 1: one per stage; act 2: the canary and its rollback)"
printf '\n\033[1mThe demo went as told.\033[0m\n'

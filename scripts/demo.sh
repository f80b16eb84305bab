#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then roll firmware out to a simulated
# fleet of 55 devices, with a canary, two regions in parallel, a person's approval, and
# the rest; then show what happened. Takes well under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target rollout

work=$(mktemp -d)
trap 'kill "$sim_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
export ROLLOUT_STATE=$work/rollout.db
export UPSWIFT_USER_TOKEN=demo-token   # the simulator takes any token

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Check the plan"
build/rollout validate plans/canary-then-fleet.yaml

step "Start the fleet simulator (55 devices; one simulated minute passes every 0.1 s)"
build/rollout sim --fleet examples/fleets/small.yaml --listen 127.0.0.1:0 --time-scale 600 \
  --request-log "$work/requests.jsonl" > "$work/sim.out" &
sim_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/sim.out"
export UPSWIFT_API_URL=$(grep -o 'http://[^ ]*/v1/' "$work/sim.out")

step "rollout apply: canary, then eu and us in parallel (us waits for a person), then everyone"
set +e
build/rollout apply plans/canary-then-fleet.yaml --yes --time-scale 600
code=$?
set -e
echo "(exit code $code: 4 means paused, waiting for a person)"

step "A person looks at eu's numbers and approves us"
build/rollout approve last us --comment "EU healthy, go ahead"

step "rollout resume: picks up from the state database"
build/rollout resume last --time-scale 600

step "What happened"
build/rollout show last
echo
build/rollout runs
echo
echo "deploy_update calls the simulator applied: $(grep -c '"applied":true' "$work/requests.jsonl")"

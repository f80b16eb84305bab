#!/usr/bin/env bash
# The long part of the reliability harness (CI runs the short part through ctest):
#   - SIGKILL at TRIALS random moments of a run (default 200), each resumed until it ends;
#     every run must end with each stage's deploy_update applied exactly once (the
#     simulator's request log) and PRAGMA integrity_check ok;
#   - TRIALS fault mixes (429s, 500s, half the deploy_update answers dropped after applying
#     on reused connections, idle keep-alive connections closed at random), each with a
#     SIGKILL at a random moment, alternately against `rollout sim` and the contract-only
#     fake; FREEZES SIGSTOP-past-the-lease trials with a takeover and SIGCONT (default 20);
#     each: 0 duplicates, 0 intents without an outcome, PRAGMA integrity_check ok;
#   - the plan fuzzer for FUZZ_SECONDS (default 1800).
# Usage: tests/reliability/long.sh [TRIALS] [FUZZ_SECONDS] [SEED] [FREEZES]
# Takes about 40 minutes for 200 + 200 trials on 2 cores, plus the fuzzing time.
set -euo pipefail
trials=${1:-200}
fuzz_seconds=${2:-1800}
seed=${3:-$(date +%s)}
freezes=${4:-20}
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target rollout
echo "== ${trials} random SIGKILL trials (seed ${seed}: rerun the same moments with it)"
/usr/bin/python3 -m pytest tests/integration/test_cli_kills.py -v -p no:cacheprovider \
  --rollout=build/rollout --source=. -k sigkill_after --random-kills "$trials" --kill-seed "$seed"
echo "== ${trials} fault-mix trials with a random SIGKILL, ${freezes} freeze-and-takeover trials (first seed ${seed})"
/usr/bin/python3 -m pytest tests/integration/test_never_twice.py -v -p no:cacheprovider \
  --rollout=build/rollout --source=. --seeds "$trials" --freezes "$freezes" --first-seed "$seed"
echo "== plan fuzzer, ${fuzz_seconds}s"
bash tests/fuzz/run.sh "$fuzz_seconds"

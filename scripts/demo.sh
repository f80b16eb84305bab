#!/usr/bin/env bash
# The main job on a fresh machine: install, build, then check and preview every plan in plans/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target rollout
for plan in plans/*.yaml; do
  echo
  echo "==> rollout validate $plan"
  build/rollout validate "$plan"
  echo "==> rollout plan --offline $plan"
  build/rollout plan --offline "$plan"
done

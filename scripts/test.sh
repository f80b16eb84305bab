#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite.
# This is the README's test command, and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DROLLOUT_WERROR=ON
cmake --build build
ctest --test-dir build --output-on-failure "$@"

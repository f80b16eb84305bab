#!/usr/bin/env bash
# Builds the plan fuzzer with clang (libFuzzer + ASan + UBSan) and runs it for a bounded time.
#   tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
# CI runs it briefly through ctest; run it longer by hand: tests/fuzz/run.sh 3600
set -euo pipefail
seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${2:-$src/build-fuzz}

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DROLLOUT_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target plan_fuzzer >/dev/null

# The seed corpus: the example plans and the malformed ones, copied so the run can add to it.
corpus=$build/fuzz-corpus
mkdir -p "$corpus"
cp "$src"/plans/*.yaml "$src"/tests/plans/invalid/*.yaml "$corpus"/
cd "$build"
"$build/tests/plan_fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$corpus" 2>&1 | tail -n 15
echo "plan fuzzer: ${seconds}s without a crash"

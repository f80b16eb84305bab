#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs the whole test suite,
# then the suites that exercise memory and threads again under AddressSanitizer with
# UndefinedBehaviorSanitizer, and under ThreadSanitizer.
# This is the README's test command, and exactly what CI (.ci/run) runs.
#   scripts/test.sh           everything (on 2 cores most of the time goes to compiling;
#                             the time of each part is printed at the end)
#   scripts/test.sh --quick   the main build's suite only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
if [ "${1:-}" = "--quick" ]; then quick=true; fi

# How long each part took, printed at the end (and when a part fails).
parts=()
mark=$SECONDS
part() { parts+=("$(printf '%-34s %4d s' "$1" $((SECONDS - mark)))"); mark=$SECONDS; }
report() {
  local rc=$?
  echo "== time per part (total $SECONDS s)"
  for p in "${parts[@]}"; do echo "  $p"; done
  if [ "$rc" -ne 0 ]; then echo "  the part after these failed after $((SECONDS - mark)) s"; fi
}
trap report EXIT

bash scripts/setup.sh
part "packages (scripts/setup.sh)"
# Optimised as users build it, but without debug info, to keep compiling short on 2 cores.
cmake -S . -B build -G Ninja -DROLLOUT_WERROR=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"
cmake --build build
part "main build"
# The suites are independent (their own directories, servers on port 0), and mostly wait on
# their servers and simulated bakes (about half the CPU is idle at two per core): two per
# core, the longest started first (each entry's COST in tests/CMakeLists.txt).
jobs=$(( $(nproc) * 2 ))
ctest --test-dir build --output-on-failure -j"$jobs"
part "main suite (ctest)"
$quick && exit 0

# The suites that run our code under sanitizers: the unit and integration tests, and the
# binary end to end under ASan (its SIGKILL trials test logic, which the main build
# covers). -g1: line tables only, to keep compiling short. The CLI's files six to a unit, as
# in the main build (each alone doubled this build's time).
echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -G Ninja -DROLLOUT_WERROR=ON -DROLLOUT_SANITIZE=address,undefined \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DROLLOUT_RANDOM_KILLS=0 \
  -DROLLOUT_E2E_SKIP=sigkill_at >/dev/null
cmake --build build-asan --target unit_tests integration_tests rehearsal_tests rollout
part "ASan+UBSan build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -R '^(unit|unit_pg_1|unit_pg_2|integration|rehearsal|seed_python_example|e2e_runs|e2e_kills|e2e_views|e2e_plans|hostile)$'
part "ASan+UBSan suites"

# Threads: the simulator's server on its own thread beside the client (apply --simulate does
# that too), which is what the integration tests exercise; and rehearsals run at once.
echo "== ThreadSanitizer"
cmake -S . -B build-tsan -G Ninja -DROLLOUT_WERROR=ON -DROLLOUT_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" >/dev/null
cmake --build build-tsan --target integration_tests rehearsal_tests
part "TSan build"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure -R '^(integration|rehearsal)$'
part "TSan suites"

#!/usr/bin/env bash
# Runs every benchmark side by side with its baseline and writes tests/bench/RESULTS.md.
#   tests/bench/run.sh            (about two minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$(pwd)
bash scripts/setup.sh
command -v wrk >/dev/null || (apt-get install -y -qq wrk >/dev/null)
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench --target rollout rollout_bench >/dev/null
bench=build-bench/tests/rollout_bench
work=$(mktemp -d)
chmod 755 "$work"  # the PostgreSQL server's own user (scripts/pg.sh, as root) passes through it
sims=()
trap 'kill "${sims[@]}" 2>/dev/null || true; bash scripts/pg.sh stop "$work/pg"; rm -rf "$work"' EXIT

start_sim() {  # FLEET NAME: starts a simulator; its URL is then in $work/NAME.url
  build-bench/rollout sim --fleet "$1" --listen 127.0.0.1:0 > "$work/sim-$2.out" 2>&1 &
  sims+=($!)
  for _ in $(seq 100); do grep -q listening "$work/sim-$2.out" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://[^ ]*/v1/' "$work/sim-$2.out" > "$work/$2.url"
}

start_sim examples/fleets/small.yaml small
url=$(cat "$work/small.url")
body='{"user_token":"bench","project_name":"Demo","group_name":"Canary","limit":50}'
cat > "$work/get.lua" <<LUA
wrk.method = "GET"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA
concurrency=16
# Three rounds, wrk and ours one after the other in each, so that a noisy neighbour on a
# shared machine weighs on both sides of a ratio; the median round's ratio is reported.
rounds=""
ours=""
for round in 1 2 3; do
  w=$(wrk -t 1 -c $concurrency -d 4s -s "$work/get.lua" "${url}devices_details" | awk '/Requests\/sec/ {print int($2)}')
  o=$($bench client "$url" $concurrency 25000 || true)
  ours="$ours$o"$'\n'
  o_rps=$(echo "$o" | sed 's/.*"requests_per_second":\([0-9]*\).*/\1/')
  rounds="$rounds$(echo "scale=2; $o_rps / $w" | bc) $w $o_rps"$'\n'
done
median=$(echo -n "$rounds" | sort -n | sed -n 2p)
ratio=$(echo "$median" | cut -d' ' -f1)
wrk_rps=$(echo "$median" | cut -d' ' -f2)
ours_rps=$(echo "$median" | cut -d' ' -f3)
all_ratios=$(echo -n "$rounds" | cut -d' ' -f1 | paste -sd, | sed 's/,/, /g')
ours=${ours%$'\n'}
ours1=$($bench client "$url" 1 5000 || true)
ours1_rps=$(echo "$ours1" | sed 's/.*"requests_per_second":\([0-9]*\).*/\1/')
curl_start=$(date +%s.%N)
for _ in $(seq 300); do curl -s -X GET -H 'Content-Type: application/json' -d "$body" "${url}devices_details" >/dev/null; done
curl_rps=$(echo "300 / ($(date +%s.%N) - $curl_start)" | bc -l | cut -d. -f1)
python_rps=$(/usr/bin/python3 - "$url" "$body" <<'PY'
import json, sys, time, requests
url, body = sys.argv[1], json.loads(sys.argv[2])
t = time.monotonic()
for _ in range(1000):
    requests.get(url + "devices_details", json=body)
print(int(1000 / (time.monotonic() - t)))
PY
)

cat > "$work/mem.yaml" <<'YAML'
seed: 1
projects:
  - name: Mem
    groups:
      - {name: All, devices: 100000}
YAML
start_sim "$work/mem.yaml" mem
mem_url=$(cat "$work/mem.url")

# A benchmark that misses its own check still reports its numbers.
plan=$($bench plan-load 10000 || true)
engine_mem=$($bench engine 1000 :memory: || true)
engine_file=$($bench engine 200 "$work/engine.db" || true)
economy=$($bench economy 120 || true)
resume=$($bench resume 100000 "$work/resume.db" || true)
memory=$($bench memory "$mem_url" 100000 || true)
# The same engine and resume on PostgreSQL beside SQLite's file: a throw-away server on
# loopback, durable as a team's would be (fsync on, synchronous commits), a new database each.
bash scripts/pg.sh start "$work/pg" >/dev/null
export PGPASSWORD; PGPASSWORD=$(cat "$work/pg/password")
pg=$(cat "$work/pg/url")
psql -q "$pg" -c "CREATE DATABASE bench_engine" -c "CREATE DATABASE bench_resume"
engine_pg=$($bench engine 200 "${pg%/postgres}/bench_engine" || true)
resume_pg=$($bench resume 10000 "${pg%/postgres}/bench_resume" || true)
resume_file_10k=$($bench resume 10000 "$work/resume-10k.db" || true)
sim_wrk=$(wrk -t 2 -c 64 -d 5s -s "$work/get.lua" "${url}devices_details" | awk '/Requests\/sec/ {print int($2)}')

field() { echo "$1" | sed "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/"; }

cat > tests/bench/RESULTS.md <<MD
# Benchmark results

Measured by \`tests/bench/run.sh\` on $(date -u +%Y-%m-%d), on this machine:
$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB,
$(. /etc/os-release; echo "$PRETTY_NAME"), Release build. Shared machine: read the ratios, not the absolute numbers.

## HTTP throughput against the simulator (devices_details, loopback)

| client | concurrency | requests/s | ratio to wrk |
|---|---|---|---|
| wrk (the ceiling) | $concurrency | $wrk_rps | 1.00 |
| rollout's client (libcurl multi on Asio) | $concurrency | $ours_rps | $ratio (target >= 0.90) |
| rollout's client | 1 | $ours1_rps | |
| a \`curl\` process per request | 1 | $curl_rps | |
| Python \`requests\` loop (the seed page's style) | 1 | $python_rps | |

Three rounds, wrk then rollout's client in each; the table shows the median round. The
ratios of the three rounds: $all_ratios. Our client parses every answer into devices
(wrk reads and drops it).

The simulator's own ceiling (wrk, 2 threads, 64 connections): $sim_wrk requests/s.

## Orchestration

| what | measured | baseline | target |
|---|---|---|---|
| load + validate + DAG of a 10,000-stage plan ($(field "$plan" bytes) bytes) | $(field "$plan" rollout_load_validate_dag_ms) ms | yaml-cpp's own YAML::Load of the text: $(field "$plan" yaml_cpp_load_ms) ms (ratio $(field "$plan" ratio)); yaml-cpp's parser alone, building nothing: $(field "$plan" yaml_cpp_events_ms) ms | < 100 ms |
| the part of that beyond yaml-cpp's parser (tree, checks, DAG) | $(field "$plan" beyond_yaml_cpp_events_ms) ms | | |
| engine time per stage, 1,000 stages, zero bakes, in-memory state | $(field "$engine_mem" engine_us_per_stage) µs | fake API time taken out: $(field "$engine_mem" fake_api_ms) ms of $(field "$engine_mem" total_ms) ms | < 50 µs |
| of which the engine's own logic | $(field "$engine_mem" logic_us_per_stage) µs | the rest is $(field "$engine_mem" store_calls) state-store transactions (events, stage records, write-ahead intents, observations): $(field "$engine_mem" store_ms) ms | |
| engine time per stage, 200 stages, state on disk (WAL, synchronous=FULL) | $(field "$engine_file" engine_us_per_stage) µs | | |
| resume of a run whose database holds 100,000 events, to its first API call | $(field "$resume" resume_to_first_call_ms) ms | opening the database and reading the run: $(field "$resume" open_and_read_run_ms) ms | < 100 ms |

## The state on PostgreSQL beside SQLite

The same benchmarks with the state on a PostgreSQL server on loopback (\`scripts/pg.sh\`:
fsync on, synchronous commits), each measured in this run beside SQLite's file.

| what | SQLite file (WAL, synchronous=FULL) | PostgreSQL (loopback) | ratio |
|---|---|---|---|
| engine time per stage, 200 stages, zero bakes | $(field "$engine_file" engine_us_per_stage) µs | $(field "$engine_pg" engine_us_per_stage) µs | $(echo "scale=2; $(field "$engine_pg" engine_us_per_stage) / $(field "$engine_file" engine_us_per_stage)" | bc) |
| of which state-store transactions | $(field "$engine_file" store_calls) in $(field "$engine_file" store_ms) ms | $(field "$engine_pg" store_calls) in $(field "$engine_pg" store_ms) ms | |
| resume of a run with 10,000 events, to its first API call | $(field "$resume_file_10k" resume_to_first_call_ms) ms | $(field "$resume_pg" resume_to_first_call_ms) ms | $(echo "scale=2; $(field "$resume_pg" resume_to_first_call_ms) / $(field "$resume_file_10k" resume_to_first_call_ms)" | bc) |
| opening the state and reading the run | $(field "$resume_file_10k" open_and_read_run_ms) ms | $(field "$resume_pg" open_and_read_run_ms) ms | |

## API economy

A one-stage run over $(field "$economy" devices) devices (one group): $(field "$economy" pages_per_listing) pages per listing
(ceil(n/50)), $(field "$economy" polls) gate polls, $(field "$economy" api_calls) API calls against a minimum of
$(field "$economy" minimum) (one snapshot listing + one deploy_update + one listing per poll): ratio $(field "$economy" ratio).

## Memory

One stage over $(field "$memory" devices) devices through the real client against the simulator (2,000 pages a
poll): peak RSS $(field "$memory" peak_rss_mib) MiB (target < 64 MiB), tracked $(field "$memory" tracked) devices, run $(field "$memory" outcome).

## Raw lines

\`\`\`
$ours
$ours1
$plan
$engine_mem
$engine_file
$economy
$resume
$memory
$engine_pg
$resume_file_10k
$resume_pg
\`\`\`
MD
cat tests/bench/RESULTS.md

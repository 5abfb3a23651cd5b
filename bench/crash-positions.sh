#!/usr/bin/env bash
# Crash consistency of the JT/T 808 gateway and the transport rules: terminals report (each with
# a speeding episode at its own time, so that alarms are raised throughout) while the server is
# killed with SIGKILL at random moments and restarted. Afterwards:
#   - every position the terminals heard acknowledged must be in the store;
#   - every alarm that the stored positions imply (replayed through a fresh rules engine in
#     device-time order) must be on the desk, with the same kind and start;
#   - the audit chain must verify, and the database pass its own integrity check.
# Usage: bench/crash-positions.sh [TERMINALS=200] [KILLS=20] [STORE_URL]
# WUQING_BIN names a binary to use instead of building the release one.
# Exits non-zero if anything was lost.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-200}
kills=${2:-20}
store=${3:-}
. bench/lib.sh
data=$(mktemp -d)
export WUQING__LOG__LEVEL=warn
# Each start logs how many stored positions the rules replayed, and every rule event: the
# evidence kept (with the data directory) when a check fails.
export RUST_LOG=${RUST_LOG:-warn,transport::alerting=debug}
[ -n "$store" ] && export WUQING__STORE__URL="$store"
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
start() {
  $bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >>"$data/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && return; sleep 0.1; done
  echo "server did not start"; tail -n 20 "$data/server.log"; exit 1
}
start
last=$((terms - 1))
duration=$((10 + kills * 12))
# Each terminal speeds (2.2 × its road's speed: over the heavy-goods limit of 100 km/h on most
# roads) for 90 s from its own moment of the run, so episodes start and end between the kills.
for i in $(seq 0 "$last"); do
  printf '[[vehicle]]\nphone = "1370%07d"\nspeeding = { after_s = %d, for_s = 90, factor = 2.2 }\n' \
    "$i" $(( (i * 37) % (duration > 100 ? duration - 90 : 10) ))
done >"$data/scenario.toml"
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $last)" --interval-ms 200 \
  --seconds "$duration" --scenario "$data/scenario.toml" --ack-log "$data/acks.txt" >"$data/sim.log" 2>&1 &
sim=$!
for k in $(seq 1 "$kills"); do
  sleep $((4 + RANDOM % 6))
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  echo "kill $k: SIGKILL at $(date -u +%T)"
  sleep 1
  start
done
wait "$sim"
# Let the rules see the last reports before the clean stop.
sleep 5
kill -TERM "$pid"; wait "$pid" || true
tail -n 2 "$data/sim.log"
status=0
$bin --data-dir "$data" sim verify --ack-log "$data/acks.txt" --alarms || status=1
$bin --data-dir "$data" audit verify || status=1
$bin --data-dir "$data" check || status=1
if [ "$status" = 0 ]; then rm -rf "$data"; else echo "kept for inspection: $data"; fi
exit "$status"

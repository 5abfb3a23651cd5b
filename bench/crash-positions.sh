#!/usr/bin/env bash
# Crash consistency of the JT/T 808 gateway: terminals report while the server is killed with
# SIGKILL and restarted; afterwards every position the terminals heard acknowledged must be in
# the store. Usage: bench/crash-positions.sh [TERMINALS=200] [KILLS=3] [STORE_URL]
# Prints the count of acknowledged reports checked and lost (the goal is 0 lost).
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-200}
kills=${2:-3}
store=${3:-}
cargo build --release -q -p wuqing
bin=./target/release/wuqing
data=$(mktemp -d)
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
start() {
  $bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" >>"$data/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && return; sleep 0.1; done
  echo "server did not start"; exit 1
}
start
last=$((terms - 1))
duration=$((10 + kills * 12))
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $last)" --interval-ms 200 \
  --seconds "$duration" --ack-log "$data/acks.txt" >"$data/sim.log" 2>&1 &
sim=$!
for k in $(seq 1 "$kills"); do
  sleep $((4 + RANDOM % 6))
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  echo "kill $k: SIGKILL at $(date -u +%T)"
  sleep 1
  start
done
wait "$sim"
sleep 2
kill -TERM "$pid"; wait "$pid" || true
tail -n 2 "$data/sim.log"
$bin --data-dir "$data" sim verify --ack-log "$data/acks.txt"
$bin --data-dir "$data" audit verify
rm -rf "$data"

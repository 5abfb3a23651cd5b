#!/usr/bin/env bash
# End-to-end alarm latency under load: N simulated terminals report every INTERVAL ms (the
# load), while a probe terminal drives overspeed episodes and a desk WebSocket waits for each
# raised alarm (crates/transport/examples/alarm_latency.rs). Prints the load's acknowledged
# positions/s during the probe, and the latency percentiles from the frame leaving the probe to
# the alarm arriving on the socket.
# Usage: bench/alarm-latency.sh [TERMINALS=5000] [INTERVAL_MS=100] [EPISODES=200] [STORE_URL] [BACKLOG_S=0]
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-5000}
interval=${2:-100}
episodes=${3:-200}
store=${4:-}
backlog=${5:-0}
cargo build --release -q -p wuqing
cargo build --release -q -p wuqing-transport --example alarm_latency
bin=./target/release/wuqing
probe=./target/release/examples/alarm_latency
data=$(mktemp -d)
pid=""; load=""
trap 'kill $pid $load 2>/dev/null; cp "$data/server.log" /tmp/alarm-latency-server.log 2>/dev/null; rm -rf "$data"' EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
$bin --data-dir "$data" serve --demo --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && [ -s "$data/demo-accounts.txt" ] && break; sleep 0.5; done
password=$(awk '$2 == "jt.liu" {print $3}' "$data/demo-accounts.txt")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store: ${store:-sqlite (embedded)}; load: $terms terminals every ${interval} ms (offered $((terms * 1000 / interval))/s), backlog ${backlog} s; simulator and probe on the same machine"
ulimit -n 200000 2>/dev/null || true
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" --interval-ms "$interval" --seconds 3600 --backlog-s "$backlog" >"$data/load.log" 2>&1 &
load=$!
sleep 20 # connections up and the load steady
sample() { tail -n1 "$data/load.log" | awk '{for (i = 1; i < NF; i++) if ($i == "acked") a = $(i + 1); sub("s", "", $1); print $1, a}'; }
read -r e1 a1 < <(sample)
$probe --http "127.0.0.1:$http" --gateway "127.0.0.1:$gw" --user jt.liu --password "$password" --episodes "$episodes"
sleep 11 # two more of the simulator's 5 s counters
read -r e2 a2 < <(sample)
echo "load around the probe: $(( (a2 - a1) / (e2 - e1) )) acknowledged positions/s (simulator counters, ${e1}s–${e2}s)"
tail -n3 "$data/load.log"

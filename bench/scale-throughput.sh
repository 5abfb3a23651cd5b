#!/usr/bin/env bash
# Scale-out throughput and latency on the local NATS JetStream and PostgreSQL:
#   1. processing rate with 1 and with 2 processors: a gateway alone takes a blind-area backlog
#      (TERMINALS × BACKLOG_S positions, one a second) into JetStream, every report answered once
#      the stream stored it; then the processors start and the time until PostgreSQL holds every
#      position is measured (the processors' drain rate, storage and rules included);
#   2. acknowledgement latency through JetStream under live load: TERMINALS reporting every
#      INTERVAL_MS through two gateways while two processors store, as `sim run` measures it
#      (request sent → 0x8001 received).
# Usage: bench/scale-throughput.sh [TERMINALS=1000] [BACKLOG_S=600] [INTERVAL_MS=1000] [LIVE_S=60]
# Needs WUQING_TEST_NATS and WUQING_TEST_PG (defaults: the local services). WUQING_BIN: a binary
# instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-1000}
backlog=${2:-600}
interval=${3:-1000}
live_s=${4:-60}
. bench/lib.sh
nats=${WUQING_TEST_NATS:-nats://127.0.0.1:4222}
pg=${WUQING_TEST_PG:-postgres://root@127.0.0.1/test}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "nats: $(nats-server --version 2>/dev/null || echo '?'), postgresql: $(psql "$pg" -Atc 'SHOW server_version')"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
last=$((terms - 1))
phones="13700000000-1370$(printf %07d $last)"

# setup NAME: a fresh database and namespace, the vehicles provisioned.
setup() {
  db="wq_tp_$1_$$"
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  data=$(mktemp -d)
  export WUQING__STORE__URL="${pg%/*}/$db" WUQING__BUS__URL="$nats" WUQING__BUS__REPLICAS=1
  export WUQING__BUS__NAMESPACE="tp$1$$" WUQING__LOG__LEVEL=warn
  $bin --data-dir "$data" sim provision --count "$terms" >/dev/null
}
stored() { psql "${pg%/*}/$db" -Atc "SELECT count(*) FROM transport_positions"; }

drain() {
  local procs=$1
  setup "p$procs"
  local h g
  h=$(free_port); g=$(free_port)
  start_node gw gateway --http "127.0.0.1:$h" --jt808 "127.0.0.1:$g"
  wait_http "$h"
  # The backlog into JetStream (the first processor to start creates nothing: the gateway made
  # the stream). Starts spread over 10 s, then a report every 10 s: the backlog is most of it.
  $bin sim run --gateway "127.0.0.1:$g" --phones "$phones" --interval-ms 10000 --backlog-s "$backlog" \
    --seconds $((backlog / 5 + 30)) >"$data/fill.log" 2>&1
  echo "  into JetStream through one gateway: best 5 s $(grep -o 'acked/s [0-9]*' "$data/fill.log" | awk '{print $2}' | sort -n | tail -n1)/s"
  local want
  want=$(grep -o 'acked [0-9]*' "$data/fill.log" | tail -n1 | awk '{print $2}')
  kill -TERM "$pid_gw"; wait "$pid_gw" 2>/dev/null || true
  echo "processors $procs: $want positions waiting in JetStream"
  local start end n
  start=$(date +%s.%N)
  for i in $(seq 1 "$procs"); do start_node "proc$i" processor --http "127.0.0.1:$(free_port)" --jt808 off; done
  n=0
  for _ in $(seq 1 3600); do
    n=$(stored)
    [ "$n" -ge "$want" ] && break
    sleep 0.5
  done
  end=$(date +%s.%N)
  python3 -c "import sys; n, s = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'processors $procs: {n} positions stored in {s:.1f} s (from the processes starting): {n / s:,.0f}/s')" "$n" "$start" "$end"
  for i in $(seq 1 "$procs"); do eval "kill -TERM \$pid_proc$i"; done
  wait 2>/dev/null || true
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  rm -rf "$data"
}

drain 1
drain 2

# Live: acknowledgement latency through JetStream, two gateways and two processors.
setup live
h1=$(free_port); h2=$(free_port); g1=$(free_port); g2=$(free_port)
start_node gw1 gateway --http "127.0.0.1:$h1" --jt808 "127.0.0.1:$g1"
start_node gw2 gateway --http "127.0.0.1:$h2" --jt808 "127.0.0.1:$g2"
start_node proc1 processor --http "127.0.0.1:$(free_port)" --jt808 off
start_node proc2 processor --http "127.0.0.1:$(free_port)" --jt808 off
wait_http "$h1"; wait_http "$h2"
sleep 3
echo "live: $terms terminals every $interval ms through two gateways, two processors, $live_s s"
$bin sim run --gateway "127.0.0.1:$g1,127.0.0.1:$g2" --phones "$phones" --interval-ms "$interval" \
  --seconds "$live_s" >"$data/live.log" 2>&1
tail -n 3 "$data/live.log"
sleep 5
echo "stored: $(stored)"
kill -TERM "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
rm -rf "$data"

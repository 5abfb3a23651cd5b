#!/usr/bin/env bash
# Ingest ladder: TERMINALS connected terminals report live (0x0200, one report each per
# interval) at a rising rate, one step per INTERVAL_MS, each for SECONDS; per step it prints the
# offered and acknowledged positions/s, the acknowledgement latency of live reports (sent →
# 0x8001, measured by the simulator: decode, group commit, answer), the server's CPU and RSS.
# The knee is the step where the latency leaves the millisecond range and the acknowledged rate
# stops following the offered one.
# Usage: bench/ingest-ladder.sh [TERMINALS=10000] [SECONDS=30] [STORE_URL] ; INTERVALS="10000 5000 2000 1000 500 250" by default.
# WUQING_BIN names a binary to use instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-10000}
secs=${2:-30}
store=${3:-}
intervals=${INTERVALS:-10000 5000 2000 1000 500 250}
. bench/lib.sh
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB; store ${store:-sqlite (embedded)}; $terms terminals; the simulator shares the machine"
printf '%-9s %-9s %-13s %-28s %-10s %-8s\n' interval offered/s acknowledged/s "ack ms p50/p90/p99/max" "server CPU" "RSS MB"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for iv in $intervals; do
  c0=$(cpu)
  $bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" \
    --interval-ms "$iv" --seconds "$secs" >"$data/sim-$iv.log" 2>&1
  c1=$(cpu)
  rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$pid/status")
  acked=$(awk '/^acked [0-9]+ of/{print $2}' "$data/sim-$iv.log")
  lat=$(sed -n 's/^live reports acknowledged in ms: p50 \([^ ]*\) p90 \([^ ]*\) p99 \([^ ]*\) max \([^ ]*\).*/\1\/\2\/\3\/\4/p' "$data/sim-$iv.log")
  printf '%-9s %-9s %-13s %-28s %-10s %-8s\n' "${iv}ms" "$((terms * 1000 / iv))" "$((acked / secs))" "$lat" \
    "$(python3 -c "print(f'{($c1 - $c0) / $ticks / $secs:.2f} core')")" "$rss"
done

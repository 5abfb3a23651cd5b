#!/usr/bin/env bash
# End-to-end ingest: N simulated terminals report every INTERVAL ms over real TCP; the gateway
# decodes, group-commits and acknowledges. Prints acknowledged positions/s every 5 s and the
# server's CPU time and resident memory at the end.
# With BACKLOG_S, each terminal first uploads that many seconds of fixes (one a second) as
# 0x0704 batches, as after a long blind area: the heaviest load a gateway sees.
# Usage: bench/ingest.sh [TERMINALS=2000] [INTERVAL_MS=100] [SECONDS=30] [STORE_URL] [BACKLOG_S=0]
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-2000}
interval=${2:-100}
secs=${3:-30}
store=${4:-}
backlog=${5:-0}
cargo build --release -q -p wuqing
bin=./target/release/wuqing
data=$(mktemp -d)
trap 'kill $pid 2>/dev/null; cp "$data/server.log" /tmp/ingest-server.log 2>/dev/null; rm -rf "$data"' EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store: ${store:-sqlite (embedded)}; $terms terminals every ${interval} ms (offered $((terms * 1000 / interval))/s), backlog ${backlog} s each; simulator on the same machine"
ulimit -n 200000 2>/dev/null || true
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" --interval-ms "$interval" --seconds "$secs" --backlog-s "$backlog"
ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$pid/stat")
rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
echo "server: cpu $(( (utime + stime) / ticks )) s over the run, rss $((rss / 1024)) MB"

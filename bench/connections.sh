#!/usr/bin/env bash
# Connections held: N simulated terminals connect, register and authenticate over real TCP, then
# only send heartbeats (0x0002) every HEARTBEAT_S. Prints the server's resident memory before and
# after, the memory per connection, and the server's CPU while idly holding them for 30 s.
# One process holds at most ~20 000 sockets here (hard open-files limit), so the clients are
# `wuqing sim hold` processes of at most 9 000 connections, each from its own 127.0.0.x.
# Usage: bench/connections.sh [N=19000] [HEARTBEAT_S=60] [STORE_URL]
# (WUQING_BIN=path runs that binary instead of building the release one.)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-19000}
hb=${2:-60}
store=${3:-}
per=9000
limit=$(ulimit -Hn)
if [ "$limit" != unlimited ] && [ "$n" -gt $((limit - 100)) ]; then
  echo "N=$n: the server holds at most $((limit - 100)) connections under the hard open-files limit $limit" >&2
  exit 1
fi
bin=${WUQING_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p wuqing
  bin=${CARGO_TARGET_DIR:-./target}/release/wuqing
fi
data=$(mktemp -d)
holders=()
pid=
cleanup() {
  for h in "${holders[@]}"; do kill "$h" 2>/dev/null || true; done
  for h in "${holders[@]}"; do wait "$h" 2>/dev/null || true; done
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  cp "$data/server.log" /tmp/connections-server.log 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
established() { # the newest count of every holder, summed
  local sum=0 c
  for f in "$data"/hold-*.log; do
    c=$(grep -o 'established [0-9]*' "$f" 2>/dev/null | tail -n1 | awk '{print $2}')
    sum=$((sum + ${c:-0}))
  done
  echo "$sum"
}
http=$(free_port); gw=$(free_port)
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); open files hard limit $limit"
echo "store: ${store:-sqlite (embedded)}; $n connections, heartbeat every ${hb} s; clients on the same machine"
start=$(date +%s)
$bin --data-dir "$data" sim provision --count "$n" >/dev/null
echo "provisioned $n terminals in $(($(date +%s) - start)) s"
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done
sleep 3
before=$(rss_kb "$pid")
echo "server rss before connections: $((before / 1024)) MB"
start=$(date +%s)
for ((j = 0; j * per < n; j++)); do
  lo=$((j * per)); hi=$(((j + 1) * per - 1)); [ "$hi" -ge "$n" ] && hi=$((n - 1))
  $bin sim hold --gateway "127.0.0.1:$gw" --source-ip "127.0.0.$((j + 2))" --heartbeat-s "$hb" \
    --phones "1370$(printf %07d "$lo")-1370$(printf %07d "$hi")" >"$data/hold-$j.log" 2>&1 &
  holders+=($!)
done
deadline=$((start + 1200))
while [ "$(established)" -lt "$n" ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "only $(established) of $n established after $((deadline - start)) s" >&2
    tail -n 2 "$data"/hold-*.log >&2
    exit 1
  fi
  for h in "${holders[@]}"; do kill -0 "$h" 2>/dev/null || { echo "a holder died:" >&2; tail "$data"/hold-*.log >&2; exit 1; }; done
  sleep 5
  echo "  $(($(date +%s) - start)) s: $(established) of $n established"
done
echo "all $n established in $(($(date +%s) - start)) s"
# Stable: still all established after another round of reports.
sleep 10
[ "$(established)" -eq "$n" ] || { echo "connections dropped: $(established) of $n" >&2; exit 1; }
after=$(rss_kb "$pid")
t0=$(cpu_ticks "$pid"); sleep 30; t1=$(cpu_ticks "$pid")
ticks=$(getconf CLK_TCK)
still=$(established)
clients=0; for h in "${holders[@]}"; do clients=$((clients + $(rss_kb "$h"))); done
echo "server rss with $n connections: $((after / 1024)) MB (before: $((before / 1024)) MB)"
echo "memory per connection: $(( (after - before) * 1024 / n )) bytes"
echo "server cpu idle-holding $still connections over 30 s: $(awk -v d=$((t1 - t0)) -v t="$ticks" 'BEGIN{printf "%.1f", d / t / 30 * 100}') % of one core"
echo "clients: ${#holders[@]} processes, rss $((clients / 1024)) MB in all"
grep -c -i 'warn\|error' "$data/server.log" | xargs -I{} echo "server log: {} warnings or errors"

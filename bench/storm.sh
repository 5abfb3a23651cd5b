#!/usr/bin/env bash
# Connection storms and misbehaving terminals against the JT/T 808 gateway, with a probe
# terminal (`wuqing sim probe`, a report every 200 ms, each waiting for its 0x8001) measuring
# what a well-behaved terminal sees meanwhile. Phases, each printed as one line:
#   baseline   the probe alone with N terminals held (`wuqing sim hold`, heartbeats)
#   storm      a network blip: the holders are SIGKILLed (every connection drops), then
#              restarted at once (no connect-rate limit, every handshake in flight): all N
#              register and authenticate again. Time until all N are back, server CPU and RSS,
#              handshake failures.
#   silent     M more sockets that connect and never speak (half-open), held 30 s
#   partial    M sockets that send a frame's first bytes and stall, held 30 s
#   fast       100 terminals reporting every 100 ms (100× the simulator's default 10 s)
#   flood      10 terminals sending reports back to back (closed by the frame-rate limit)
#   huge       100 connections each sending 1 MiB without a delimiter, or one 1 MiB frame
# For every phase: the probe's acknowledgement latency p50/p99/max and unanswered reports, and
# whether any held connection dropped. M = min(N, open-files limit − N − 1000).
# Usage: bench/storm.sh [N=10000] [STORE_URL]
# One process holds at most ~20 000 sockets here (hard open-files limit): the server holds N
# held + M half-open at most; the clients are processes of at most 5 000 connections, each from
# its own 127.0.0.x. (WUQING_BIN=path runs that binary instead of building the release one.)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
store=${2:-}
per=5000
limit=$(ulimit -Hn)
m=$n
if [ "$limit" != unlimited ]; then
  [ "$n" -gt $((limit - 1000)) ] && { echo "N=$n: at most $((limit - 1000)) under the open-files limit $limit" >&2; exit 1; }
  [ "$m" -gt $((limit - n - 1000)) ] && m=$((limit - n - 1000))
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
  cp "$data/server.log" /tmp/storm-server.log 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
phone() { echo "1370$(printf %07d "$1")"; }
sum_field() { # the newest value of a field of every holder's log, summed
  local sum=0 c
  for f in "$data"/hold-*.log; do
    c=$(grep -o "$1 [0-9]*" "$f" 2>/dev/null | tail -n1 | awk '{print $2}')
    sum=$((sum + ${c:-0}))
  done
  echo "$sum"
}
http=$(free_port); gw=$(free_port)
probe_phone=$(phone "$n")
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); open files hard limit $limit"
echo "store: ${store:-sqlite (embedded)}; $n terminals held, $m half-open; clients on the same machine"
# N held, the probe, 100 fast terminals and 10 flooders.
$bin --data-dir "$data" sim provision --count $((n + 111)) >/dev/null
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done

start_holders() { # $1: connections per second, $2: handshakes in flight
  holders=()
  for ((j = 0; j * per < n; j++)); do
    local lo=$((j * per)) hi=$(((j + 1) * per - 1))
    [ "$hi" -ge "$n" ] && hi=$((n - 1))
    $bin sim hold --gateway "127.0.0.1:$gw" --source-ip "127.0.0.$((j + 2))" --rate "$1" --handshakes "$2" \
      --phones "$(phone "$lo")-$(phone "$hi")" >"$data/hold-$j.log" 2>&1 &
    holders+=($!)
  done
}
wait_established() { # seconds until all N are established (at most $1 s)
  local t0 now
  t0=$(date +%s%3N)
  while [ "$(sum_field established)" -lt "$n" ]; do
    now=$(date +%s%3N)
    [ $((now - t0)) -gt $(($1 * 1000)) ] && { echo "only $(sum_field established) of $n after $1 s" >&2; return 1; }
    sleep 0.2
  done
  echo "scale=1; ($(date +%s%3N) - $t0) / 1000" | bc
}
probe() { # $1: seconds; prints the probe's summary
  $bin sim probe --gateway "127.0.0.1:$gw" --phone "$probe_phone" --interval-ms 200 --seconds "$1" | tail -n1 |
    sed 's/^probe [0-9]*: //'
}
# Runs a phase: $1 name, $2 seconds, then the command that misbehaves (in the background).
phase() {
  local name=$1 secs=$2; shift 2
  local drops0 c0 rss0 peak r out bad
  drops0=$(sum_field drops); c0=$(cpu_ticks "$pid"); rss0=$(rss_kb "$pid"); peak=$rss0
  "$@" >"$data/phase-$name.log" 2>&1 &
  bad=$!
  probe "$secs" >"$data/probe-$name.txt" &
  local p=$!
  while kill -0 "$p" 2>/dev/null; do r=$(rss_kb "$pid"); [ "$r" -gt "$peak" ] && peak=$r; sleep 1; done
  kill -INT "$bad" 2>/dev/null || true; wait "$bad" 2>/dev/null || true
  out=$(tail -n1 "$data/phase-$name.log" | sed 's/^ *[0-9]*s  //')
  echo "$name: probe $(cat "$data/probe-$name.txt"); server cpu $(awk -v d=$(($(cpu_ticks "$pid") - c0)) -v t="$ticks" -v s="$secs" 'BEGIN{printf "%.2f", d / t / s}') cores," \
    "rss $((rss0 / 1024)) → at most $((peak / 1024)) MB; held connections dropped $(($(sum_field drops) - drops0)); $out"
}

start_holders 2000 256
echo "held: all $n established in $(wait_established 1200) s (2 000 connections/s, 256 handshakes in flight)"
sleep 5
echo "baseline: probe $(probe 15); server rss $(($(rss_kb "$pid") / 1024)) MB"

# The blip: every holder dies at once (the kernel closes their sockets), and comes straight back.
for h in "${holders[@]}"; do kill -9 "$h"; done
for h in "${holders[@]}"; do wait "$h" 2>/dev/null || true; done
rm -f "$data"/hold-*.log
c0=$(cpu_ticks "$pid"); rss0=$(rss_kb "$pid"); t0=$(date +%s)
probe 60 >"$data/probe-storm.txt" &
p=$!
start_holders 100000 "$per"
peak=$rss0
( while kill -0 "$p" 2>/dev/null; do r=$(rss_kb "$pid"); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$data/peak"; sleep 0.5; done ) &
back=$(wait_established 600)
t1=$(date +%s)
c1=$(cpu_ticks "$pid")
wait "$p" || true
echo "storm: all $n back in $back s after the blip; handshake failures $(sum_field failures);" \
  "server cpu $(awk -v d=$((c1 - c0)) -v t="$ticks" -v s=$((t1 - t0 > 0 ? t1 - t0 : 1)) 'BEGIN{printf "%.2f", d / t / s}') cores while reconnecting;" \
  "rss $((rss0 / 1024)) → at most $(($(cat "$data/peak" 2>/dev/null || echo "$rss0") / 1024)) MB;" \
  "probe over 60 s from the blip: $(cat "$data/probe-storm.txt")"
sleep 5

src=127.0.0.$((n / per + 3))
phase silent 30 "$bin" sim abuse --gateway "127.0.0.1:$gw" --kind silent --count "$m" --source-ip "$src"
phase partial 30 "$bin" sim abuse --gateway "127.0.0.1:$gw" --kind partial --count "$m" --source-ip "$src"
phase fast 30 "$bin" sim run --gateway "127.0.0.1:$gw" --phones "$(phone $((n + 1)))-$(phone $((n + 100)))" --interval-ms 100
phase flood 30 "$bin" sim abuse --gateway "127.0.0.1:$gw" --kind flood --phones "$(phone $((n + 101)))-$(phone $((n + 110)))"
phase huge 30 "$bin" sim abuse --gateway "127.0.0.1:$gw" --kind huge --count 100
echo "still held at the end: $(sum_field established) of $n"
grep -c 'WARN\|ERROR' "$data/server.log" | xargs -I{} echo "server log: {} warnings or errors"
grep 'WARN\|ERROR' "$data/server.log" | sed 's/^[^ ]* *//' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 8

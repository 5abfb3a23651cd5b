#!/usr/bin/env bash
# Ingest ladder: TERMINALS connected terminals report live (0x0200, one report each per
# interval) at a rising rate, one step per INTERVAL_MS, each for SECONDS; per step it prints the
# offered and acknowledged positions/s, the acknowledgement latency of live reports (sent →
# 0x8001, measured by the simulator: decode, group commit, answer), the server's CPU and RSS,
# all after the first WARM seconds of each step (each step's simulator registers them again first).
# The knee is the step where the latency leaves the millisecond range and the acknowledged rate
# stops following the offered one.
# Usage: bench/ingest-ladder.sh [TERMINALS=10000] [SECONDS=30] [STORE_URL] ; INTERVALS="10000 5000 2000 1000 500 250"
# and WARM=40 (seconds of each step not measured) by default.
# WUQING_BIN names a binary to use instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-10000}
secs=${2:-30}
store=${3:-}
intervals=${INTERVALS:-10000 5000 2000 1000 500 250}
warm=${WARM:-40}
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
printf '%-9s %-9s %-13s %-22s %-10s %-8s\n' interval offered/s acknowledged/s "ack ms p50/p99 (worst)" "server CPU" "RSS MB"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for iv in $intervals; do
  log="$data/sim-$iv.log"
  # Every step starts a new simulator, whose terminals register and authenticate again (one
  # transaction each: 10 000 take 10-20 s here, and reports queue behind them); the step is
  # measured from the first 5-second line after WARM seconds to its end. (The simulator counts
  # a connection before its handshake, so "all connected" does not mean registered.)
  $bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" \
    --interval-ms "$iv" --seconds "$((secs + warm))" >"$log" 2>&1 &
  simpid=$!
  c0=
  while kill -0 "$simpid" 2>/dev/null; do
    if [ -z "$c0" ] && awk -v w="$warm" '/ connects /{if($1+0 >= w) f=1} END{exit !f}' "$log" 2>/dev/null; then
      c0=$(cpu); t0=$(date +%s.%N)
    fi
    sleep 0.5
  done
  wait "$simpid" || true
  c1=$(cpu); t1=$(date +%s.%N)
  rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$pid/status")
  # From the 5-second lines once all were connected: acknowledged/s, and the median of the
  # intervals' p50 and the worst of their p99.
  read -r rate lat < <(python3 - "$log" "$terms" "$warm" <<'PY'
import re, sys
rows = []
for l in open(sys.argv[1]):
    m = re.search(r"^\s*(\d+)s .*connects (\d+) .*acked (\d+) .*ack ms p50 (\S+) p99 (\S+)", l)
    if m:
        rows.append((int(m[1]), int(m[2]), int(m[3]), m[4], m[5]))
steady = [r for r in rows if r[1] >= int(sys.argv[2]) and r[0] >= int(sys.argv[3])]
if len(steady) < 2:
    print("- -")
    sys.exit()
rate = (steady[-1][2] - steady[0][2]) / (steady[-1][0] - steady[0][0])
p50 = sorted(float(r[3]) for r in steady[1:] if r[3] != "-")
p99 = [float(r[4]) for r in steady[1:] if r[4] != "-"]
print(f"{rate:.0f}", f"{p50[len(p50) // 2]:.1f}/{max(p99):.1f}" if p50 and p99 else "-")
PY
)
  cores=-
  [ -n "$c0" ] && cores=$(python3 -c "print(f'{($c1 - $c0) / $ticks / ($t1 - $t0):.2f} core')")
  printf '%-9s %-9s %-13s %-22s %-10s %-8s\n' "${iv}ms" "$((terms * 1000 / iv))" "$rate" "$lat" "$cores" "$rss"
done

#!/usr/bin/env bash
# Ingest ladder: TERMINALS connected terminals report live (0x0200) at a rising rate.
# (offered/s is the pace asked of the simulator; sent/s what it managed: a terminal whose socket
# is full waits, as the platform's back-pressure means it to.) One
# simulator holds the same connections throughout and changes their report interval at each
# step (`sim run --steps-ms`), so that a step measures reports only, not registrations. Each step
# lasts WARM + SECONDS; the last SECONDS are measured: offered and acknowledged positions/s, the
# acknowledgement latency of live reports (sent → 0x8001, measured by the simulator: decode,
# group commit, answer), the server's CPU and RSS.
# The knee is the step where the latency leaves the millisecond range and the acknowledged rate
# stops following the offered one.
# Usage: bench/ingest-ladder.sh [TERMINALS=10000] [SECONDS=30] [STORE_URL]
# INTERVALS="10000 5000 2000 1000 500 250" (ms between one terminal's reports, one per step);
# WARM=20 (seconds at the start of each step not measured: the change of pace spreads over one
# old interval). The first step starts once every terminal is authenticated.
# WUQING_BIN names a binary to use instead of building the release one; SIM_BIN one to run the
# simulator from (default the same).
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-10000}
secs=${2:-30}
store=${3:-}
intervals=${INTERVALS:-10000 5000 2000 1000 500 250}
warm=${WARM:-20}
. bench/lib.sh
sim=${SIM_BIN:-$bin}
data=$(mktemp -d); pid=; simpid=
trap 'kill $pid $simpid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
http=$(free_port); gw=$(free_port)
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB; store ${store:-sqlite (embedded)}; $terms terminals; the simulator shares the machine"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
step=$((warm + secs))
read -ra ivs <<<"$intervals"
# Step 0 registers and authenticates every terminal at a slow pace (20 s between reports); then
# the same connections go through INTERVALS, one step each.
log="$data/sim.log"
nsteps=$((${#ivs[@]} + 1))
t_start=$(date +%s.%N)
$sim sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" \
  --steps-ms "20000,$(IFS=,; echo "${ivs[*]}")" --step-seconds "$step" >"$log" 2>&1 &
simpid=$!
# Sleeps until SECONDS after the simulator started.
until_s() { python3 -c "import time; time.sleep(max(0, $t_start + $1 - time.time()))"; }
printf '%-9s %-9s %-8s %-13s %-22s %-10s %-8s\n' interval offered/s sent/s acknowledged/s "ack ms p50/p99 (worst)" "server CPU" "RSS MB"
for k in $(seq 1 $((nsteps - 1))); do
  iv=${ivs[$((k - 1))]}
  until_s $((k * step + warm)); c0=$(cpu); t0=$(date +%s.%N)
  until_s $(((k + 1) * step)); c1=$(cpu); t1=$(date +%s.%N)
  rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$pid/status")
  # The simulator's 5-second lines inside the window: acknowledged/s from the first to the
  # last, the median of their p50 and the worst of their p99.
  read -r rate lat auth sent < <(python3 - "$log" $((k * step + warm)) $(((k + 1) * step)) <<'PY'
import re, sys
lo, hi = int(sys.argv[2]), int(sys.argv[3])
rows, auth = [], 0
for l in open(sys.argv[1]):
    m = re.search(r"^\s*(\d+)s .*authenticated (\d+) .*sent (\d+) .*acked (\d+) .*ack ms p50 (\S+) p99 (\S+)", l)
    if m and lo - 3 <= int(m[1]) <= hi + 3:
        rows.append((int(m[1]), int(m[4]), m[5], m[6], int(m[3])))
        auth = int(m[2])
if len(rows) < 2:
    print("- - 0 -")
    sys.exit()
span = rows[-1][0] - rows[0][0]
rate = (rows[-1][1] - rows[0][1]) / span
sent = (rows[-1][4] - rows[0][4]) / span
p50 = sorted(float(r[2]) for r in rows[1:] if r[2] != "-")
p99 = [float(r[3]) for r in rows[1:] if r[3] != "-"]
print(f"{rate:.0f}", f"{p50[len(p50) // 2]:.1f}/{max(p99):.1f}" if p50 and p99 else "-", auth, f"{sent:.0f}")
PY
)
  cores=$(python3 -c "print(f'{($c1 - $c0) / $ticks / ($t1 - $t0):.2f} core')")
  printf '%-9s %-9s %-8s %-13s %-22s %-10s %-8s\n' "${iv}ms" "$((terms * 1000 / iv))" "$sent" "$rate" "$lat" "$cores" "$rss"
  [ "$k" = 1 ] && [ "$auth" -lt "$terms" ] && echo "  (only $auth of $terms authenticated by the first step: raise WARM)"
done
wait "$simpid" || true
# Sessions beyond one per terminal: reconnections (the simulator drops a link after 30 s
# without an acknowledgement).
echo "sessions authenticated in all: $(grep -o 'authenticated [0-9]*' "$log" | tail -n1 | awk '{print $2}') for $terms terminals"

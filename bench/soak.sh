#!/usr/bin/env bash
# Soak: the platform at a steady load for MINUTES, its resident memory sampled every minute, then
# the least-squares slope of RSS over time (MB per hour) from the second sample on (the first
# minutes fill caches and pools). Load: the demo district (its fleet driven in-process, sensors,
# rules) plus TERMINALS simulated terminals reporting every INTERVAL_MS over real TCP.
# Usage: bench/soak.sh [MINUTES=60] [TERMINALS=2000] [INTERVAL_MS=1000] [STORE_URL]
# WUQING_BIN names a binary to use instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
terms=${2:-2000}
interval=${3:-1000}
store=${4:-}
. bench/lib.sh
data=$(mktemp -d)
http=$(free_port); gw=$(free_port)
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
$bin --data-dir "$data" serve --demo --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/out.txt" 2>"$data/err.txt" &
pid=$!
sim=
trap 'kill $sim $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do grep -q "API docs" "$data/out.txt" 2>/dev/null && break; sleep 0.2; done
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" \
  --interval-ms "$interval" >"$data/sim.log" 2>&1 &
sim=$!
echo "soak: $terms terminals every ${interval} ms + the demo district, ${minutes} min, store ${store:-sqlite (embedded)}"
echo "minute rss_mb cpu_s acked"
: >"$data/rss.txt"
for m in $(seq 1 "$minutes"); do
  sleep 60
  kill -0 "$pid" 2>/dev/null || { echo "server died"; tail -n 20 "$data/err.txt"; exit 1; }
  rss=$(awk '/VmRSS/{print $2/1024}' "/proc/$pid/status")
  cpu=$(ps -o times= -p "$pid" | tr -d ' ')
  acked=$(grep -o 'acked [0-9]*' "$data/sim.log" | tail -n 1 | awk '{print $2}')
  echo "$m $rss $cpu ${acked:-0}" | tee -a "$data/rss.txt"
done
python3 - "$data/rss.txt" <<'PY'
import sys
rows = [tuple(float(x) for x in l.split()) for l in open(sys.argv[1]) if l.strip()]
pts = [(m, r) for m, r, *_ in rows][1:] or [(m, r) for m, r, *_ in rows]
n = len(pts)
mx = sum(m for m, _ in pts) / n; my = sum(r for _, r in pts) / n
sxx = sum((m - mx) ** 2 for m, _ in pts) or 1.0
slope = sum((m - mx) * (r - my) for m, r in pts) / sxx
print(f"RSS min {min(r for _, r in pts):.1f} MB, max {max(r for _, r in pts):.1f} MB, "
      f"last {pts[-1][1]:.1f} MB; slope {slope * 60:+.2f} MB/hour over minutes {pts[0][0]:.0f}-{pts[-1][0]:.0f}")
cpu0, cpu1 = rows[0][2], rows[-1][2]
acked0, acked1 = rows[0][3], rows[-1][3]
span = (rows[-1][0] - rows[0][0]) * 60 or 1
print(f"server CPU {(cpu1 - cpu0) / span:.2f} core; acknowledged {(acked1 - acked0) / span:.0f} positions/s")
PY

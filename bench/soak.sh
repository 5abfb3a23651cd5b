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
# What SQLite holds (page caches, statements; every connection of the process), read with gdb
# from the server's own SQLite (`sqlite3_memory_used`), so that caches filling up to their
# configured size can be told from a leak; "-" where gdb cannot attach.
# The counter is read as a variable (sqlite3Stat.nowValue[0], what sqlite3_memory_used returns):
# on some VMs gdb cannot call a function in the process ("Couldn't write extended state status").
sqlite_mb() {
  gdb -p "$pid" -batch -nx -ex 'print sqlite3Stat.nowValue[0]' 2>/dev/null |
    awk '/^\$1 = /{printf "%.1f", $3 / 1048576; found=1} END{if(!found) print "-"}'
}
echo "minute rss_mb cpu_s acked sqlite_mb"
: >"$data/rss.txt"
for m in $(seq 1 "$minutes"); do
  sleep 60
  kill -0 "$pid" 2>/dev/null || { echo "server died"; tail -n 20 "$data/err.txt"; exit 1; }
  rss=$(awk '/VmRSS/{print $2/1024}' "/proc/$pid/status")
  cpu=$(ps -o times= -p "$pid" | tr -d ' ')
  acked=$(grep -o 'acked [0-9]*' "$data/sim.log" | tail -n 1 | awk '{print $2}')
  echo "$m $rss $cpu ${acked:-0} $(sqlite_mb)" | tee -a "$data/rss.txt"
done
# Memory the allocator holds free: RSS before and after glibc's malloc_trim(0).
before=$(awk '/VmRSS/{print $2/1024}' "/proc/$pid/status")
if gdb -p "$pid" -batch -nx -ex 'print (int) malloc_trim(0)' 2>/dev/null | grep -q '^\$1 = '; then
  after=$(awk '/VmRSS/{print $2/1024}' "/proc/$pid/status")
  echo "malloc_trim(0): RSS $before MB -> $after MB"
else
  echo "malloc_trim(0): gdb could not call into the server here; RSS $before MB"
fi
python3 - "$data/rss.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def slope(pts):
    n = len(pts)
    mx = sum(m for m, _ in pts) / n; my = sum(r for _, r in pts) / n
    sxx = sum((m - mx) ** 2 for m, _ in pts) or 1.0
    return sum((m - mx) * (r - my) for m, r in pts) / sxx * 60
body = rows[1:] or rows
pts = [(float(r[0]), float(r[1])) for r in body]
print(f"RSS min {min(r for _, r in pts):.1f} MB, max {max(r for _, r in pts):.1f} MB, "
      f"last {pts[-1][1]:.1f} MB; slope {slope(pts):+.2f} MB/hour over minutes {pts[0][0]:.0f}-{pts[-1][0]:.0f}")
withsql = [(float(r[0]), float(r[1]), float(r[4])) for r in body if len(r) > 4 and r[4] != "-"]
if len(withsql) >= 2:
    print(f"SQLite {withsql[0][2]:.1f} -> {withsql[-1][2]:.1f} MB, slope {slope([(m, s) for m, _, s in withsql]):+.2f} MB/hour; "
          f"RSS without SQLite {withsql[0][1] - withsql[0][2]:.1f} -> {withsql[-1][1] - withsql[-1][2]:.1f} MB, "
          f"slope {slope([(m, r - s) for m, r, s in withsql]):+.2f} MB/hour")
cpu0, cpu1 = float(rows[0][2]), float(rows[-1][2])
acked0, acked1 = float(rows[0][3]), float(rows[-1][3])
span = (float(rows[-1][0]) - float(rows[0][0])) * 60 or 1
print(f"server CPU {(cpu1 - cpu0) / span:.2f} core; acknowledged {(acked1 - acked0) / span:.0f} positions/s")
PY

#!/usr/bin/env bash
# API benchmark of the transport console's three busiest reads, with wrk, against a district
# in operation: the demo district plus VEHICLES load vehicles whose terminals first upload an
# hour of history each (0x0704 batches), then report every 10 s for the whole run.
#   live    GET /api/transport/live                        (every vehicle's newest state)
#   track   GET /api/transport/vehicles/{id}/track         (one hour of a random load vehicle,
#           3 600 points and the summary; max_points=1000 as the console asks)
#   alarms  GET /api/alarms?limit=50                       (the desk's first page)
# each at every CONNECTIONS count, as the transport regulator (who sees every vehicle).
# Usage: bench/api.sh [VEHICLES=2000] [SECONDS=20] [STORE_URL] ; CONNECTIONS="50 200" by default.
# WUQING_BIN names a binary to use instead of building the release one. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
vehicles=${1:-2000}
secs=${2:-20}
store=${3:-}
conns=${CONNECTIONS:-50 200}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
. bench/lib.sh
data=$(mktemp -d)
http=$(free_port); gw=$(free_port)
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
$bin --data-dir "$data" sim provision --count "$vehicles" >/dev/null
$bin --data-dir "$data" serve --demo --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/out.txt" 2>"$data/err.txt" &
pid=$!
sim=
trap 'kill $sim $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do grep -q "API docs" "$data/out.txt" 2>/dev/null && curl -sf "http://127.0.0.1:$http/api/health" >/dev/null && break; sleep 0.2; done
last=$((vehicles - 1))
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $last)" --interval-ms 10000 \
  --backlog-s 3600 >"$data/sim.log" 2>&1 &
sim=$!
pw=$(awk '$2=="jt.liu"{print $3}' "$data/demo-accounts.txt")
token=$(curl -sf -X POST "http://127.0.0.1:$http/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"jt.liu\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api() { curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$http$1"; }
# Wait until the backlog is in: every load vehicle's hour stored (acknowledged ≥ vehicles × 3600).
want=$((vehicles * 3600))
for _ in $(seq 1 900); do
  acked=$(grep -o 'acked [0-9]*' "$data/sim.log" | tail -n 1 | awk '{print $2}' || true)
  [ "${acked:-0}" -ge "$want" ] && break
  sleep 2
done
echo "backlog stored: ${acked:-0} positions acknowledged (wanted $want); live reports continue every 10 s"
# The load vehicles' ids (up to 500), for random track queries: `sim provision` plates them
# 津L… (the demo district's own vehicles, driven in-process, have no hour of history).
api "/api/transport/vehicles?limit=500&plate=%E6%B4%A5L" | python3 -c '
import json, sys
ids = [v["id"] for v in json.load(sys.stdin)["items"] if v["plate"].startswith("津L")]
assert ids, "no load vehicle found"
print("ids = {" + ",".join("\"%s\"" % i for i in ids) + "}")' >"$data/ids.lua"
to=$(date -u +%Y-%m-%dT%H:%M:%SZ)
from=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
cat "$data/ids.lua" - >"$data/track.lua" <<LUA
math.randomseed(8)
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/transport/vehicles/" .. id .. "/track?from=$from&to=$to&max_points=1000")
end
LUA
n_live=$(api /api/transport/live | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v["items"]) if isinstance(v,dict) else len(v))')
n_track=$(api "/api/transport/vehicles/$(sed 's/.*{"\([^"]*\)".*/\1/' "$data/ids.lua")/track?from=$from&to=$to&max_points=1000" |
  python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["summary"]["points"], "points,", len(v["points"]), "sent")')
n_alarms=$(api "/api/alarms?limit=50" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["total"])')
echo "store: ${store:-sqlite (embedded)}; live list: $n_live vehicles; a track: $n_track; alarms: $n_alarms in all"
echo "wrk and the simulator share the machine with the server"
for c in $conns; do
  for what in live track alarms; do
    case $what in
      live) args=("http://127.0.0.1:$http/api/transport/live") ;;
      track) args=(-s "$data/track.lua" "http://127.0.0.1:$http") ;;
      alarms) args=("http://127.0.0.1:$http/api/alarms?limit=50") ;;
    esac
    echo "--- $what, $c connections, ${secs}s"
    wrk -t2 -c"$c" -d"${secs}s" --timeout 10s --latency -H "Authorization: Bearer $token" "${args[@]}" |
      grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
  done
done
ps -o rss=,time= -p "$pid" | awk '{printf "server RSS %.0f MB, CPU time %s\n", $1/1024, $2}'

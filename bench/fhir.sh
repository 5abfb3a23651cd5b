#!/usr/bin/env bash
# FHIR benchmark: a synthetic district of RESIDENTS people (`wuqing health generate`: Patients,
# Conditions, a year of Encounters and Observations) imported as the People's Hospital's records
# (`wuqing health import`, timed: resources per second), then the two searches of issue 9 under
# wrk, as the hospital's clinician (dr.yang), each request a random patient:
#   obs    GET /fhir/Observation?patient=<id>&category=vital-signs
#   ident  GET /fhir/Patient?identifier=urn:wuqing:sid:citizen-id|<citizen ID>
# Usage: bench/fhir.sh [RESIDENTS=10000] [SECONDS=20] [STORE_URL] ; CONNECTIONS="10 50".
# WUQING_BIN names a binary to use instead of building the release one. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
residents=${1:-10000}
secs=${2:-20}
store=${3:-}
conns=${CONNECTIONS:-10 50}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
. bench/lib.sh
data=$(mktemp -d)
http=$(free_port)
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
start() {
  $bin --data-dir "$data" serve --demo --http "127.0.0.1:$http" --jt808 127.0.0.1:0 --mqtt off >"$data/out.txt" 2>"$data/err.txt" &
  pid=$!
  for _ in $(seq 1 1200); do grep -q "API docs" "$data/out.txt" 2>/dev/null && curl -sf "http://127.0.0.1:$http/api/health" >/dev/null && return; sleep 0.2; done
  echo "the server did not start"; tail "$data/err.txt"; exit 1
}
# The demo district first (its institutions and accounts), then stopped for the import.
start
kill $pid; wait $pid 2>/dev/null || true
$bin health generate --residents "$residents" --out "$data/gen" | tail -n 1
files=()
for t in Patient Condition Encounter Observation; do files+=("$data/gen/$t.ndjson"); done
echo "import (store: ${store:-sqlite (embedded)}):"
/usr/bin/time -f "import: %e s wall, %U s user, %S s system, %M KB max RSS" \
  $bin --data-dir "$data" health import --org 天津市武清区人民医院 "${files[@]}" 2>&1 | grep -E "resources stored|import:|invalid"
du -sh "$data" | awk '{print "data directory: " $1}'
start
pw=$(awk '$2=="dr.yang"{print $3}' "$data/demo-accounts.txt")
token=$(curl -sf -X POST "http://127.0.0.1:$http/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"dr.yang\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# 2 000 random patients of the district: their ids and citizen IDs.
python3 - "$data/gen/Patient.ndjson" "$data" <<'PY'
import json, random, sys
random.seed(9)
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
pick = [json.loads(l) for l in random.sample(lines, min(2000, len(lines)))]
ids = ",".join('"%s"' % p["id"] for p in pick)
cids = ",".join('"%s"' % p["identifier"][0]["value"] for p in pick)
open(sys.argv[2] + "/obs.lua", "w").write("""ids = {%s}
math.randomseed(3)
request = function()
  return wrk.format("GET", "/fhir/Observation?patient=" .. ids[math.random(#ids)] .. "&category=vital-signs")
end
""" % ids)
open(sys.argv[2] + "/ident.lua", "w").write("""cids = {%s}
math.randomseed(4)
request = function()
  return wrk.format("GET", "/fhir/Patient?identifier=urn:wuqing:sid:citizen-id%%7C" .. cids[math.random(#cids)])
end
""" % cids)
PY
# How many vital signs the sampled patients have (a year of visits: none to a dozen).
for one in $(grep -o '"p[0-9]*"' "$data/obs.lua" | tr -d '"' | head -n 20); do
  curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$http/fhir/Observation?patient=$one&category=vital-signs" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["entry"]))'
done | awk '{n+=$1} END {printf "vital signs of 20 sampled patients: %d in all\n", n}'
for c in $conns; do
  for what in obs ident; do
    echo "--- $what, $c connections, ${secs}s"
    wrk -t"$(( c < 2 ? c : 2 ))" -c"$c" -d"${secs}s" --timeout 10s --latency -H "Authorization: Bearer $token" -s "$data/$what.lua" \
      "http://127.0.0.1:$http" | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
  done
done
ps -o rss=,time= -p "$pid" | awk '{printf "server RSS %.0f MB, CPU time %s\n", $1/1024, $2}'

#!/usr/bin/env bash
# Track playback over a large store: 24 h of one vehicle, with VEHICLES × PER_VEHICLE positions
# (one every 30 s) in the store. Fills the store once (kept in DATA_DIR: a second run only
# queries), then measures the query below HTTP (range read + summary, `track_bench query`) and
# through the API as a regulator (`GET /api/transport/vehicles/{id}/track`, one client).
# With NATS_URL set (and a PostgreSQL STORE_URL), the same requests go then to an API-only node
# of a scaled-out deployment (roles = api, deploy/api.toml, bus over that NATS) on the same data.
# Usage: [NATS_URL=nats://…] bench/track-query.sh DATA_DIR [VEHICLES=5000] [PER_VEHICLE=20000] [QUERIES=1000] [STORE_URL]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/track-query.sh DATA_DIR [VEHICLES] [PER_VEHICLE] [QUERIES] [STORE_URL]}
vehicles=${2:-5000}
per=${3:-20000}
queries=${4:-1000}
store=${5:-}
mkdir -p "$data"
data=$(cd "$data" && pwd)
cargo build --release -q -p wuqing
cargo build --release -q -p wuqing-transport --example track_bench
bin=./target/release/wuqing
tb=./target/release/examples/track_bench
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
url=${store:-sqlite://$data/wuqing.db}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store: ${store:-sqlite (embedded) in $data}"

# The demo district (for its regulator account), then the vehicles.
if [ ! -f "$data/demo-accounts.txt" ]; then
  port=$(free_port)
  $bin --data-dir "$data" serve --demo --jt808 off --http "127.0.0.1:$port" >"$data/seed.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.2; done
  kill $pid; wait $pid || true
fi
$bin --data-dir "$data" sim provision --count "$vehicles" >/dev/null
/usr/bin/time -f "fill: %e s wall, %M KB max RSS" $tb fill "$url" "$per" 30 | awk 'NR==1 || /filled|vacuumed|rebuilt/ || NR%20==0'
if [ -z "$store" ]; then du -h "$data"/wuqing.db* | sed 's/^/disk: /'; fi

echo "== below HTTP: range read + summary, $queries queries"
$tb query "$url" "$queries"

# $queries requests of 24 h tracks to the node on port $1, one client.
measure() {
  python3 - "$1" "$pw" "$queries" "$per" <<'PY'
import http.client, json, random, sys, time, datetime
port, pw, n, per = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
def call(method, path, body=None, token=None):
    h = {"content-type": "application/json"}
    if token: h["authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read()
    return r.status, data
s, d = call("POST", "/api/auth/login", {"username": "jt.liu", "password": pw})
assert s == 200, d
tok = json.loads(d)["token"]
ids, off = [], 0
while True:
    s, d = call("GET", f"/api/transport/vehicles?limit=500&offset={off}", token=tok)
    items = json.loads(d)["items"]
    if not items: break
    ids += [v["id"] for v in items]; off += len(items)
now = time.time()
oldest = now - per * 30 + 60
rng = random.Random(7)
lat, pts = [], 0
for _ in range(n):
    vid = rng.choice(ids)
    t0 = oldest + rng.random() * (now - oldest - 86400 - 60)
    f = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t = datetime.datetime.fromtimestamp(t0 + 86400, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    a = time.perf_counter()
    s, d = call("GET", f"/api/transport/vehicles/{vid}/track?from={f}&to={t}", token=tok)
    lat.append((time.perf_counter() - a) * 1000)
    assert s == 200, d[:300]
    pts += json.loads(d)["summary"]["points"]
lat.sort()
p = lambda q: lat[min(len(lat) - 1, max(0, int(len(lat) * q + 0.999999) - 1))]
print(f"{n} requests over {len(ids)} vehicles, {pts // n} points each on average: "
      f"p50 {p(0.5):.1f} ms  p95 {p(0.95):.1f} ms  p99 {p(0.99):.1f} ms  max {lat[-1]:.1f} ms")
PY
}

echo "== GET /api/transport/vehicles/{id}/track (24 h, JSON with points and summary), $queries requests, one client"
port=$(free_port)
$bin --data-dir "$data" serve --jt808 off --http "127.0.0.1:$port" >"$data/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 3000); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.2; done
pw=$(awk '$2=="jt.liu"{print $3}' "$data/demo-accounts.txt")
measure "$port"
kill $pid; wait $pid 2>/dev/null || true

if [ -n "${NATS_URL:-}" ] && [ -n "$store" ]; then
  echo "== the same through an API-only node (roles = api, bus over $NATS_URL, same PostgreSQL)"
  port=$(free_port)
  WUQING__BUS__URL="$NATS_URL" WUQING__BUS__NAMESPACE="track$$" WUQING__BUS__REPLICAS=1 WUQING__NODE__NAME=api \
    $bin --config deploy/api.toml --data-dir "$data" serve --mqtt off --jt808 off --http "127.0.0.1:$port" >"$data/api-node.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.2; done
  echo "node: $(curl -s "http://127.0.0.1:$port/api/health")"
  measure "$port"
fi

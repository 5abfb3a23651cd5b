#!/usr/bin/env bash
# Kernel HTTP benchmark: login and a scoped list query at N concurrent clients, with wrk.
# Usage: bench/kernel-http.sh [CONNECTIONS=50] [SECONDS=20] [STORE_URL]
# Starts a release build of the demo on a free local port in a temporary data directory,
# prints requests/s and latency percentiles, then stops it. Needs `wrk` (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-50}
secs=${2:-20}
store=${3:-}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 2; }
cargo build --release -q -p wuqing
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export WUQING__LOG__LEVEL=warn
[ -n "$store" ] && export WUQING__STORE__URL="$store"
./target/release/wuqing --data-dir "$data" serve --demo --http "127.0.0.1:$port" >"$data/out.txt" 2>"$data/err.txt" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do grep -q "API docs" "$data/out.txt" 2>/dev/null && curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.2; done
pw=$(awk '$2=="jt.liu"{print $3}' "$data/demo-accounts.txt")
token=$(curl -sf -X POST "http://127.0.0.1:$port/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"jt.liu\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cat >"$data/login.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"username":"jt.liu","password":"$pw"}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store: ${store:-sqlite (embedded)}; wrk and the server share the machine"
echo
echo "== POST /api/auth/login (argon2id verify, session insert, audit record), $conns connections, ${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$data/login.lua" "http://127.0.0.1:$port/api/auth/login" | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'
echo
echo "== GET /api/users?limit=50 as a regulator (scoped to the transport domain, audited read), $conns connections, ${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/users?limit=50" | grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors'

#!/usr/bin/env bash
# Smoothness of the live map (实时监控) with thousands of moving vehicles: provisions TERMINALS
# simulated terminals, runs them against a fresh `serve --demo` (each reports every 10 s, so every
# vehicle moves every 10 s), serves the console's production build (vite preview, the API proxied
# to that server) and runs web/e2e/map-perf.mjs as the transport regulator: animation frame times
# over SECONDS in headless Chromium, with the vehicles on the map and the changes streamed.
# Headless Chromium renders WebGL on the CPU (SwiftShader): a browser with a GPU does better.
# Usage: bench/map-smoothness.sh [TERMINALS=5000] [SECONDS=30]
# WUQING_BIN runs an already built binary (e.g. a debug build) instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-5000}
seconds=${2:-30}
if [ -z "${WUQING_BIN:-}" ]; then
  cargo build --release -q -p wuqing
  WUQING_BIN=./target/release/wuqing
fi
bin=$WUQING_BIN
vite=web/node_modules/vite/bin/vite.js
data=$(mktemp -d)
console=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; cp "$data/server.log" /tmp/map-smoothness-server.log 2>/dev/null; rm -rf "$data" "$console"' EXIT
export WUQING__LOG__LEVEL=warn
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); gw=$(free_port); web=$(free_port)

"$bin" --data-dir "$data" sim provision --count "$terms" >/dev/null
"$bin" --data-dir "$data" serve --demo --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" --mqtt off >"$data/server.log" 2>&1 &
pids+=($!)
(cd web && node "../$vite" build --outDir "$console" --emptyOutDir --logLevel warn)
WUQING_API="http://127.0.0.1:$http" node "$vite" preview web --outDir "$console" --port "$web" --strictPort >"$data/preview.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && [ -s "$data/demo-accounts.txt" ] && break; sleep 0.5; done

ulimit -n 200000 2>/dev/null || true
"$bin" sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $((terms - 1)))" --interval-ms 10000 >"$data/load.log" 2>&1 &
pids+=($!)

# Until the regulator sees the terminals online (or their number stops growing for 30 s).
password=$(awk '$2 == "jt.liu" {print $3}' "$data/demo-accounts.txt")
tok=$(curl -sf -X POST "http://127.0.0.1:$http/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"jt.liu\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
online() { curl -sf -H "authorization: Bearer $tok" "http://127.0.0.1:$http/api/transport/live?online=true" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
last=-1; still=0
for _ in $(seq 1 600); do
  n=$(online)
  [ "$n" -ge "$terms" ] && break
  if [ "$n" -eq "$last" ]; then still=$((still + 1)); else still=0; fi
  [ "$still" -ge 30 ] && break
  last=$n; sleep 1
done
sleep 15 # every terminal has reported at least once more

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $bin; $terms simulated terminals every 10 s plus the demo fleet; $(online) vehicles online for jt.liu"
echo "browser: headless Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), WebGL on the CPU (SwiftShader); console: production build (vite preview)"
node web/e2e/map-perf.mjs "http://127.0.0.1:$web" "$data" jt.liu "$seconds"

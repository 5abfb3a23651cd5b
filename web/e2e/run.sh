#!/usr/bin/env bash
# Builds the console, the binary with it embedded, starts `serve --demo` on free ports and runs
# the end-to-end test in headless Chromium. Used by .ci/run; needs npm and /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
(cd .. && cargo build -q -p wuqing)
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
../target/debug/wuqing --data-dir "$data" serve --demo --http "127.0.0.1:$port" --jt808 off --mqtt off >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 120); do [ -s "$data/demo-devices.txt" ] && (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.5; done
node e2e/console.test.mjs "http://127.0.0.1:$port" "$data" || { tail -20 "$data/server.log"; exit 1; }

#!/usr/bin/env bash
# Builds the console, the binary with it embedded, and runs each end-to-end test (e2e/*.test.mjs,
# or those named as arguments) in headless Chromium against its own fresh `serve --demo` on free
# ports, so that no test sees another's lock-outs or enrolments. Used by .ci/run; needs npm and
# /usr/bin/chromium. WUQING_BIN runs an already built binary instead (then nothing is built:
# that binary must embed the console you want to test).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WUQING_BIN:-}" ]; then
  npm ci --no-audit --no-fund
  npm run build
  (cd .. && cargo build -q -p wuqing)
  target=$(cd .. && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  WUQING_BIN="$target/debug/wuqing"
fi
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(e2e/*.test.mjs)
for t in "${tests[@]}"; do
  echo "== $t"
  data=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$WUQING_BIN" --data-dir "$data" serve --demo --http "127.0.0.1:$port" --jt808 127.0.0.1:0 --mqtt off >"$data/server.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
  for _ in $(seq 1 120); do [ -s "$data/demo-devices.txt" ] && (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.5; done
  node "$t" "http://127.0.0.1:$port" "$data" || { tail -20 "$data/server.log"; exit 1; }
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$data"
  trap - EXIT
done

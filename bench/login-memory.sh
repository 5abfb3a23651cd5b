#!/usr/bin/env bash
# Resident memory of a fresh demo server before and after LOGINS successful logins (8 at a time)
# and LOGINS more: each login computes an argon2id hash with 19 MiB of working memory, which must
# not stay behind in the allocator.
# Usage: bench/login-memory.sh [LOGINS=64]
# WUQING_BIN names a binary to use instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-64}
. bench/lib.sh
data=$(mktemp -d)
port=$(free_port)
WUQING__LOG__LEVEL=warn $bin --data-dir "$data" serve --demo --http "127.0.0.1:$port" --jt808 127.0.0.1:0 --mqtt off >"$data/out.txt" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do [ -s "$data/demo-accounts.txt" ] && curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.2; done
sleep 20
rss() { awk '/VmRSS/{printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
pw=$(awk '$2=="jt.liu"{print $3}' "$data/demo-accounts.txt")
logins() {
  seq 1 "$n" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H 'content-type: application/json' \
    -d "{\"username\":\"jt.liu\",\"password\":\"$pw\"}" "http://127.0.0.1:$port/api/auth/login" | sort | uniq -c | tr -s ' \n' ' '
}
r0=$(rss)
a1=$(logins); r1=$(rss)
a2=$(logins); r2=$(rss)
echo "RSS after start ${r0} MB; after $n logins (HTTP status count:${a1}) ${r1} MB; after $((2 * n)) (${a2}) ${r2} MB"

#!/usr/bin/env bash
# Property-based API tests (issue #8): schemathesis, pinned below, generates requests from the
# server's own OpenAPI document (`/api/openapi.json`) and checks every answer: never a 5xx, the
# status code documented for the operation, the documented content type, and a body that
# matches the documented schema.
#
# It starts `wuqing serve --demo` (WUQING_BIN, default target/debug/wuqing, built by the caller)
# in a throwaway data directory on free ports, signs in as demo accounts and runs schemathesis
# once per account, since each scope reaches other code paths:
#   jt.liu      the transport bureau's regulator (the whole transport domain, supervision),
#   bus.sun     an enterprise's operator (its own vehicles, terminals, archives, replies),
#   (nobody)    no credentials at all: every operation's 401 and the login itself.
# Random POST/PUT/PATCH/DELETE bodies change the demo district: that is why the data directory is
# thrown away. Two operations would end the session under test and are left out of the signed-in
# runs: POST /api/auth/logout (revokes the token in use) and POST /api/auth/login (random
# passwords for real user names would count towards the lock-out of the very accounts in use).
# The login is tested in the last run, without credentials, when no account is needed any more.
# A password change needs the current password, which schemathesis cannot guess, and the token in
# use is a session whose id is never listed, so neither can end the session: both stay in.
#
# Reproducible: a fixed seed (SCHEMATHESIS_SEED) and a bounded number of examples per operation
# (SCHEMATHESIS_EXAMPLES). Fuzzing goes on until the time budget of a run is spent
# (SCHEMATHESIS_MAX_TIME seconds each signed in, a third of it without credentials): about four
# minutes in all. On a failure
# schemathesis prints a curl command per failing case, and this script the command that reruns it.
# Used by .ci/run; run it alone with `cargo build -p wuqing && bash .ci/schemathesis.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
CACHE="${WUQING_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wuqing}"
VENV="$CACHE/schemathesis-$VERSION"
BIN="${WUQING_BIN:-target/debug/wuqing}"
SEED="${SCHEMATHESIS_SEED:-8}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-25}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-100}"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "installing schemathesis $VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build -p wuqing, or set WUQING_BIN)" >&2; exit 1; }

data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The terminal gateway on a port the system picks, no MQTT endpoint: nothing fixed that could clash.
"$BIN" --data-dir "$data" serve --demo --http "127.0.0.1:$port" --jt808 127.0.0.1:0 --mqtt off >"$data/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 240); do
  [ -s "$data/demo-accounts.txt" ] && curl -fsS "$base/api/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -30 "$data/server.log"; echo "the server exited" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$base/api/health" >/dev/null || { tail -30 "$data/server.log"; echo "the server did not come up" >&2; exit 1; }

token() {
  local user=$1 pass
  pass=$(awk -v u="$user" '$2 == u { print $3 }' "$data/demo-accounts.txt")
  [ -n "$pass" ] || { echo "no demo password for $user" >&2; return 1; }
  curl -fsS -H 'content-type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"username": sys.argv[1], "password": sys.argv[2]}))' "$user" "$pass")" \
    "$base/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
# Both tokens before any run: no run can then lock an account out before it is used.
regulator=$(token jt.liu)
operator=$(token bus.sun)

failed=()
run() {
  local who=$1 max_time=$2; shift 2
  local args=(--config-file .ci/schemathesis.toml run "$base/api/openapi.json" --checks "$CHECKS" --seed "$SEED" --max-examples "$EXAMPLES"
    --max-time "$max_time" --phases examples,coverage,fuzzing --workers 2 --request-timeout 30
    --generation-database none --no-color "$@")
  echo
  echo "== schemathesis as $who"
  if ! "$VENV/bin/schemathesis" "${args[@]}"; then
    failed+=("$who")
    # Tokens are masked: rerun against a server of your own with a fresh token.
    printf 'reproduce (a fresh `serve --demo`, the same seed):\n  %q' "$VENV/bin/schemathesis"
    for a in "${args[@]}"; do
      case $a in Authorization:*) printf ' %q' "Authorization: Bearer \$TOKEN" ;; *) printf ' %q' "$a" ;; esac
    done
    printf '\n'
  fi
}
signed_in=(--exclude-path /api/auth/logout --exclude-path /api/auth/login)
run "jt.liu (regulator)" "$MAX_TIME" -H "Authorization: Bearer $regulator" "${signed_in[@]}"
run "bus.sun (operator)" "$MAX_TIME" -H "Authorization: Bearer $operator" "${signed_in[@]}"
# Without credentials nearly every answer is the same 401: a third of the time is plenty.
run "nobody (no credentials; includes the login)" "$((MAX_TIME / 3 + 1))"

if grep -q "a request handler panicked\|internal error" "$data/server.log"; then
  echo "the server logged internal errors:" >&2
  grep -n "panicked\|internal error" "$data/server.log" | head -20 >&2
  failed+=("server log")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "schemathesis found problems: ${failed[*]}" >&2
  exit 1
fi
echo "schemathesis: no server error, every answer as documented"

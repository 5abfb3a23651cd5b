#!/usr/bin/env bash
# Scale-out: the platform as five processes on the local NATS JetStream and PostgreSQL (two
# gateways, two processors, one API), with the configurations of deploy/*.toml. Terminals report
# through both gateways (each speeding for 90 s at its own moment, so alarms are raised
# throughout); one processor is killed with SIGKILL mid-load, later one gateway (its terminals
# fall back to the other, as to a backup server). Afterwards:
#   - every position the terminals heard acknowledged is stored, once (`sim verify`);
#   - every alarm the stored positions imply is on the desk, and none twice (`sim verify --alarms`);
#   - the API node's live map holds every terminal's vehicle, online, with a position of the
#     last minute and its driver's card (it is fed over NATS: it runs neither gateway nor
#     processor), and its list of connections holds every terminal (asked of the gateways);
#   - a command sent from the API node reaches its terminal through the gateway holding it, and
#     the terminal's answer comes back;
#   - the API node's WebSockets (alarm desk, live map) carry the alarms the processors raise and
#     the vehicles moving (bench/ws-watch.mjs);
#   - the audit chain verifies.
# Usage: bench/scale-out.sh [TERMINALS=200] [SECONDS=150] [INTERVAL_MS=1000]
# Needs NATS with JetStream (WUQING_TEST_NATS, default nats://127.0.0.1:4222) and PostgreSQL
# (WUQING_TEST_PG, default postgres://root@127.0.0.1/test; a database of its own is created).
# WUQING_BIN names a binary to use instead of building the release one. Exits non-zero if
# anything was lost or doubled.
set -euo pipefail
cd "$(dirname "$0")/.."
terms=${1:-200}
duration=${2:-150}
interval=${3:-1000}
. bench/lib.sh
nats=${WUQING_TEST_NATS:-nats://127.0.0.1:4222}
pg=${WUQING_TEST_PG:-postgres://root@127.0.0.1/test}
db="wq_scale_$$"
psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
data=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
export WUQING__STORE__URL="${pg%/*}/$db"
export WUQING__BUS__URL="$nats"
export WUQING__BUS__REPLICAS=1
export WUQING__BUS__NAMESPACE="scale$$"
export WUQING__LOG__LEVEL=warn
export RUST_LOG=${RUST_LOG:-warn,kernel::cluster=info,transport::processor=info}
last=$((terms - 1))
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null

api=$(free_port)
# The API node seeds the demo district (its accounts read the fleet below); as an API node it
# drives no simulated fleet.
start_node api api --http "127.0.0.1:$api" --jt808 off --demo
wait_http "$api"
h1=$(free_port); h2=$(free_port); gw1=$(free_port); gw2=$(free_port); hp1=$(free_port); hp2=$(free_port)
start_node proc1 processor --http "127.0.0.1:$hp1" --jt808 off
start_node proc2 processor --http "127.0.0.1:$hp2" --jt808 off
start_node gw1 gateway --http "127.0.0.1:$h1" --jt808 "127.0.0.1:$gw1"
start_node gw2 gateway --http "127.0.0.1:$h2" --jt808 "127.0.0.1:$gw2"
for p in "$hp1" "$hp2" "$h1" "$h2"; do wait_http "$p"; done
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw2") 2>/dev/null && break; sleep 0.1; done

for i in $(seq 0 "$last"); do
  printf '[[vehicle]]\nphone = "1370%07d"\nspeeding = { after_s = %d, for_s = 90, factor = 2.2 }\n' \
    "$i" $(( (i * 37) % (duration > 100 ? duration - 90 : 10) ))
done >"$data/scenario.toml"
$bin sim run --gateway "127.0.0.1:$gw1,127.0.0.1:$gw2" --phones "13700000000-1370$(printf %07d $last)" \
  --interval-ms "$interval" --seconds "$duration" --scenario "$data/scenario.toml" --ack-log "$data/acks.txt" \
  >"$data/sim.log" 2>&1 &
sim=$!
# The API node's WebSockets over the whole run (alarm changes and vehicles
# moving, both from other nodes over NATS).
pw=$(awk '$2 == "jt.liu" {print $3}' "$data/demo-accounts.txt")
token=$(curl -sf -X POST "http://127.0.0.1:$api/api/auth/login" -H 'content-type: application/json' \
  -d "{\"username\":\"jt.liu\",\"password\":\"$pw\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ws_seconds=$((duration + 5))
node --experimental-websocket bench/ws-watch.mjs "$api" "$token" "$ws_seconds" >"$data/ws.json" 2>"$data/ws.err" &
ws=$!
sleep $((duration / 3))
kill -9 "$pid_proc1"
echo "SIGKILL processor 1 at $(date -u +%T)"
sleep $((duration / 3))
kill -9 "$pid_gw1"
echo "SIGKILL gateway 1 at $(date -u +%T)"
sleep 10
# The API's view while the terminals still report: every vehicle online with a fresh position.
fleet_ok=1
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$api/api/transport/live" >"$data/live.json" || fleet_ok=0
python3 - "$data/live.json" "$terms" <<'EOF' || fleet_ok=0
import json, sys, time
body = json.load(open(sys.argv[1]))
items = body
load = [v for v in items if v.get("plate", "").startswith("津L")]
want = int(sys.argv[2])
fresh = [v for v in load if v.get("online") and v.get("position")
         and time.time() * 1000 - v["position"]["device_ms"] < 60_000]
drivers = [v for v in fresh if (v.get("driver") or {}).get("name", "").startswith("测试驾驶员")]
print(f"API node's live map: {len(load)} load-test vehicles, {len(fresh)} online with a position of the last minute, "
      f"{len(drivers)} with their driver's card (of {want})")
sys.exit(0 if len(fresh) == want and len(drivers) == want else 1)
EOF
# The connections the API node lists are the gateways' (gateway 2 holds them all now).
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$api/api/transport/connections" >"$data/conns.json" || fleet_ok=0
python3 - "$data/conns.json" "$data/live.json" "$terms" <<'EOF' || fleet_ok=0
import json, sys
conns, live, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
load = {v["vehicle_id"] for v in live if v.get("plate", "").startswith("津L")}
listed = [c for c in conns if c["vehicle_id"] in load]
print(f"API node's connections: {len(listed)} load-test terminals connected (of {want})")
sys.exit(0 if len(listed) == want else 1)
EOF
# A command from the API node reaches the terminal through the gateway holding it (over NATS):
# a text read aloud, and a parameter query whose answer comes back with the parameters.
cmd_ok=1
vid=$(python3 -c 'import json,sys; print(next(v["vehicle_id"] for v in json.load(open(sys.argv[1])) if v["plate"].startswith("津L") and v["online"]))' "$data/live.json" 2>/dev/null || true)
command() {
  curl -s -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -X POST "http://127.0.0.1:$api/api/transport/vehicles/$vid/commands" -d "$1"
}
if [ -n "$vid" ]; then
  text=$(command '{"kind":"text","text":"前方路段限速60公里","tts":true}')
  params=$(command '{"kind":"query_parameters","ids":[1]}')
  echo "command from the API node, text: $text"
  echo "command from the API node, parameters: $params"
  python3 -c 'import json,sys; t=json.loads(sys.argv[1]); p=json.loads(sys.argv[2]); sys.exit(0 if t["delivered"] and t["result"]==0 and p["delivered"] and p.get("parameters") else 1)' "$text" "$params" || cmd_ok=0
else
  cmd_ok=0
fi
wait "$sim"
tail -n 2 "$data/sim.log"
wait "$ws" || true
ws_ok=1
echo "API node's WebSockets: $(cat "$data/ws.json")"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if c["alarms"] > 0 and c["vehicle_changes"] > 0 and c["snapshots"] > 0 else 1)' "$data/ws.json" || ws_ok=0
# Let the processor drain the stream, then stop the survivors cleanly.
sleep 10
for p in "$pid_gw2" "$pid_proc2" "$pid_api"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "$pid_gw2" "$pid_proc2" "$pid_api"; do wait "$p" 2>/dev/null || true; done
status=0
$bin --data-dir "$data" sim verify --ack-log "$data/acks.txt" --alarms || status=1
$bin --data-dir "$data" audit verify || status=1
[ "$fleet_ok" = 1 ] || { echo "the API node does not see the whole fleet"; status=1; }
[ "$cmd_ok" = 1 ] || { echo "a command from the API node did not reach its terminal"; status=1; }
[ "$ws_ok" = 1 ] || { echo "the API node's WebSockets did not carry the other nodes' changes"; status=1; }
if [ "$status" = 0 ]; then
  rm -rf "$data"
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
else
  echo "kept for inspection: $data (database $db)"
fi
exit "$status"

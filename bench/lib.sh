# Shared by the bench scripts (sourced, from the repository root): the binary to measure and a
# free local port.
# WUQING_BIN names a binary to use; otherwise the release one is built.
if [ -z "${WUQING_BIN:-}" ]; then
  cargo build --release -q -p wuqing
  bin=./target/release/wuqing
else
  bin=$WUQING_BIN
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The scale-out scripts: `start_node NAME ROLE [serve args…]` starts one process of the platform
# with deploy/ROLE.toml in $data (its log $data/NAME.log, its pid in $pids and $pid_NAME);
# `wait_http PORT` waits until that node answers /api/health.
start_node() {
  local name=$1 role=$2
  shift 2
  WUQING__NODE__NAME="$name" $bin --config "deploy/$role.toml" --data-dir "$data" serve --mqtt off "$@" \
    >>"$data/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
wait_http() {
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$1/api/health" >/dev/null && return; sleep 0.2; done
  echo "node on $1 did not start"; tail -n 30 "$data"/*.log; exit 1
}

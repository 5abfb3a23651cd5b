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

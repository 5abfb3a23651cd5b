#!/usr/bin/env bash
# Storage stalls under load: simulated terminals report through the JT/T 808 gateway while the
# store is made to stall for STALL_S seconds, in each way that applies to the backend:
#   SQLite      lock       another process holds the write lock (BEGIN EXCLUSIVE)
#               disk-full  the data directory is a tmpfs of our own, filled to the last byte
#                          (needs root; skipped otherwise)
#   PostgreSQL  lock       another session holds LOCK TABLE transport_positions IN ACCESS
#                          EXCLUSIVE MODE
#               sigstop    the whole server paused (SIGSTOP, then SIGCONT): only with STORE_URL
#                          `pg-throwaway`, a cluster of our own under /tmp on a free port. Never
#                          the shared server.
# For each stall it prints the positions acknowledged while storage was away (the counter of the
# gateway's 0x8001 successes, from /metrics), the server's RSS before, at most during and after,
# the time from storage's return to the first acknowledgement, the commit failures; at the end
# `wuqing sim verify` checks every acknowledged report against the store (lost must be 0).
# Usage: bench/storage-stall.sh [STORE_URL|pg-throwaway] [TERMINALS=1000] [INTERVAL_MS=1000] [STALL_S=20]
# (WUQING_BIN=path runs that binary instead of building the release one.)
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-}
terms=${2:-1000}
interval=${3:-1000}
stall=${4:-20}
bin=${WUQING_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p wuqing
  bin=${CARGO_TARGET_DIR:-./target}/release/wuqing
fi
data=$(mktemp -d)
# Logs and files of the script apart from the data directory, which may fill up.
logs=$(mktemp -d)
pid= sim= pgdir= pgport= tmpfs=
cleanup() {
  [ -n "$sim" ] && kill "$sim" 2>/dev/null && wait "$sim" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  if [ -n "$pgdir" ]; then
    [ -f "$pgdir/data/postmaster.pid" ] && for p in $(pg_pids); do kill -CONT "$p" 2>/dev/null || true; done
    su postgres -c "$pgbin/pg_ctl -D $pgdir/data -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
  cp "$logs/server.log" /tmp/storage-stall-server.log 2>/dev/null || true
  [ -n "$tmpfs" ] && umount -l "$data" 2>/dev/null
  rm -rf "$data" "$logs"
}
trap cleanup EXIT
export WUQING__LOG__LEVEL=warn
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
http=$(free_port); gw=$(free_port)
metric() { # a counter from the server's /metrics, 0 when absent
  curl -s "http://127.0.0.1:$http/metrics" | awk -v m="$1" '$1 == m {v = $2} END {printf "%d\n", v + 0}'
}
now_ms() { date +%s%3N; }

pgbin=/usr/lib/postgresql/15/bin
pg_pids() { # the throwaway cluster's postmaster and its children
  local pm
  pm=$(head -n1 "$pgdir/data/postmaster.pid")
  echo "$pm"; ps -o pid= --ppid "$pm"
}
kind=sqlite
case "$store" in
  pg-throwaway)
    kind=postgres
    pgdir=$(mktemp -d /tmp/wq-pg-XXXX); chown postgres "$pgdir"; pgport=$(free_port)
    su postgres -c "$pgbin/initdb -D $pgdir/data -U root --auth=trust" >/dev/null
    su postgres -c "$pgbin/pg_ctl -D $pgdir/data -o '-p $pgport -k $pgdir' -l $pgdir/log -w start" >/dev/null
    psql -h 127.0.0.1 -p "$pgport" -U root -d postgres -qc "CREATE DATABASE wq_stall" >/dev/null
    store="postgres://root@127.0.0.1:$pgport/wq_stall"
    ;;
  postgres*) kind=postgres ;;
  "")
    if mount -t tmpfs -o size=2g tmpfs "$data" 2>/dev/null; then tmpfs=1; fi
    ;;
esac
[ -n "$store" ] && export WUQING__STORE__URL="$store"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "store: ${store:-sqlite (embedded)}${tmpfs:+ on a 2 GB tmpfs}; $terms terminals every $interval ms; stalls of $stall s"
$bin --data-dir "$data" sim provision --count "$terms" >/dev/null
$bin --data-dir "$data" serve --http "127.0.0.1:$http" --jt808 "127.0.0.1:$gw" >"$logs/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$gw") 2>/dev/null && break; sleep 0.1; done
last=$((terms - 1))
$bin sim run --gateway "127.0.0.1:$gw" --phones "13700000000-1370$(printf %07d $last)" --interval-ms "$interval" \
  --ack-log "$logs/acks.txt" >"$logs/sim.log" 2>&1 &
sim=$!
sleep 20
echo "warmed up: $(metric wuqing_jt808_positions_acked_total) acknowledged, rss $(($(rss_kb "$pid") / 1024)) MB"

# One stall: $1 names it; $2 starts it and returns once storage is away; $3 brings storage back.
stall_once() {
  local name=$1 start=$2 stop=$3
  local rss0 peak r a0 a1 f0 f1 u0 u1 w0 w1 t_back t_first acked_after
  rss0=$(rss_kb "$pid"); f0=$(metric wuqing_jt808_commit_failures_total)
  u0=$(metric wuqing_jt808_positions_unanswered_total); w0=$(grep -c WARN "$logs/server.log" || true)
  $start
  a0=$(metric wuqing_jt808_positions_acked_total)
  peak=$rss0
  for _ in $(seq 1 "$stall"); do
    sleep 1
    r=$(rss_kb "$pid"); [ "$r" -gt "$peak" ] && peak=$r
  done
  a1=$(metric wuqing_jt808_positions_acked_total)
  t_back=$(now_ms)
  $stop
  while [ "$(metric wuqing_jt808_positions_acked_total)" -le "$a1" ]; do
    sleep 0.05
    [ $(($(now_ms) - t_back)) -gt 120000 ] && { echo "$name: nothing acknowledged 120 s after storage returned" >&2; exit 1; }
  done
  t_first=$(($(now_ms) - t_back))
  sleep 15
  acked_after=$(($(metric wuqing_jt808_positions_acked_total) - a1))
  f1=$(metric wuqing_jt808_commit_failures_total); u1=$(metric wuqing_jt808_positions_unanswered_total)
  w1=$(grep -c WARN "$logs/server.log" || true)
  echo "$name: acknowledged during the stall $((a1 - a0)); first acknowledgement ${t_first} ms after storage returned;" \
    "$acked_after acknowledged in the 15 s after; commit failures $((f1 - f0)); reports left unanswered $((u1 - u0));" \
    "server rss before $((rss0 / 1024)) MB, at most $((peak / 1024)) MB during, $(($(rss_kb "$pid") / 1024)) MB after;" \
    "server log: $((w1 - w0)) warnings"
}

lock_sqlite() {
  python3 - "$data/wuqing.db" "$logs/locked" <<'EOF' &
import sqlite3, sys, os, time
c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.01)
c.execute("ROLLBACK")
EOF
  locker=$!
  while [ ! -e "$logs/locked" ]; do sleep 0.01; done
}
unlock_sqlite() { rm -f "$logs/locked"; wait "$locker"; }
fill_disk() {
  # Everything but the last bytes, then byte by byte to the end.
  fallocate -l "$(($(df --output=avail -B1 "$data" | tail -n1) - 65536))" "$data/filler" 2>/dev/null || true
  dd if=/dev/zero of="$data/filler2" bs=4096 2>/dev/null || true
  dd if=/dev/zero of="$data/filler3" bs=1 2>/dev/null || true
}
free_disk() { rm -f "$data/filler" "$data/filler2" "$data/filler3"; }
lock_pg() {
  mkfifo "$logs/pgin"
  psql "$store" -v ON_ERROR_STOP=1 <"$logs/pgin" >"$logs/pglock.log" 2>&1 &
  locker=$!
  exec 7>"$logs/pgin"
  echo "BEGIN; LOCK TABLE transport_positions IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&7
  while ! grep -q locked "$logs/pglock.log"; do sleep 0.01; done
}
unlock_pg() { echo "COMMIT;" >&7; exec 7>&-; wait "$locker"; rm -f "$logs/pgin"; }
stop_pg() { for p in $(pg_pids); do kill -STOP "$p"; done; }
cont_pg() { for p in $(pg_pids); do kill -CONT "$p"; done; }

if [ "$kind" = sqlite ]; then
  stall_once lock lock_sqlite unlock_sqlite
  if [ -n "$tmpfs" ]; then stall_once disk-full fill_disk free_disk; else echo "disk-full: skipped (no tmpfs: needs root)"; fi
else
  stall_once lock lock_pg unlock_pg
  if [ -n "$pgdir" ]; then stall_once sigstop stop_pg cont_pg; else echo "sigstop: skipped (only on pg-throwaway, never a shared server)"; fi
fi
# Retransmissions and reconnections settle, then the terminals log out and write their ack log.
sleep 40
kill -INT "$sim"; wait "$sim" || true; sim=
tail -n 3 "$logs/sim.log"
kill -TERM "$pid"; wait "$pid" || true; pid=
$bin --data-dir "$data" sim verify --ack-log "$logs/acks.txt"

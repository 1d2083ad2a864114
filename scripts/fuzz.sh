#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 20)
# from its seed corpus. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
bash scripts/setup.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DPRESENCE_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j2
for target in frame target token http ws_op; do
  work="build-fuzz/corpus-$target"
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s"
  "build-fuzz/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 \
    -print_final_stats=0 "$work" "tests/fuzz/corpus/$target" 2>&1 | tail -n 2
done

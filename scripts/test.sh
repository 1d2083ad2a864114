#!/usr/bin/env bash
# Installs what the build needs (Debian packages), builds with warnings as errors,
# and runs every test. Usage: scripts/test.sh [extra cmake args...]
#   PRESENCE_SANITIZE=address,undefined scripts/test.sh   (or =thread)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build_dir="build"
args=(-DPRESENCE_WERROR=ON)
if [ -n "${PRESENCE_SANITIZE:-}" ]; then
  build_dir="build-${PRESENCE_SANITIZE//,/-}"
  args+=(-DPRESENCE_SANITIZE="${PRESENCE_SANITIZE}" -DPRESENCE_BUILD_BENCH=OFF
         -DCMAKE_BUILD_TYPE=Debug)
fi
if [ -z "${PRESENCE_SANITIZE:-}" ]; then
  # The decoders of untrusted bytes, fuzzed briefly (before the tests, so that
  # ctest's summary closes the output).
  bash scripts/fuzz.sh "${PRESENCE_FUZZ_SECONDS:-15}"
fi
cmake -S . -B "$build_dir" -G Ninja "${args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j2
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
# A test that fails is run once more (multi-process cluster tests still flake
# now and then on a loaded 2-core machine; README "What is left"): a real
# failure fails twice.
cd "$build_dir" && ctest -j2 --output-on-failure --timeout 600 --repeat until-pass:2

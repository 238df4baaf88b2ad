#!/usr/bin/env bash
# The whole test suite: configure (ci preset: warnings as errors), build, fetch the default
# model, run every test with ctest. Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export HALYARD_TEST_MODEL="${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}"
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)"
# Compile-only: the backends and their NEON kernels for AArch64 (nothing here runs ARM code).
cmake --preset cross-aarch64 >/dev/null
cmake --build --preset cross-aarch64 -j "$(nproc)"
ctest --preset ci -j "$(nproc)" "$@"

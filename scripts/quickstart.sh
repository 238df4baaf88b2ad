#!/usr/bin/env bash
# From a fresh Debian 12 machine to generated text: install dependencies, build, fetch the
# default model, generate on the best available device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
model=$(bash scripts/fetch-model.sh)
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
./build/release/bin/halyard devices
./build/release/bin/halyard generate -m "$model" --chat -p "${1:-What is the capital of France?}" -n 64

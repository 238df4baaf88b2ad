#!/usr/bin/env bash
# The server's tests: a real halyard-server on loopback, driven by the official openai client,
# httpx, a Prometheus parser and a headless Chromium for the chat page (tests/server). Needs the
# ci build (scripts/test.sh builds it first) and chromium + chromium-driver (install-deps.sh).
# Screenshots go to build/artifacts. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=$(bash scripts/server-venv.sh)
export HALYARD_TEST_MODEL="${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}"
export HALYARD_SERVER_BIN="${HALYARD_SERVER_BIN:-$root/build/ci/bin/halyard-server}"
export HALYARD_ARTIFACT_DIR="${HALYARD_ARTIFACT_DIR:-$root/build/artifacts}"
exec "$(dirname "$python")/pytest" -q -p no:cacheprovider "$root/tests/server" "$@"

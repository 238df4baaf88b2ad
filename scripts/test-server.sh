#!/usr/bin/env bash
# The server's tests: a real halyard-server on loopback, driven by the official openai client,
# httpx and a Prometheus parser (tests/server). The Python packages go into build/server-venv.
# Needs the ci build (scripts/test.sh builds it first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/build/server-venv
export HALYARD_TEST_MODEL="${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}"
export HALYARD_SERVER_BIN="${HALYARD_SERVER_BIN:-$root/build/ci/bin/halyard-server}"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
stamp=$venv/.requirements
if ! cmp -s tests/server/requirements.txt "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/server/requirements.txt
  cp tests/server/requirements.txt "$stamp"
fi
# The /metrics format through prometheus_client, on a sample with known values.
"$venv/bin/python" tests/server/check_metrics_format.py "$root/build/ci/bin/halyard-metrics-sample"
exec "$venv/bin/pytest" -q -p no:cacheprovider "$root/tests/server" "$@"

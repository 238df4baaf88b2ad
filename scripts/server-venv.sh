#!/usr/bin/env bash
# The server tests' Python environment: build/server-venv with tests/server/requirements.txt
# (the openai client, httpx, prometheus-client, selenium, pytest), reinstalled only when the
# requirements change. Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/build/server-venv
[[ -x $venv/bin/python ]] || python3 -m venv "$venv" >&2
stamp=$venv/.requirements
if ! cmp -s tests/server/requirements.txt "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/server/requirements.txt >&2
  cp tests/server/requirements.txt "$stamp"
fi
echo "$venv/bin/python"

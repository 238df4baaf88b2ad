#!/usr/bin/env bash
# The Python package (python/): installs it with pip into a virtual environment under build/
# (pip builds the C++ library with CMake through scikit-build-core), then runs its pytest suite
# on the default model. Needs the packages of scripts/install-deps.sh (test.sh installs them).
# Extra arguments go to pytest (e.g. -k stream).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/build/python-venv
export HALYARD_TEST_MODEL="${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}"
# The tests must exercise the installed package, not a build tree.
unset HALYARD_LIBRARY HALYARD_PLUGIN_PATH HALYARD_DEVICE
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
# Two compile jobs (the CI machine has 2 cores); ccache is picked up by the CMake project; the
# build directory persists, so a second run only relinks what changed.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python pytest \
  --config-settings=build-dir="$root/build/python-wheel"
# The pytest executable (not `python -m pytest`, which would put the working directory first
# on sys.path) from outside python/, so `import halyard` is the installed package.
cd "$root/build"
exec "$venv/bin/pytest" -q -p no:cacheprovider "$root/python/tests" "$@"

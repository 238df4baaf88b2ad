#!/usr/bin/env bash
# The unit tests, the C API tests and the ref and cpu op conformance under AddressSanitizer +
# UndefinedBehaviorSanitizer (the asan preset, building only what these need), then each libFuzzer
# target (the fuzz preset, clang) for 60 s from a seed corpus derived from the default model now.
# Called by scripts/test.sh; needs HALYARD_TEST_MODEL (test.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HALYARD_TEST_MODEL:=$(bash scripts/fetch-model.sh)}"
export HALYARD_TEST_MODEL

cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)" --target hal_unit_tests reference_unit_tests runtime_unit_tests jinja_unit_tests \
  conformance_harness_tests c_api_e2e_tests conformance_tests halyard-backend-ref halyard-backend-cpu
# allocator_may_return_null: an impossible allocation (the C API tests ask for a KV budget of
# INT64_MAX bytes) must come back as a null the code reports as out of memory, as from a real
# allocator, not abort the run.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in hal_unit_tests reference_unit_tests runtime_unit_tests jinja_unit_tests conformance_harness_tests c_api_e2e_tests; do
  echo "asan: $t"
  "build/asan/bin/$t" --gtest_brief=1
done
for device in ref cpu; do
  echo "asan: conformance_tests --device $device"
  build/asan/bin/conformance_tests --device "$device" --gtest_brief=1
done

# libFuzzer (clang): each target for 60 s from a seed corpus derived from the default model now.
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target gguf_fuzz tokenizer_fuzz server_request_fuzz jinja_fuzz
corpus=build/fuzz/corpus
rm -rf "$corpus"
python3 scripts/make-fuzz-corpus.py "$HALYARD_TEST_MODEL" "$corpus"
for target in gguf tokenizer server_request jinja; do
  echo "fuzz: ${target}_fuzz for 60 s"
  mkdir -p "$corpus/$target-new"
  log=build/fuzz/${target}_fuzz.log
  if ! "build/fuzz/bin/${target}_fuzz" -max_total_time=60 -print_final_stats=1 -artifact_prefix="build/fuzz/${target}-" \
    "$corpus/$target-new" "$corpus/$target" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: ${target}_fuzz found a failure (the input is in build/fuzz/${target}-*)" >&2
    exit 1
  fi
  tail -n 12 "$log"
done

#!/usr/bin/env bash
# `halyard quantize` checks as a user meets them: quantize_checks.sh HALYARD TMPDIR CHECK.
# TMPDIR is this check's own directory in the build tree (ctest runs checks in parallel).
set -uo pipefail
halyard=$1
tmp=$2
check=$3
model=${HALYARD_TEST_MODEL:-${XDG_CACHE_HOME:-$HOME/.cache}/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf}
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -f $model ]] || fail "model not found at $model: run scripts/fetch-model.sh or set HALYARD_TEST_MODEL"
rm -rf "$tmp" && mkdir -p "$tmp" || fail "cannot create $tmp"
trap 'rm -rf "$tmp"' EXIT

# Runs halyard, keeping its exit status in $rc and its output in $out.
run() {
  out=$("$halyard" "$@" 2>&1)
  rc=$?
}
no_output_left() {
  [[ ! -e $1 && ! -e $1.tmp ]] || fail "a partial output was left behind: $(ls -l "$1"* 2>&1)"
}

case $check in
  generate_from_result)
    run quantize "$model" "$tmp/q4km.gguf" Q4_K_M
    [[ $rc == 0 ]] || fail "quantize exited $rc: $out"
    echo "$out"
    grep -q "fallback q4_k -> q5_0" <<<"$out" || fail "no fallback line in the summary"
    grep -q "warning: .*already quantized" <<<"$out" || fail "no requantization warning for a Q4_1 input"
    grep -Eq "^  q6_k +[0-9]+ tensors" <<<"$out" || fail "no per-format summary line for q6_k"
    [[ ! -e $tmp/q4km.gguf.tmp ]] || fail "the .tmp file is still there"
    run generate -m "$tmp/q4km.gguf" -d ref -c 64 -n 6 -p "The capital of France is"
    [[ $rc == 0 ]] || fail "generate on the quantized model exited $rc: $out"
    echo "$out"
    grep -q "The capital of France is ." <<<"$out" || fail "no generated text"
    ;;
  bad_input)
    run quantize "$tmp/missing.gguf" "$tmp/out.gguf" Q4_0
    [[ $rc != 0 ]] || fail "a missing input succeeded"
    grep -q "missing.gguf" <<<"$out" || fail "the error does not name the missing file: $out"
    printf 'GGUF\x03\x00\x00\x00garbage' >"$tmp/corrupt.gguf"
    run quantize "$tmp/corrupt.gguf" "$tmp/out.gguf" Q4_0
    [[ $rc != 0 ]] || fail "a corrupt input succeeded"
    grep -qi "corrupt\|GGUF" <<<"$out" || fail "unclear error for a corrupt input: $out"
    echo "$out"
    run quantize "$model" "$tmp/out.gguf" Q7_K
    [[ $rc != 0 ]] || fail "an unknown type succeeded"
    grep -q "unknown quantization type 'Q7_K'; known: .*Q4_K_M" <<<"$out" || fail "unclear error for a bad type: $out"
    echo "$out"
    no_output_left "$tmp/out.gguf"
    ;;
  unwritable_output)
    run quantize "$model" "$tmp/no/such/dir/out.gguf" Q8_0
    [[ $rc != 0 ]] || fail "an unwritable output succeeded"
    grep -q "cannot create '$tmp/no/such/dir/out.gguf.tmp'" <<<"$out" || fail "unclear error: $out"
    echo "$out"
    ;;
  out_of_disk)
    # A 16 MiB file-size limit stands in for a full disk: write() fails with EFBIG as it would
    # with ENOSPC, and SIGXFSZ is ignored so the process sees the error instead of dying.
    out=$(trap '' XFSZ; ulimit -f 16384; "$halyard" quantize "$model" "$tmp/big.gguf" Q8_0 2>&1)
    rc=$?
    [[ $rc == 1 ]] || fail "quantize exited $rc (want 1) when the disk is full: $out"
    grep -q "unavailable: writing .*big.gguf.tmp.: File too large" <<<"$out" || fail "unclear error: $out"
    grep -q "free some disk space" <<<"$out" || fail "unclear error for a full disk: $out"
    echo "$out"
    no_output_left "$tmp/big.gguf"
    ;;
  *)
    fail "unknown check $check"
    ;;
esac
echo "PASS: $check"

#!/usr/bin/env bash
# Developer check, not run by CI (CI has no llama.cpp): makes Q5_0, Q5_1 and K-quant files from
# the default model with llama.cpp's llama-quantize and compares Halyard's greedy text on the
# `ref` backend (or DEVICE) with llama.cpp's (llama-simple, greedy) on each file and prompt.
#
#   scripts/check-kquants-llama.sh [OUT_DIR]        (default /work/kq-models)
#
# Environment: LLAMA_BIN (llama.cpp's bin directory with llama-quantize and llama-simple,
# default /work/llama-build/bin), HALYARD (the CLI, default build/ci/bin/halyard), SRC (the
# source model, default the cached SmolLM2-135M-Instruct Q4_1; requantizing needs
# --allow-requantize, which is fine for a load-and-agree check), DEVICE (default ref), N
# (tokens, default 24), TYPES (default "Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K Q5_0 Q5_1").
# Model files stay in OUT_DIR, never in the repository.
#
# SmolLM2-135M's width 576 is no multiple of 256, so llama-quantize gives most of its tensors a
# fallback format (Q5_0, Q5_1, Q4_0, Q8_0) and only the 1536-wide ffn_down (and in Q3_K_M a few
# more) the K-quant: the files still carry q2_k..q6_k tensors, just fewer of them.
# Prints one line per file and prompt (same / DIFFERENT after how many generated characters)
# and exits 1 if any differs. A difference is not by itself a bug: Halyard's ref multiplies
# f32 activations in f64, while llama.cpp's CPU quantizes activations to 8 bits (per 32 for
# Q8_0/Q5_x weights, per 256 for K-quants), and this small model has many near ties; run the
# script with TYPES="Q8_0 Q4_1" for the baseline of formats every backend has.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/work/kq-models}
bin=${LLAMA_BIN:-/work/llama-build/bin}
halyard=${HALYARD:-build/ci/bin/halyard}
src=${SRC:-${HALYARD_MODEL_DIR:-$HOME/.cache/halyard/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
device=${DEVICE:-ref}
n=${N:-24}
types=${TYPES:-Q4_K_M Q5_K_M Q6_K Q3_K_M Q2_K Q5_0 Q5_1}
prompts=("The capital of France is" "Once upon a time, in a small village," "def fibonacci(n):")
export LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$out"
status=0
for t in $types; do
  f="$out/SmolLM2-135M-Instruct.$t.gguf"
  if [[ ! -f $f ]]; then
    "$bin/llama-quantize" --allow-requantize "$src" "$f" "$t" >"$out/$t.quantize.log" 2>&1
  fi
  for p in "${prompts[@]}"; do
    ours=$("$halyard" generate -d "$device" -m "$f" -p "$p" -n "$n" --temp 0 2>/dev/null)
    theirs=$("$bin/llama-simple" -m "$f" -n "$n" "$p" 2>/dev/null)
    if [[ "$ours" == "$theirs" ]]; then
      echo "$t | same      | $(printf %q "$ours")"
    else
      common=0
      while [[ "${ours:common:1}" == "${theirs:common:1}" ]]; do common=$((common + 1)); done
      echo "$t | DIFFERENT after $((common - ${#p})) generated characters | halyard: $(printf %q "$ours")"
      echo "$t |           | llama:   $(printf %q "$theirs")"
      status=1
    fi
  done
done
exit $status

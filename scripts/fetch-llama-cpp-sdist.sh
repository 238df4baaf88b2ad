#!/usr/bin/env bash
# Downloads the llama-cpp-python 0.3.36 source distribution from PyPI, checks its SHA-256 and
# unpacks the part of llama.cpp's tree that tests read (vendor/llama.cpp/models: the vocab-only
# GGUFs with their .inp/.out tokenizer tests, and the chat templates) into the cache outside the
# clone. Prints the unpacked root (the directory holding vendor/). Nothing from it is committed:
# the tests read it at run time. Reuses a complete earlier unpacking.
set -euo pipefail
version=0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache="${XDG_CACHE_HOME:-$HOME/.cache}/halyard"
root="$cache/llama_cpp_python-$version"
done_marker="$root/.halyard-unpacked"
if [[ -f $done_marker ]]; then
  echo "$root"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.sdist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-llama-cpp-sdist: downloading llama-cpp-python==$version (source) from PyPI" >&2
python3 -m pip download --quiet --no-deps --no-binary :all: --disable-pip-version-check \
  "llama-cpp-python==$version" -d "$tmp" >&2
archive="$tmp/llama_cpp_python-$version.tar.gz"
if ! echo "$sha256  $archive" | sha256sum -c --status; then
  echo "fetch-llama-cpp-sdist: SHA-256 mismatch for $(basename "$archive"); refusing to use it" >&2
  exit 1
fi
tar -xzf "$archive" -C "$tmp" "llama_cpp_python-$version/vendor/llama.cpp/models"
rm -rf "$root"
mv "$tmp/llama_cpp_python-$version" "$root"
touch "$done_marker"
echo "fetch-llama-cpp-sdist: unpacked $root" >&2
echo "$root"

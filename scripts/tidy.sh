#!/usr/bin/env bash
# Runs clang-tidy (the repo's .clang-tidy) over the C++ sources of a configured build (default
# build/ci, which writes compile_commands.json). CUDA sources are left out: clang cannot parse
# nvcc's command lines. Not part of test.sh (several minutes on 2 cores); run before a review.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/ci}
[[ -f $build/compile_commands.json ]] || { echo "tidy: configure $build first (cmake --preset ci)" >&2; exit 1; }
mapfile -t files < <(python3 -c '
import json, sys
cc = json.load(open(sys.argv[1]))
def cmd(c):
    return c.get("command") or " ".join(c.get("arguments", []))
print("\n".join(sorted({c["file"] for c in cc
                        if c["file"].endswith(".cpp") and "/build/" not in c["file"] and "nvcc" not in cmd(c)})))
' "$build/compile_commands.json")
run-clang-tidy-14 -p "$build" -quiet "${files[@]}" 2>&1 | tee "$build/tidy.log" | grep -E "(warning|error):" && {
  echo "tidy: findings above (full log in $build/tidy.log)" >&2
  exit 1
}
echo "tidy: clean (${#files[@]} files)"

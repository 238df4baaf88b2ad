#!/usr/bin/env bash
# Without a usable libamdhip64 the hip plugin still loads and says why it is unavailable (the
# plugin is a loader that dlopens the HIP runtime). The library is hidden by bind-mounting an
# empty file over it inside a private mount namespace, so nothing outside this test sees it.
# Usage: hip_runtime_missing.sh HALYARD_BINARY. Exit 77 (skipped) where namespaces are not allowed.
set -euo pipefail
halyard=$1
lib=$(ldconfig -p | sed -n 's/.*libamdhip64\.so\.5 .*=> \(.*\)/\1/p' | head -n 1)
if [[ -z $lib ]]; then
  echo "SKIPPED: libamdhip64.so.5 is not installed, so there is nothing to hide"
  exit 77
fi
real=$(readlink -f "$lib")
if ! unshare --mount true 2>/dev/null; then
  echo "SKIPPED: this machine does not allow private mount namespaces (unshare --mount)"
  exit 77
fi
out=$(unshare --mount bash -c 'mount --bind /dev/null "$1" && "$2" devices' _ "$real" "$halyard" 2>&1) || {
  echo "FAIL: halyard devices failed without the HIP runtime:"
  echo "$out"
  exit 1
}
echo "$out"
if ! grep -Eq '^hip +- +unavailable: libamdhip64\.so\.5 not found' <<<"$out"; then
  echo "FAIL: the hip backend does not say that libamdhip64 is missing"
  exit 1
fi
grep -Eq '^(cpu|ref) ' <<<"$out" || { echo "FAIL: the other backends are gone"; exit 1; }
echo "PASS: hip reports the missing runtime and the other backends still work"

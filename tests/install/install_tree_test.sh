#!/usr/bin/env bash
# install_tree_works: what an embedder meets. Installs the already built tree (nothing is
# rebuilt), moves the install elsewhere (it must be relocatable), builds embed.c against it
# through the CMake package and through pkg-config, and runs both programs and the installed
# `halyard devices` with an empty environment (no HALYARD_*, no LD_LIBRARY_PATH): each must find
# libhalyard.so and its plugins by itself. It also checks what is installed, the RUNPATHs, the
# SONAME and that libhalyard.so exports the C API only.
#
# Usage: install_tree_test.sh BUILD_DIR SOURCE_DIR CMAKE C_COMPILER BINDIR LIBDIR GENERATOR [LINKER_FLAGS]
# (BINDIR and LIBDIR relative to the prefix, as GNUInstallDirs gives them; LINKER_FLAGS: the
# build's executable linker flags, e.g. the asan preset's sanitizer runtime.)
set -euo pipefail
build=$1 src=$2 cmake=$3 cc=$4 bindir=$5 libdir=$6 generator=$7 ldflags=${8:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/halyard-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# What a user's shell would have, and nothing of Halyard's. OPENBLAS_CORETYPE is kept: this
# machine's environment sets it for OpenBLAS (the cpu plugin links it), and tests leave it alone.
clean_env=(env -i PATH=/usr/bin:/bin)
if [[ -n ${OPENBLAS_CORETYPE:-} ]]; then
  clean_env+=("OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE")
fi

echo "== install $build into $work/prefix"
"$cmake" --install "$build" --prefix "$work/prefix" >"$work/install.log" || {
  cat "$work/install.log"
  fail "cmake --install failed"
}
mkdir -p "$work/moved"
mv "$work/prefix" "$work/moved/prefix"
prefix=$work/moved/prefix
lib=$prefix/$libdir
echo "== moved to $prefix"

echo "== installed files"
unexpected=""
while IFS= read -r path; do
  rel=${path#"$prefix"/}
  echo "  $rel"
  case $rel in
    "$bindir/halyard" | "$bindir/halyard-server" | include/halyard.h | "$libdir"/libhalyard.so | "$libdir"/libhalyard.so.* | \
      "$libdir"/libhalyard-hal.so.* | "$libdir"/halyard/libhalyard-backend-*.so | \
      "$libdir"/halyard/libhalyard-hip-impl.so | \
      "$libdir"/cmake/halyard/halyard*.cmake | "$libdir"/pkgconfig/halyard.pc) ;;
    *) unexpected+=" $rel" ;;
  esac
done < <(find "$prefix" \( -type f -o -type l \) | sort)
[[ -z $unexpected ]] || fail "installed files a user does not need:$unexpected"
for need in "$bindir/halyard" "$bindir/halyard-server" include/halyard.h "$libdir/libhalyard.so" "$libdir/halyard/libhalyard-backend-ref.so" \
  "$libdir/cmake/halyard/halyardConfig.cmake" "$libdir/cmake/halyard/halyardConfigVersion.cmake" \
  "$libdir/pkgconfig/halyard.pc"; do
  [[ -e $prefix/$need ]] || fail "not installed: $need"
done

echo "== SONAME and RUNPATHs"
runpath() { readelf -d "$1" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p'; }
soname=$(readelf -d "$lib/libhalyard.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libhalyard.so.0 ]] || fail "libhalyard.so has SONAME '$soname', expected libhalyard.so.0"
[[ -e $lib/libhalyard.so.0 ]] || fail "no $libdir/libhalyard.so.0"
hal_soname=$(readelf -d "$lib/libhalyard.so" | sed -n 's/.*(NEEDED).*\[\(libhalyard-hal[^]]*\)\]/\1/p')
[[ $hal_soname == libhalyard-hal.so.0 && -e $lib/$hal_soname ]] || fail "libhalyard.so needs '$hal_soname', not installed as such"
lib_to_bin_rpath="\$ORIGIN/$(realpath --relative-to="$prefix/$bindir" "$lib")"
check_runpath() { # file expected
  local got
  got=$(runpath "$1")
  echo "  ${1#"$prefix"/}: $got"
  [[ $got == "$2" ]] || fail "${1#"$prefix"/} has RUNPATH '$got', expected '$2'"
}
check_runpath "$prefix/$bindir/halyard" "$lib_to_bin_rpath"
check_runpath "$prefix/$bindir/halyard-server" "$lib_to_bin_rpath"
check_runpath "$lib/libhalyard.so.0" "\$ORIGIN"
# The hip plugin's implementation (loaded by the plugin itself) needs the HAL as plugins do.
for plugin in "$lib"/halyard/libhalyard-backend-*.so "$lib"/halyard/libhalyard-hip-impl.so; do
  [[ -e $plugin ]] || continue
  check_runpath "$plugin" "\$ORIGIN/.."
done

echo "== symbols exported by libhalyard.so"
exported=$(nm -D --defined-only "$lib/libhalyard.so" | awk '{ print $NF }' | sort)
[[ -n $exported ]] || fail "libhalyard.so exports nothing"
others=$(grep -v '^halyard_' <<<"$exported" || true)
[[ -z $others ]] || fail "libhalyard.so exports more than the C API: $(c++filt <<<"$others" | head -20 | tr '\n' ' ')"
declared=0
while IFS= read -r fn; do
  grep -qx "$fn" <<<"$exported" || fail "halyard.h declares $fn but libhalyard.so does not export it"
  declared=$((declared + 1))
done < <(sed -n 's/^HALYARD_API .*[ *]\(halyard_[a-z0-9_]*\)(.*/\1/p' "$prefix/include/halyard.h")
((declared > 0)) || fail "found no HALYARD_API function in halyard.h"
echo "  $(wc -l <<<"$exported") symbols, all halyard_*; all $declared functions of halyard.h among them"

echo "== embed.c through find_package(halyard CONFIG)"
"$cmake" -S "$src" -B "$work/cmake-build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" >"$work/cmake.log" 2>&1 || {
  cat "$work/cmake.log"
  fail "configuring the CMake consumer failed"
}
"$cmake" --build "$work/cmake-build" >>"$work/cmake.log" 2>&1 || {
  cat "$work/cmake.log"
  fail "building the CMake consumer failed"
}

echo "== embed.c through pkg-config"
pc() { PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config "$@" halyard; }
[[ $(pc --modversion) == [0-9]* ]] || fail "pkg-config does not find halyard.pc"
pc_libdir=$(pc --variable=libdir)
[[ $(realpath "$pc_libdir") == "$(realpath "$lib")" ]] || fail "halyard.pc's libdir $pc_libdir is not the moved $lib"
# shellcheck disable=SC2046,SC2086 # pkg-config's output is a list of words
"$cc" $(pc --cflags) -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/embed.c" -o "$work/embed-pc" \
  $(pc --libs) -Wl,-rpath,"$pc_libdir" $ldflags || fail "building with pkg-config failed"

run_clean() { # name command...
  local name=$1
  shift
  echo "== $name (empty environment)"
  "${clean_env[@]}" "$@" >"$work/out" 2>&1 || {
    cat "$work/out"
    fail "$name failed"
  }
  cat "$work/out"
}
run_clean "embed (CMake)" "$work/cmake-build/embed"
grep -q "^halyard [0-9]" "$work/out" || fail "embed (CMake) printed no version"
run_clean "embed (pkg-config)" "$work/embed-pc"
grep -q "^halyard [0-9]" "$work/out" || fail "embed (pkg-config) printed no version"
run_clean "halyard devices" "$prefix/$bindir/halyard" devices
grep -Eq "^ref +ref " "$work/out" || fail "the installed halyard devices does not list ref"
# `halyard serve` runs the installed halyard-server beside it.
run_clean "halyard serve --help" "$prefix/$bindir/halyard" serve --help
grep -q "OpenAI-compatible" "$work/out" || fail "the installed halyard serve --help is not the server's"
echo "PASS"

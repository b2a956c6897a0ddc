#!/usr/bin/env bash
# check_install.sh BUILD_DIR WORK CC CXX PKG_CONFIG [--emulator "CMD ARGS"] [-- CMAKE_OPTIONS...]
#
# Installs the build in BUILD_DIR (cmake --install) to WORK/prefix and uses it as a newcomer would,
# with the commands the README gives:
#   - consumer.c with CC and consumer.cpp with CXX, flags from pkg-config (nativesoftmax.pc) and an
#     RPATH to pkg-config's libdir;
#   - consumer.c through find_package(NativeSoftmax) (CMakeLists.txt here, CMAKE_PREFIX_PATH);
# runs the three from a directory unrelated to the prefix and the builds, then moves the prefix
# and does all of it again: nothing installed may name an absolute path. A program built before
# the move still runs with LD_LIBRARY_PATH=<new prefix>/lib. Each program checks its results
# against a float64 reference and that it runs a vector path (the variants were found beside the
# dispatcher). With --emulator the programs run under it (cross builds).
set -euo pipefail

if [[ $# -lt 5 ]]; then
    echo "usage: $0 BUILD_DIR WORK CC CXX PKG_CONFIG [--emulator CMD] [-- CMAKE_OPTIONS...]" >&2
    exit 2
fi
build_dir=$1 work=$2 cc=$3 cxx=$4 pkg_config=$5
shift 5
emulator=()
if [[ ${1:-} == --emulator ]]; then
    read -r -a emulator <<<"$2"
    shift 2
fi
[[ ${1:-} == -- ]] && shift
cmake_options=("$@")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${CMAKE_COMMAND:-cmake}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
command -v "$pkg_config" >/dev/null || fail "$pkg_config not found (Debian: apt-get install pkgconf)"

rm -rf "$work"
mkdir -p "$work/elsewhere"
work=$(cd "$work" && pwd)
prefix=$work/prefix

echo "== cmake --install $build_dir --prefix $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" >/dev/null

# The layout: header, dispatcher with its SONAME and dev link, every variant beside it.
for file in include/nativesoftmax.h lib/libnativesoftmax.so lib/libnativesoftmax.so.0 \
    lib/pkgconfig/nativesoftmax.pc lib/cmake/NativeSoftmax/NativeSoftmaxConfig.cmake \
    lib/cmake/NativeSoftmax/NativeSoftmaxConfigVersion.cmake lib/cmake/NativeSoftmax/NativeSoftmaxTargets.cmake; do
    [[ -e $prefix/$file ]] || fail "$file is not installed"
done
[[ $(readlink "$prefix/lib/libnativesoftmax.so") == libnativesoftmax.so.0 ]] ||
    fail "lib/libnativesoftmax.so is not a link to libnativesoftmax.so.0"
soname=$(readelf -d "$prefix/lib/libnativesoftmax.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libnativesoftmax.so.0 ]] || fail "SONAME is '$soname', not libnativesoftmax.so.0"
variants=("$prefix"/lib/libnativesoftmax_*.so)
[[ -e ${variants[0]} ]] || fail "no variant libnativesoftmax_*.so is installed beside the dispatcher"
echo "installed: $(cd "$prefix" && find . ! -type d | sort | tr '\n' ' ')"
# No installed file names the prefix, the build tree or the sources.
for path in "$prefix" "$(cd "$build_dir" && pwd)" "$(cd "$here/../../.." && pwd)"; do
    if grep -rlF "$path" "$prefix" >/dev/null; then
        fail "installed files name $path: $(grep -rlF "$path" "$prefix" | tr '\n' ' ')"
    fi
done

# build_all PREFIX TAG: builds the three consumers against PREFIX into WORK/TAG.
build_all() {
    local prefix=$1 out=$work/$2
    mkdir -p "$out"
    # Only this prefix's .pc file is seen (PKG_CONFIG_LIBDIR replaces the default search path).
    local flags libdir
    flags=$(PKG_CONFIG_PATH='' PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig "$pkg_config" --cflags --libs nativesoftmax)
    libdir=$(PKG_CONFIG_PATH='' PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig "$pkg_config" --variable=libdir nativesoftmax)
    echo "== pkg-config: $flags; libdir $libdir"
    # shellcheck disable=SC2086 # the flags are words
    "$cc" -std=c99 -Wall -Wextra -Werror "$here/consumer.c" -o "$out/consumer_c" $flags -lm -Wl,-rpath,"$libdir"
    # shellcheck disable=SC2086
    "$cxx" -std=c++11 -Wall -Wextra -Werror "$here/consumer.cpp" -o "$out/consumer_cxx" $flags -Wl,-rpath,"$libdir"
    echo "== find_package(NativeSoftmax) with CMAKE_PREFIX_PATH=$prefix"
    "$cmake" -S "$here" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
        "${cmake_options[@]}" >"$out/cmake.log" || { cat "$out/cmake.log"; fail "configuring the find_package consumer"; }
    grep -F "NativeSoftmax " "$out/cmake.log"
    grep -qF "from $prefix/lib/cmake/NativeSoftmax" "$out/cmake.log" ||
        fail "find_package found NativeSoftmax elsewhere than $prefix"
    "$cmake" --build "$out/cmake" >/dev/null
    cp "$out/cmake/consumer_cmake" "$out/"
}

# run_all PREFIX TAG [ENV...]: runs the three consumers from WORK/elsewhere; each must load the
# dispatcher of PREFIX.
run_all() {
    local prefix=$1 out=$work/$2
    shift 2
    local program
    for program in consumer_c consumer_cxx consumer_cmake; do
        if [[ ${#emulator[@]} -eq 0 ]]; then
            local loaded
            loaded=$(cd "$work/elsewhere" && env "$@" ldd "$out/$program" | awk '$1 == "libnativesoftmax.so.0" { print $3 }')
            [[ $(realpath "$loaded") == "$prefix/lib/libnativesoftmax.so.0" ]] ||
                fail "$program loads the dispatcher '$loaded', not the one in $prefix/lib"
        fi
        local output
        output=$(cd "$work/elsewhere" && env -u NATIVESOFTMAX_MAX_ISA "$@" "${emulator[@]}" "$out/$program") ||
            fail "$program (built in $out) failed"
        echo "$program: $output"
    done
}

build_all "$prefix" first
run_all "$prefix" first

echo "== the prefix moves"
mv "$prefix" "$work/moved"
prefix=$work/moved
build_all "$prefix" moved
run_all "$prefix" moved
echo "== built before the move, with LD_LIBRARY_PATH=$prefix/lib"
run_all "$prefix" first LD_LIBRARY_PATH="$prefix/lib"
echo "ok"

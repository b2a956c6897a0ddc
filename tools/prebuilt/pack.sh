#!/usr/bin/env bash
# pack.sh — packs what ./build.sh built for x86-64 Linux into one archive, so that the C tests and
# the benchmarks can run on another x86-64 Linux machine that has no .NET SDK (another CPU: AVX-512
# hardware, more cores). tools/prebuilt/check.sh runs them there.
#
#   tools/prebuilt/pack.sh [ARCHIVE]        (default build/prebuilt.tar.xz)
#
# The archive holds:
#   lib/    the dispatcher libnativesoftmax.so.0 (and its link) with the x86-64 variants
#   bin/    nsm_harness (the C test harness) and nsm_bench_compare (the C benchmark), which find
#           lib/ through their rpath $ORIGIN/../lib
#   deps/   the libraries nsm_bench_compare links that a stock glibc system lacks (oneDNN, XNNPACK,
#           pthreadpool, cpuinfo, OpenCL's loader, libgomp), copied from this machine
#   built.txt  the commit, the date and the Debian versions of what deps/ holds
# The tests and benchmark scripts themselves are not in it: check.sh runs them from a checkout of
# the same commit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARCHIVE=$(realpath -m "${1:-$ROOT/build/prebuilt.tar.xz}")
BUILD=$ROOT/build

for file in lib/libnativesoftmax.so.0 lib/libnativesoftmax_sse42.so lib/libnativesoftmax_avx2.so \
    lib/libnativesoftmax_avx512.so bin/nsm_harness bin/nsm_bench_compare; do
    [[ -e $BUILD/$file ]] || { echo "pack.sh: $BUILD/$file is missing (run ./build.sh, then ./build.sh bench --quick)" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$stage/bin" "$stage/deps"
cp -P "$BUILD"/lib/libnativesoftmax.so "$BUILD"/lib/libnativesoftmax.so.0 "$BUILD"/lib/libnativesoftmax_*.so "$stage/lib/"
cp "$BUILD/bin/nsm_harness" "$BUILD/bin/nsm_bench_compare" "$stage/bin/"

# Every library the benchmark resolves outside glibc, the C++ runtime and our own lib/.
ldd "$BUILD/bin/nsm_bench_compare" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    case $name in
    libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libgcc_s.so.* | libstdc++.so.* | libnativesoftmax*) ;;
    *) cp -L "$path" "$stage/deps/$name" ;;
    esac
done

{
    echo "commit: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "packed: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    for lib in "$stage"/deps/*; do
        owner=$(dpkg -S "$(basename "$lib")" 2>/dev/null | head -1 | cut -d: -f1 || true)
        version=$([[ -n $owner ]] && dpkg-query -W -f='${Version}' "$owner" 2>/dev/null || true)
        echo "deps/$(basename "$lib"): ${owner:-?} ${version:-?}"
    done
} >"$stage/built.txt"

mkdir -p "$(dirname "$ARCHIVE")"
tar -C "$stage" -cJf "$ARCHIVE" .
echo "pack.sh: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
cat "$stage/built.txt"

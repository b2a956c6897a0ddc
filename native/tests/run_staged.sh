#!/usr/bin/env bash
# run_staged.sh [--emulator "CMD ARGS"] DEST LIBDIR HARNESS DISPATCHER [FILE...] -- HARNESS_ARGS...
#
# Lays out DEST/bin/<harness> and DEST/LIBDIR/<dispatcher> plus the given variant FILEs (a FILE
# written "broken:NAME" becomes a text file NAME that is not a library), then runs the copied
# harness there. The harness finds the dispatcher through its RPATH $ORIGIN/../LIBDIR, so the
# dispatcher sees only the variants staged beside it: this is how the fallback paths are tested.
# A DISPATCHER written "link:PATH" is staged as a symbolic link to PATH instead of a copy (the
# dispatcher must then find the variants beside PATH, the real file).
set -euo pipefail

emulator=()
if [[ ${1:-} == --emulator ]]; then
    read -r -a emulator <<<"$2"
    shift 2
fi
if [[ $# -lt 5 ]]; then
    echo "usage: $0 [--emulator CMD] DEST LIBDIR HARNESS DISPATCHER [FILE...] -- HARNESS_ARGS..." >&2
    exit 2
fi
dest=$1 libdir=$2 harness=$3 dispatcher=$4
shift 4

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/$libdir"
cp "$harness" "$dest/bin/"
case $dispatcher in
link:*) ln -s "${dispatcher#link:}" "$dest/$libdir/$(basename "${dispatcher#link:}")" ;;
*) cp "$dispatcher" "$dest/$libdir/" ;;
esac
while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
    broken:*) echo "not a shared library" >"$dest/$libdir/${1#broken:}" ;;
    *)
        if [[ ! -f $1 ]]; then
            echo "FAIL: $1 does not exist (build.sh builds the variants)" >&2
            exit 1
        fi
        cp "$1" "$dest/$libdir/"
        ;;
    esac
    shift
done
[[ ${1:-} == -- ]] && shift

echo "staged: $(ls "$dest/$libdir" | tr '\n' ' ')"
exec "${emulator[@]}" "$dest/bin/$(basename "$harness")" "$@"

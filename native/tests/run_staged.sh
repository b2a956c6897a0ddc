#!/usr/bin/env bash
# run_staged.sh [--emulator "CMD ARGS"] [--cwd] DEST LIBDIR PROGRAM DISPATCHER [FILE...] -- ARGS...
#
# Lays out DEST/bin/<program> and DEST/LIBDIR/<dispatcher> plus the given variant FILEs, then runs
# the copied program there with ARGS. The program finds the dispatcher through its RPATH
# $ORIGIN/../LIBDIR, so the dispatcher sees only the variants staged beside it: this is how the
# fallback paths and the loader's refusals are tested. With --cwd the program runs from DEST
# (for relative paths in ARGS); otherwise from where this script was started.
#
# A DISPATCHER written "link:PATH" is staged as a symbolic link to PATH instead of a copy (the
# dispatcher must then find the variants beside PATH, the real file).
#
# A FILE is one of
#   PATH                     copied under its own name
#   broken:NAME              a text file NAME that is not a library
#   as:NAME=PATH             a copy of PATH named NAME
#   truncated:SIZE:NAME=PATH a copy of PATH cut to SIZE bytes; SIZE "in-last-segment" cuts 16 bytes
#                            before the end of the file contents of the last loadable segment
#   elf32:NAME=PATH          a copy of PATH that calls itself a 32-bit ELF file (EI_CLASS = 1)
#   dispatcher:NAME          a copy of the dispatcher named NAME
#   dispatcher-link:NAME     a symbolic link NAME to the staged dispatcher
# NAME is relative to DEST/LIBDIR, or to DEST when it contains a '/' (to stage files elsewhere).
set -euo pipefail

emulator=()
from_dest=0
while [[ ${1:-} == --* && ${1:-} != -- ]]; do
    case $1 in
    --emulator)
        read -r -a emulator <<<"$2"
        shift 2
        ;;
    --cwd)
        from_dest=1
        shift
        ;;
    *) break ;;
    esac
done
if [[ $# -lt 5 ]]; then
    echo "usage: $0 [--emulator CMD] [--cwd] DEST LIBDIR PROGRAM DISPATCHER [FILE...] -- ARGS..." >&2
    exit 2
fi
dest=$1 libdir=$2 program=$3 dispatcher=$4
shift 4

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/$libdir"
dest=$(cd "$dest" && pwd)
cp "$program" "$dest/bin/"
dispatcher_name=$(basename "${dispatcher#link:}")
case $dispatcher in
link:*) ln -s "${dispatcher#link:}" "$dest/$libdir/$dispatcher_name" ;;
*) cp "$dispatcher" "$dest/$libdir/" ;;
esac

# where NAME: the staged path of NAME
where() {
    local target
    if [[ $1 == */* ]]; then target=$dest/$1; else target=$dest/$libdir/$1; fi
    mkdir -p "$(dirname "$target")"
    echo "$target"
}

# source PATH: PATH, which must exist
source_file() {
    if [[ ! -f $1 ]]; then
        echo "FAIL: $1 does not exist (build.sh builds the variants)" >&2
        exit 1
    fi
    echo "$1"
}

# end_of_last_segment FILE: p_offset + p_filesz of the last PT_LOAD (readelf prints them in hex)
end_of_last_segment() {
    local offset size
    read -r offset size < <(readelf -lW "$1" | awk '$1 == "LOAD" { offset = $2; size = $5 } END { print offset, size }')
    echo $((offset + size))
}

while [[ $# -gt 0 && $1 != -- ]]; do
    spec=$1
    shift
    case $spec in
    broken:*) echo "not a shared library" >"$(where "${spec#broken:}")" ;;
    as:*=*)
        spec=${spec#as:}
        cp "$(source_file "${spec#*=}")" "$(where "${spec%%=*}")"
        ;;
    truncated:*:*=*)
        spec=${spec#truncated:}
        size=${spec%%:*} spec=${spec#*:}
        from=$(source_file "${spec#*=}") target=$(where "${spec%%=*}")
        if [[ $size == in-last-segment ]]; then size=$(($(end_of_last_segment "$from") - 16)); fi
        cp "$from" "$target"
        truncate -s "$size" "$target"
        ;;
    elf32:*=*)
        spec=${spec#elf32:}
        target=$(where "${spec%%=*}")
        cp "$(source_file "${spec#*=}")" "$target"
        printf '\001' | dd of="$target" bs=1 seek=4 conv=notrunc status=none
        ;;
    dispatcher:*) cp "$dest/$libdir/$dispatcher_name" "$(where "${spec#dispatcher:}")" ;;
    dispatcher-link:*) ln -s "$dispatcher_name" "$(where "${spec#dispatcher-link:}")" ;;
    *) cp "$(source_file "$spec")" "$dest/$libdir/" ;;
    esac
done
[[ ${1:-} == -- ]] && shift

echo "staged: $(cd "$dest" && find . -mindepth 2 ! -type d -printf '%p(%s) ' | sort)"
[[ $from_dest -eq 1 ]] && cd "$dest"
exec "${emulator[@]}" "$dest/bin/$(basename "$program")" "$@"

#!/usr/bin/env bash
# check_nodelete.sh READELF LIBRARY
#
# Checks that LIBRARY is marked NODELETE in its dynamic section (linked with -z nodelete), so that
# dlclose() never unmaps it: a NativeAOT variant whose runtime has started has threads that may
# still run in it.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 READELF LIBRARY" >&2
    exit 2
fi
readelf=$1 library=$2
if [[ ! -f $library ]]; then
    echo "FAIL: $library does not exist (build.sh builds the variants)" >&2
    exit 1
fi
flags=$("$readelf" -dW "$library" | grep -E '\(FLAGS_1\)' || true)
if ! grep -qw NODELETE <<<"$flags"; then
    echo "FAIL: $library is not marked NODELETE (FLAGS_1: ${flags:-none}); link it with -z nodelete" >&2
    exit 1
fi
echo "ok: $library is marked NODELETE"

#!/usr/bin/env bash
# check_exports.sh MODE NM HEADER LIBRARY
#
# Compares the functions a shared library exports (nm -D --defined-only) with the NSM_API
# functions declared in nativesoftmax.h.
#   exactly   the library exports the header's functions and nothing else (the dispatcher)
#   at-least  the library exports every header function except those the dispatcher answers itself
#             (dispatcher_only_functions.txt, beside this script), the variant marker of the
#             header's version (nsm_variant_v<NSM_VERSION_NUMBER>, which the dispatcher looks up and
#             never calls), no other nsm_* name, and the NativeAOT runtime's
#             DotNetRuntimeDebugHeader (a variant)
set -euo pipefail

if [[ $# -ne 4 ]]; then
    echo "usage: $0 exactly|at-least NM HEADER LIBRARY" >&2
    exit 2
fi
mode=$1 nm=$2 header=$3 library=$4

if [[ ! -f $library ]]; then
    echo "FAIL: $library does not exist (build.sh builds the variants)" >&2
    exit 1
fi

# "NSM_API <return type> nsm_name(" → nsm_name
declared=$(grep -E '^NSM_API ' "$header" | sed -E 's/^.*[ *](nsm_[a-z0-9_]+)[[:space:]]*\(.*$/\1/' | sort -u)
# Name without its symbol version ("nsm_isa@@V1.0" → "nsm_isa"); the version node itself is an
# absolute symbol (type A) and not a function.
exported=$("$nm" -D --defined-only "$library" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u)

declared_count=$(wc -l <<<"$declared")

# NSM_VERSION_NUMBER is MAJOR·10000 + MINOR·100 + PATCH.
version_part() { sed -nE "s/^#define NSM_VERSION_$1[[:space:]]+([0-9]+).*/\1/p" "$header"; }
major=$(version_part MAJOR) minor=$(version_part MINOR) patch=$(version_part PATCH)
if [[ -z $major || -z $minor || -z $patch ]]; then
    echo "FAIL: cannot read NSM_VERSION_MAJOR/MINOR/PATCH from $header" >&2
    exit 1
fi
marker=nsm_variant_v$((major * 10000 + minor * 100 + patch))
if [[ $declared_count -lt 10 ]]; then
    echo "FAIL: found only $declared_count NSM_API functions in $header; the parser is wrong" >&2
    exit 1
fi

# What the library must export: every declared function, except (for a variant) those that only
# the dispatcher exports.
expected=$declared
if [[ $mode == at-least ]]; then
    dispatcher_only_file=$(dirname "${BASH_SOURCE[0]}")/dispatcher_only_functions.txt
    dispatcher_only=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$dispatcher_only_file" | grep -v '^$' | sort -u)
    unknown=$(comm -13 <(echo "$declared") <(echo "$dispatcher_only"))
    if [[ -n $unknown ]]; then
        echo "FAIL: $dispatcher_only_file names functions that $header does not declare:" $unknown >&2
        exit 1
    fi
    expected=$(comm -23 <(echo "$declared") <(echo "$dispatcher_only"))
fi
expected_count=$(wc -l <<<"$expected")

status=0
missing=$(comm -23 <(echo "$expected") <(echo "$exported"))
if [[ -n $missing ]]; then
    echo "FAIL: $library does not export:" $missing >&2
    status=1
fi

case $mode in
exactly)
    extra=$(comm -13 <(echo "$declared") <(echo "$exported"))
    if [[ -n $extra ]]; then
        echo "FAIL: $library exports symbols that are not in the header:" $extra >&2
        status=1
    fi
    ;;
at-least)
    if ! grep -qx "$marker" <<<"$exported"; then
        echo "FAIL: $library does not export the variant marker $marker (VariantMarker.cs)" >&2
        status=1
    fi
    extra_nsm=$(comm -13 <(echo "$expected") <(echo "$exported") | grep -E '^nsm_' | grep -vx "$marker" || true)
    if [[ -n $extra_nsm ]]; then
        echo "FAIL: $library exports nsm_ functions that are not in the header or that only the" \
            "dispatcher may export (dispatcher_only_functions.txt):" $extra_nsm >&2
        status=1
    fi
    if ! grep -qx DotNetRuntimeDebugHeader <<<"$exported"; then
        echo "FAIL: $library does not export DotNetRuntimeDebugHeader (not a NativeAOT library?)" >&2
        status=1
    fi
    others=$(comm -13 <(echo "$declared") <(echo "$exported") | grep -vE '^nsm_' | tr '\n' ' ' || true)
    echo "other exports: ${others:-none}"
    ;;
*)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

if [[ $status -eq 0 ]]; then
    echo "ok: $library exports the $expected_count functions of $(basename "$header") it must ($mode)"
    [[ $mode == at-least ]] && echo "ok: and the variant marker $marker"
fi
exit $status

#!/usr/bin/env bash
# check.sh — on another x86-64 Linux machine, from a checkout of the commit that
# tools/prebuilt/pack.sh packed, runs the C tests and the benchmarks of the prebuilt libraries. No
# .NET SDK is needed there; Python with numpy (and pytest, torch, scipy, matplotlib where present).
#
#   tools/prebuilt/check.sh ARCHIVE OUT_DIR [options of tools/benchmarks/run_benchmarks.py]
#
# Environment: PYTHON (default python3), NSM_SEEDS (harness seeds per group and variant, default 3),
# NSM_TIME_TESTS and NSM_TIME_BENCH (seconds each part may run, default 300 and 600).
# Writes into OUT_DIR: check.log (everything), harness.txt (one line per variant, group and seed),
# pytest.txt, and bench.tar.gz (the benchmark results and the report written from them). The parts
# run in that order and each is cut off at its time limit, so what ran still comes back. Exits
# non-zero when a test failed or a part was cut off.
set -uo pipefail

[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ARCHIVE=$(realpath "$1")
OUT=$(realpath -m "$2")
shift 2
PYTHON=${PYTHON:-python3}
SEEDS=${NSM_SEEDS:-3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1

PREBUILT=$(mktemp -d)
tar -C "$PREBUILT" -xJf "$ARCHIVE" || { echo "check.sh: cannot unpack $ARCHIVE" >&2; exit 1; }
export LD_LIBRARY_PATH=$PREBUILT/deps${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
status=0
# The Python binding (its tests and the benchmark) finds the library as a checkout does, in build/lib.
if [[ ! -e $ROOT/build/lib/libnativesoftmax.so.0 ]]; then
    mkdir -p "$ROOT/build/lib" && cp -P "$PREBUILT"/lib/* "$ROOT/build/lib/"
elif ! cmp -s "$ROOT/build/lib/libnativesoftmax_avx512.so" "$PREBUILT/lib/libnativesoftmax_avx512.so"; then
    echo "warning: Python uses $ROOT/build/lib, which differs from the archive's lib/"
fi

echo "==> machine"
cat "$PREBUILT/built.txt"
packed=$(sed -n 's/^commit: //p' "$PREBUILT/built.txt")
here=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "not a git checkout")
[[ $here == "$packed" ]] || echo "warning: the archive was packed at $packed, this checkout is $here"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L[123]d? cache)'
echo "AVX-512 and AMX flags: $(grep -m1 '^flags' /proc/cpuinfo | grep -ow 'avx512[a-z0-9_]*\|amx[a-z0-9_]*' | tr '\n' ' ')"
"$PYTHON" -c 'import sys, numpy; print("python", sys.version.split()[0], "numpy", numpy.__version__)'
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())' 2>/dev/null || echo "torch: not importable"
(cd "$ROOT/bindings/python" && "$PYTHON" -m nativesoftmax)

echo "==> C harness: every group on every variant this CPU runs, seeds 1..$SEEDS"
groups=$("$PREBUILT/bin/nsm_harness" 2>&1 | sed -n 's/^groups: //p')
if [[ -z $groups ]]; then
    echo "FAILED: the harness does not start here:"
    "$PREBUILT/bin/nsm_harness" 2>&1 | tail -3
    status=1
fi
export NSM_REFERENCE_CASES=$ROOT/tests/reference/cases.txt NSM_HALF_REFERENCE_CASES=$ROOT/tests/reference/half_cases.txt
deadline=$((SECONDS + ${NSM_TIME_TESTS:-300}))
: >"$OUT/harness.txt"
for variant in avx512 avx2 sse4.2; do
    for group in $groups; do
        for seed in $(seq 1 "$SEEDS"); do
            if ((SECONDS >= deadline)); then
                echo "CUT OFF: out of time before $variant $group seed $seed" | tee -a "$OUT/harness.txt"
                status=1
                break 3
            fi
            NATIVESOFTMAX_MAX_ISA=$variant timeout 300 "$PREBUILT/bin/nsm_harness" --variant "$variant" \
                --group "$group" --seed "$seed" >"$PREBUILT/harness.log" 2>&1
            code=$?
            case $code in
            0) result=passed ;;
            77) result=skipped ;;
            *) result="FAILED (exit $code)"; status=1; tail -20 "$PREBUILT/harness.log" ;;
            esac
            echo "$variant $group seed $seed: $result, $(tail -1 "$PREBUILT/harness.log")" >>"$OUT/harness.txt"
            [[ $result == skipped ]] && break 2
        done
    done
done
echo "harness: $(grep -c ': passed' "$OUT/harness.txt") passed, $(grep -c FAILED "$OUT/harness.txt") failed," \
    "$(grep -c ': skipped' "$OUT/harness.txt") variants skipped (this CPU lacks them)"

echo "==> pytest bindings/python/tests"
if "$PYTHON" -c 'import pytest' 2>/dev/null; then
    ignore=()
    if ! "$PYTHON" -c 'import clang.cindex' 2>/dev/null; then
        echo "pytest: no libclang bindings here, so the header's ABI conformance test is left out"
        ignore=(--ignore=bindings/python/tests/test_abi_conformance.py)
    fi
    (cd "$ROOT" && PYTHONDONTWRITEBYTECODE=1 timeout "${NSM_TIME_TESTS:-300}" "$PYTHON" -m pytest \
        bindings/python/tests -q -p no:cacheprovider -rfEs ${ignore[@]+"${ignore[@]}"} >"$OUT/pytest.txt" 2>&1)
    code=$?
    tail -15 "$OUT/pytest.txt"
    ((code == 0)) || status=1
else
    echo "pytest: not importable, skipped"
fi

echo "==> benchmarks: run_benchmarks.py --producers cpp,python $*"
(cd "$ROOT" && timeout "${NSM_TIME_BENCH:-600}" "$PYTHON" tools/benchmarks/run_benchmarks.py --python "$PYTHON" \
    --producers cpp,python --allow-missing --bin-dir "$PREBUILT/bin" --generated-by tools/prebuilt/check.sh \
    --commit "$packed" --packages-from "$PREBUILT/built.txt" \
    --work-dir "$PREBUILT/bench" --docs-dir "$PREBUILT/bench/docs" "$@")
code=$?
((code == 0)) || { echo "benchmarks: exit code $code"; status=1; }
cp "$PREBUILT/built.txt" "$PREBUILT/bench/" 2>/dev/null
tar -C "$PREBUILT" -czf "$OUT/bench.tar.gz" bench 2>/dev/null
rm -rf "$PREBUILT"
echo "check.sh: exit $status"
exit $status

#!/usr/bin/env bash
# build.sh — builds NativeSoftmax and runs its demo or its tests.
#
#   ./build.sh          install what is missing, build everything, run the demo
#                       (bindings/python/examples/train_digits.py)
#   ./build.sh build    install what is missing and build everything
#   ./build.sh test     build, then run all the suites (dotnet test, ctest x64 + arm64, pytest, the
#                       NuGet package and its sample) and print one final line
#                       "N passed, N failed[, N skipped]"
#   ./build.sh bench    build, then measure NativeSoftmax side by side with oneDNN, XNNPACK, memcpy,
#                       PyTorch, scipy and .NET's TensorPrimitives, and write docs/benchmarks.md and
#                       its plots (~10 min; `bench --quick`: a smoke run into build/bench-quick/)
#
# What "everything" is:
#   - the .NET solution (dotnet build NativeSoftmax.sln -c Release)
#   - the NativeAOT variants of the C ABI, one per instruction set, into build/lib/:
#       libnativesoftmax_sse42.so (x86-64-v2), _avx2.so (x86-64-v3), _avx512.so (x86-64-v4),
#     and build/lib-arm64/libnativesoftmax_neon.so (linux-arm64, cross-compiled)
#   - the dispatcher build/lib/libnativesoftmax.so.0 with its link libnativesoftmax.so (and
#     build/lib-arm64/ for aarch64) and the C test harness (native/, CMake); CTest also installs
#     it to a prefix and builds consumers against it (native/tests/consumers)
#   - the NuGet package build/nupkg/NativeSoftmax.<version>.nupkg and .snupkg (dotnet pack)
#   - the Python wheel build/dist/nativesoftmax-<version>-py3-none-<platform>.whl, carrying the
#     dispatcher and the x86-64 variants (bindings/python/pyproject.toml)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$ROOT/build
PYTHON=/usr/bin/python3 # the python3 first on PATH may lack numpy
NATIVE_PROJECT=src/Managed/NativeSoftmax.Native/NativeSoftmax.Native.csproj
SOLUTION=NativeSoftmax.sln
RESULTS=$BUILD/test-results

APT_PACKAGES=(
    clang-14                                          # NativeAOT's compiler and linker driver
    zlib1g-dev                                        # linked by NativeAOT
    cmake make gcc g++                                # the dispatcher and the C harness
    pkgconf                                           # the install test's pkg-config consumers
    gcc-aarch64-linux-gnu g++-aarch64-linux-gnu       # linux-arm64 cross build
    libc6-dev-arm64-cross binutils-aarch64-linux-gnu
    qemu-user-static                                  # runs the arm64 tests
    python3-numpy python3-pytest python3-scipy python3-sklearn  # the Python binding and demo
    python3-clang-14 libclang1-14                     # the ABI conformance tests read the header
    python3-pip python3-setuptools python3-wheel python3-venv  # the Python wheel and its test
)
OPTIONAL_APT_PACKAGES=(python3-torch) # the Python tests skip their torch comparisons without it
OPTIONAL_APT_PACKAGES+=(libopenblas-dev) # examples/chunked_ce.c's cblas_sgemm (else its plain loops)

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

log() {
    printf '\n==> %s\n' "$*"
}

# ---- prerequisites ---------------------------------------------------------------------------

is_installed() {
    dpkg -s "$1" >/dev/null 2>&1
}

install_prerequisites() {
    local missing=() optional_missing=() package
    for package in "${APT_PACKAGES[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    for package in "${OPTIONAL_APT_PACKAGES[@]}"; do
        # Tried once per machine: a marker remembers that it could not be had.
        is_installed "$package" || [[ -e $BUILD/.unavailable-$package ]] || optional_missing+=("$package")
    done
    if [[ ${#missing[@]} -gt 0 || ${#optional_missing[@]} -gt 0 ]]; then
        log "Installing ${missing[*]} ${optional_missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        if [[ ${#missing[@]} -gt 0 ]]; then
            apt-get install -y -q --no-install-recommends "${missing[@]}"
        fi
        for package in "${optional_missing[@]}"; do
            if ! apt-get install -y -q --no-install-recommends "$package"; then
                echo "warning: $package could not be installed; continuing without it" >&2
                mkdir -p "$BUILD"
                touch "$BUILD/.unavailable-$package"
            fi
        done
    fi
    if ! command -v dotnet >/dev/null; then
        echo "error: the .NET SDK (dotnet) is not installed; it does not come from Debian's packages" >&2
        exit 1
    fi
}

# ---- builds ----------------------------------------------------------------------------------

build_solution() {
    log "dotnet build $SOLUTION"
    dotnet build "$ROOT/$SOLUTION" -c Release -nologo -v:q
}

# True when $1 is missing or older than any file of the managed sources, or than the header (the
# variants' version comes from it).
is_stale() {
    local output=$1
    [[ ! -f $output ]] && return 0
    [[ -n $(find "$ROOT/src/Managed/NativeSoftmax" "$ROOT/src/Managed/NativeSoftmax.Native" \
        "$ROOT/Directory.Build.props" "$ROOT/Version.props" "$ROOT/native/include/nativesoftmax.h" \( -name bin -o -name obj \) -prune -o \
        -type f -newer "$output" -print -quit 2>/dev/null) ]]
}

# publish_variant NAME RID [msbuild properties...]: one NativeAOT build of the C ABI, with its own
# native intermediate directory so the variants never share object files.
publish_variant() {
    local name=$1 rid=$2 lib_dir=$3
    shift 3
    local target=$lib_dir/libnativesoftmax_$name.so
    if ! is_stale "$target"; then
        echo "$target is up to date"
        return
    fi
    log "dotnet publish $name ($rid $*)"
    local work=$BUILD/aot/$name
    dotnet publish "$ROOT/$NATIVE_PROJECT" -c Release -r "$rid" -nologo -v:q \
        -p:CppCompilerAndLinker=clang-14 \
        -p:NativeIntermediateOutputPath="$work/obj/" \
        -p:NativeOutputPath="$work/native/" \
        "$@" -o "$work/publish"
    mkdir -p "$lib_dir"
    cp "$work/publish/NativeSoftmax.Native.so" "$target"
}

build_variants() {
    publish_variant sse42 linux-x64 "$BUILD/lib" -p:IlcInstructionSet=x86-64-v2
    publish_variant avx2 linux-x64 "$BUILD/lib" -p:IlcInstructionSet=x86-64-v3
    publish_variant avx512 linux-x64 "$BUILD/lib" -p:IlcInstructionSet=x86-64-v4
    publish_variant neon linux-arm64 "$BUILD/lib-arm64" \
        -p:SysRoot=/ -p:ObjCopyName=aarch64-linux-gnu-objcopy
    # The three x86-64 builds must really differ: only the x86-64-v4 one uses zmm registers.
    local zmm
    zmm=$(objdump -d --no-show-raw-insn "$BUILD/lib/libnativesoftmax_avx512.so" | grep -c zmm || true)
    if [[ $zmm -eq 0 ]]; then
        echo "error: libnativesoftmax_avx512.so contains no AVX-512 (zmm) instructions" >&2
        exit 1
    fi
    if cmp -s "$BUILD/lib/libnativesoftmax_sse42.so" "$BUILD/lib/libnativesoftmax_avx2.so"; then
        echo "error: the sse4.2 and avx2 variants are the same file" >&2
        exit 1
    fi
}

# cmake_build DIR [cmake options...]
cmake_build() {
    local dir=$1
    shift
    if [[ ! -f $dir/CMakeCache.txt ]]; then
        cmake -S "$ROOT/native" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
    fi
    cmake --build "$dir" -j "$(nproc)"
}

build_native() {
    log "native: dispatcher and C harness (x86-64)"
    cmake_build "$BUILD/native"
    log "native: dispatcher and C harness (aarch64, cross)"
    cmake_build "$BUILD/native-arm64" -DCMAKE_TOOLCHAIN_FILE="$ROOT/native/cmake/aarch64-linux-gnu.cmake"
}

# The NuGet package of src/Managed/NativeSoftmax, from the solution's Release build, into
# build/nupkg (emptied first, so that it holds this build's package only).
NUPKG_DIR=$BUILD/nupkg
pack_dotnet() {
    log "dotnet pack src/Managed/NativeSoftmax -> build/nupkg"
    rm -rf "$NUPKG_DIR"
    dotnet pack "$ROOT/src/Managed/NativeSoftmax/NativeSoftmax.csproj" -c Release --no-build -nologo -v:q \
        -o "$NUPKG_DIR"
}

# The wheel, built offline from a staged copy of bindings/python with build/lib's libraries in
# the package folder (the source tree stays free of binaries).
build_wheel() {
    log "Python wheel into build/dist"
    local stage=$BUILD/python-wheel
    rm -rf "$stage" "$BUILD"/dist/nativesoftmax-*.whl
    mkdir -p "$stage" "$BUILD/dist"
    cp -r "$ROOT"/bindings/python/{nativesoftmax,pyproject.toml,setup.py,README.md} "$stage"/
    find "$stage" -name __pycache__ -prune -exec rm -rf {} +
    cp "$BUILD"/lib/libnativesoftmax*.so "$stage/nativesoftmax/"
    "$PYTHON" -m pip wheel -q --no-build-isolation --no-deps --no-index -w "$BUILD/dist" "$stage"
}

build_all() {
    install_prerequisites
    build_variants
    build_solution
    pack_dotnet
    build_native
    build_wheel
}

# ---- demo ------------------------------------------------------------------------------------

run_demo() {
    log "demo: bindings/python/examples/train_digits.py"
    "$PYTHON" "$ROOT/bindings/python/examples/train_digits.py"
}

# ---- tests -----------------------------------------------------------------------------------

# count_results KIND FILE...: prints "passed failed skipped" summed over JUnit XML files (pytest,
# ctest) or TRX files (dotnet test).
count_results() {
    "$PYTHON" - "$@" <<'EOF'
import sys
import xml.etree.ElementTree as ET

kind, files = sys.argv[1], sys.argv[2:]
passed = failed = skipped = 0
for path in files:
    root = ET.parse(path).getroot()
    if kind == "trx":
        ns = {"t": root.tag.split("}")[0].strip("{")}
        for result in root.iterfind(".//t:UnitTestResult", ns):
            outcome = result.get("outcome")
            if outcome == "Passed":
                passed += 1
            elif outcome == "NotExecuted":
                skipped += 1
            else:
                failed += 1
    else:  # junit
        for case in root.iter("testcase"):
            tags = {child.tag for child in case}
            if "failure" in tags or "error" in tags:
                failed += 1
            elif "skipped" in tags:
                skipped += 1
            else:
                passed += 1
print(passed, failed, skipped)
EOF
}

TOTAL_PASSED=0 TOTAL_FAILED=0 TOTAL_SKIPPED=0

# record SUITE EXIT_CODE KIND FILE...: adds a suite's counts; a suite that exited non-zero without
# a failed test, or ran no test at all, counts as one failure.
record() {
    local suite=$1 code=$2 kind=$3
    shift 3
    local counts passed=0 failed=0 skipped=0 files=()
    local file
    for file in "$@"; do [[ -s $file ]] && files+=("$file"); done
    if [[ ${#files[@]} -gt 0 ]] && counts=$(count_results "$kind" "${files[@]}"); then
        read -r passed failed skipped <<<"$counts"
    fi
    if [[ $((passed + failed)) -eq 0 ]]; then
        echo "$suite: ran no test (exit code $code)" >&2
        failed=$((failed + 1))
    elif [[ $code -ne 0 && $failed -eq 0 ]]; then
        echo "$suite: exited with $code although no test failed" >&2
        failed=1
    fi
    echo "$suite: $passed passed, $failed failed, $skipped skipped"
    TOTAL_PASSED=$((TOTAL_PASSED + passed))
    TOTAL_FAILED=$((TOTAL_FAILED + failed))
    TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
}

test_dotnet() {
    log "dotnet test"
    rm -rf "$RESULTS/dotnet"
    local code=0
    dotnet test "$ROOT/$SOLUTION" -c Release --no-build -nologo \
        --logger "trx" --results-directory "$RESULTS/dotnet" || code=$?
    record "dotnet test" "$code" trx "$RESULTS"/dotnet/*.trx
}

test_ctest() {
    local name=$1 dir=$2
    log "ctest ($name)"
    local code=0
    rm -f "$RESULTS/ctest-$name.xml"
    ctest --test-dir "$dir" --output-on-failure --output-junit "$RESULTS/ctest-$name.xml" || code=$?
    record "ctest $name" "$code" junit "$RESULTS/ctest-$name.xml"
}

# The wheel installed into a fresh venv (which sees Debian's numpy, torch and pytest) and tested
# from a folder outside the checkout: bindings/python/tests/installed_wheel.py and the torch
# autograd tests, against the installed package.
test_wheel() {
    log "pytest against the wheel installed into a fresh venv"
    local venv=$BUILD/wheel-venv work code=0
    rm -rf "$venv" "$RESULTS/pytest-wheel.xml"
    work=$(mktemp -d)
    cp "$ROOT"/bindings/python/tests/{installed_wheel.py,test_torch_autograd.py,reference.py} "$work"/
    if "$PYTHON" -m venv --system-site-packages "$venv" &&
        "$venv/bin/python" -m pip install -q --no-index --no-deps "$BUILD"/dist/nativesoftmax-*.whl; then
        (cd "$work" && env -u PYTHONPATH -u NATIVESOFTMAX_LIBRARY "$venv/bin/python" -m pytest -q \
            -p no:cacheprovider --junitxml="$RESULTS/pytest-wheel.xml" \
            installed_wheel.py test_torch_autograd.py) || code=$?
    else
        code=$?
    fi
    rm -rf "$work"
    record "pytest (installed wheel)" "$code" junit "$RESULTS/pytest-wheel.xml"
}

test_pytest() {
    log "pytest bindings/python/tests"
    local code=0
    rm -f "$RESULTS/pytest.xml"
    "$PYTHON" -m pytest "$ROOT/bindings/python/tests" -q --junitxml="$RESULTS/pytest.xml" || code=$?
    record "pytest" "$code" junit "$RESULTS/pytest.xml"
}

# The package's metadata, and samples/ConsumePackage restored from build/nupkg and run (JIT and
# NativeAOT): samples/check_package.sh.
test_package() {
    log "NuGet package: samples/ConsumePackage from build/nupkg"
    local code=0
    rm -f "$RESULTS/package.xml"
    "$ROOT/samples/check_package.sh" "$NUPKG_DIR" "$RESULTS/package.xml" || code=$?
    record "package" "$code" junit "$RESULTS/package.xml"
}

run_tests() {
    mkdir -p "$RESULTS"
    test_dotnet
    test_ctest x64 "$BUILD/native"
    test_ctest arm64 "$BUILD/native-arm64"
    test_pytest
    test_package
    test_wheel
    local summary="$TOTAL_PASSED passed, $TOTAL_FAILED failed"
    [[ $TOTAL_SKIPPED -gt 0 ]] && summary+=", $TOTAL_SKIPPED skipped"
    echo
    echo "$summary"
    [[ $TOTAL_FAILED -eq 0 ]]
}

# ---- benchmarks ------------------------------------------------------------------------------

# The alternatives measured against, and the plots.
BENCH_APT_PACKAGES=(libdnnl-dev libxnnpack-dev libpthreadpool-dev python3-matplotlib)

# run_benchmarks [options of tools/benchmarks/run_benchmarks.py, e.g. --quick]
run_benchmarks() {
    local missing=() package
    for package in "${BENCH_APT_PACKAGES[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "Installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }
    fi
    # Find the libraries again: a configure before they were installed cached "not found".
    cmake -S "$ROOT/native" -B "$BUILD/native" \
        -U 'NSM_DNNL_LIBRARY' -U 'NSM_XNNPACK_LIBRARY' -U 'NSM_PTHREADPOOL_LIBRARY' >/dev/null
    cmake --build "$BUILD/native" -j "$(nproc)" --target nsm_bench_compare
    log "benchmarks: tools/benchmarks/run_benchmarks.py $*"
    "$PYTHON" "$ROOT/tools/benchmarks/run_benchmarks.py" "$@"
}

# ---- main ------------------------------------------------------------------------------------

main() {
    cd "$ROOT"
    case ${1:-} in
    "")
        build_all
        run_demo
        ;;
    build) build_all ;;
    bench)
        build_all
        run_benchmarks "${@:2}"
        ;;
    test)
        # Built by a separate run so that a failed build still ends in the summary line.
        if ! "$ROOT/build.sh" build; then
            echo "build failed" >&2
            echo
            echo "0 passed, 1 failed"
            exit 1
        fi
        run_tests
        ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"

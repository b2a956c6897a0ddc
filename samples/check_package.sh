#!/usr/bin/env bash
# check_package.sh NUPKG_DIR JUNIT_XML — the NuGet package as a consumer meets it.
#
#   nupkg          NUPKG_DIR holds NativeSoftmax.<version>.nupkg with the license expression,
#                  README, tags, repository type, XML docs and the assembly, and the .snupkg with
#                  the PDB (<version> from the header, through Version.props)
#   sample_jit     samples/ConsumePackage restored from NUPKG_DIR alone (its NuGet.config), into its
#                  own packages folder build/sample-packages emptied of NativeSoftmax first, built
#                  and run: it checks its results against a float64 reference and the version
#   sample_aot     the same program published with NativeAOT and no IlcInstructionSet runs the
#                  128-bit path ("sse4.2" on x86-64, "neon" on arm64), as the README says
# Writes one JUnit test case per check to JUNIT_XML; exits 1 if any failed.
set -uo pipefail

nupkg_dir=$1 junit=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sample=$root/samples/ConsumePackage
packages=$root/build/sample-packages
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

version=$(dotnet msbuild "$sample/ConsumePackage.csproj" -getProperty:NsmVersion -nologo 2>/dev/null)
cases=()
failed=0

# check NAME COMMAND...: runs COMMAND, records NAME as passed or failed (with its output).
check() {
    local name=$1
    shift
    echo "== $name"
    if "$@" >"$work/$name.log" 2>&1; then
        cases+=("$name|pass")
        tail -n 3 "$work/$name.log"
    else
        cases+=("$name|fail")
        failed=1
        cat "$work/$name.log"
    fi
}

check_nupkg() {
    "$python" - "$nupkg_dir" "$version" <<'PY'
import sys, zipfile, xml.etree.ElementTree as ET
folder, version = sys.argv[1], sys.argv[2]
problems = []
def nuspec(path):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        root = ET.fromstring(z.read("NativeSoftmax.nuspec"))
    ns = {"n": root.tag.split("}")[0].strip("{")}
    return names, root.find("n:metadata", ns), ns
names, meta, ns = nuspec(f"{folder}/NativeSoftmax.{version}.nupkg")
def text(tag):
    node = meta.find(f"n:{tag}", ns)
    return None if node is None else node
license = text("license")
if license is None or license.get("type") != "expression" or license.text != "MIT":
    problems.append("no MIT license expression")
if text("readme") is None or text("readme").text not in names:
    problems.append("no readme, or the readme file is not in the package")
if text("tags") is None or "softmax" not in text("tags").text.split():
    problems.append("no tags")
if text("repository") is None or text("repository").get("type") != "git":
    problems.append("no repository type")
if text("version").text != version:
    problems.append(f"version {text('version').text}, header {version}")
for needed in ("lib/net10.0/NativeSoftmax.dll", "lib/net10.0/NativeSoftmax.xml"):
    if needed not in names:
        problems.append(f"{needed} missing")
symbols, _, _ = nuspec(f"{folder}/NativeSoftmax.{version}.snupkg")
if "lib/net10.0/NativeSoftmax.pdb" not in symbols:
    problems.append("the symbols package has no PDB")
print("\n".join(problems) or f"NativeSoftmax.{version}.nupkg and .snupkg: license, readme, tags, repository, XML docs, PDB")
sys.exit(1 if problems else 0)
PY
}

run_jit() {
    rm -rf "$packages/nativesoftmax"
    dotnet restore "$sample" --force -nologo -v:q &&
        dotnet run --project "$sample" -c Release --no-restore
}

run_aot() {
    local rid expected
    case $(uname -m) in
    x86_64) rid=linux-x64 expected=sse4.2 ;;
    aarch64) rid=linux-arm64 expected=neon ;;
    *) echo "no NativeAOT check on $(uname -m)"; return 1 ;;
    esac
    dotnet publish "$sample" -c Release -r "$rid" -p:PublishAot=true -p:CppCompilerAndLinker=clang-14 \
        -nologo -v:q -o "$work/aot" &&
        "$work/aot/ConsumePackage" --expect-isa "$expected"
}

if [[ -z $version ]]; then
    cases+=("version|fail")
    failed=1
else
    check nupkg check_nupkg
    check sample_jit run_jit
    check sample_aot run_aot
fi

{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<testsuite name="package">'
    for entry in "${cases[@]}"; do
        name=${entry%%|*}
        if [[ ${entry#*|} == pass ]]; then
            echo "  <testcase name=\"$name\"/>"
        else
            echo "  <testcase name=\"$name\"><failure message=\"see the log above\"/></testcase>"
        fi
    done
    echo '</testsuite>'
} >"$junit"
exit $failed

#!/usr/bin/python3
"""Runs every benchmark producer side by side and writes docs/benchmarks.md with its plots.

    /usr/bin/python3 tools/benchmarks/run_benchmarks.py            (what ./build.sh bench runs)
    /usr/bin/python3 tools/benchmarks/run_benchmarks.py --quick    (tiny shapes, a smoke run;
                                                                    writes build/bench-quick/docs/)

The producers, one process per thread count (each sets every library's thread count once, at its
start):
  cpp     build/bin/nsm_bench_compare: NativeSoftmax, oneDNN, XNNPACK and memcpy
  python  bindings/python/benchmarks/compare.py: NativeSoftmax through the binding, PyTorch, scipy
  dotnet  src/Managed/NativeSoftmax.Benchmarks side-by-side: SoftmaxPrimitives, TensorPrimitives
and, part of cpp, one more process per thread count N > 1: `nsm_bench_compare --scaling --threads N`
on the thread shapes, NativeSoftmax alone at 1 and at N threads in that one process (switched with
nsm_set_num_threads between rounds), which the report's Threads table is made of.
Each process gets NATIVESOFTMAX_NUM_THREADS=T and OMP_NUM_THREADS=T (Debian's oneDNN and torch use
OpenMP), OMP_WAIT_POLICY=PASSIVE (an OpenMP worker that spins after its call would take a CPU from
the contender timed next in the same process) and --threads T (XNNPACK's pthreadpool,
torch.set_num_threads); below the number of CPUs
this process may use, it is pinned with taskset to T of them (so one-thread runs are pinned).

Thread counts: 1, 2, 4, … and all the CPUs this process may use. Shapes: the row-length sweep
(a fixed total of elements per call, rows = total / cols) and the 1×10 per-call shape at one and
at all threads; the acceptance shapes at one and all threads; the thread shapes at every count.

The VMs this runs on swing 10–60 % between runs, so contenders are interleaved at two levels:
inside a process every round runs each contender in turn, and the whole list of processes is run
--passes times (its order rotated each pass). Every round of every pass is kept; the report takes
medians over all of them. Results: <work-dir>/results/*.jsonl and meta.json; then
tools/benchmarks/write_report.py writes the report. Exits non-zero when a producer failed or
NativeSoftmax gave a result outside the tolerance (the report is written first).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # Debian's numpy, torch and scipy are visible to it only (--python: another)
BENCH_PROJECT = ROOT / "src/Managed/NativeSoftmax.Benchmarks/NativeSoftmax.Benchmarks.csproj"
BENCH_DLL = ROOT / "src/Managed/NativeSoftmax.Benchmarks/bin/Release/net10.0/NativeSoftmax.Benchmarks.dll"
PRODUCERS = ("cpp", "python", "dotnet")
# Debian packages whose versions the report lists.
PACKAGES = ("libdnnl2", "libxnnpack0", "libpthreadpool0", "python3-torch", "python3-numpy",
            "python3-scipy", "python3-matplotlib", "g++")


def settings(quick):
    """The shapes and timing settings, full or quick."""
    if quick:
        return {
            "total_elements": 1 << 14,
            "sweep_cols": [8, 128, 2048, 16384],
            "acceptance_shapes": [[256, 10], [16, 1000]],
            "thread_shapes": [[16, 1000], [1, 1 << 17]],  # the long row large enough to split
            "tiny_shape": [1, 10],
            "passes": 1, "rounds": 2, "min_time": 0.002, "tolerance": 1e-3,
        }
    return {
        "total_elements": 1 << 22,
        "sweep_cols": [8, 32, 128, 512, 2048, 8192, 32768, 131072, 524288, 1 << 20],
        "acceptance_shapes": [[65536, 10], [4096, 1000], [256, 32000], [64, 128256], [16, 262144]],
        "thread_shapes": [[4096, 1000], [256, 32000], [1, 1 << 20]],
        "tiny_shape": [1, 10],
        "passes": 3, "rounds": 3, "min_time": 0.03, "tolerance": 1e-3,
    }


def thread_counts(cpus):
    counts, t = [], 1
    while t < cpus:
        counts.append(t)
        t *= 2
    return counts + [cpus]


def shapes_for(config, threads, all_threads):
    """Sweep, 1×10 and acceptance shapes at one and at all threads; thread shapes at every count."""
    shapes = []
    if threads in (1, all_threads):
        shapes += [[config["total_elements"] // c, c] for c in config["sweep_cols"]]
        shapes += [config["tiny_shape"]] + config["acceptance_shapes"]
    shapes += config["thread_shapes"]
    unique = []
    for s in shapes:
        if s not in unique:
            unique.append(s)
    return ",".join("%dx%d" % tuple(s) for s in unique)


def package_versions(packages_from=None):
    """The Debian versions of PACKAGES installed here (None where not, or without dpkg); then, for
    those missing, the versions tools/prebuilt/pack.sh recorded for the libraries it carried
    (lines "deps/<file>: <package> <version>"), marked as carried."""
    out = {}
    for package in PACKAGES:
        try:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        except OSError:  # no dpkg: not a Debian system
            r = None
        out[package] = r.stdout.strip() if r is not None and r.returncode == 0 else None
    if packages_from is not None:
        for line in Path(packages_from).read_text().splitlines():
            _, _, carried = line.partition(": ")
            fields = carried.split()
            if line.startswith("deps/") and len(fields) == 2 and fields[0] in out and out[fields[0]] is None:
                out[fields[0]] = "%s (carried from the build machine)" % fields[1]
    return out


def machine():
    info = {"cpu_model": "", "kernel": platform.release(), "machine": platform.machine()}
    try:
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        info["cpu_model"] = fields.get("model name", "")
        info["cpu_family_model"] = "family %s, model %s, stepping %s" % (
            fields.get("cpu family", "?"), fields.get("model", "?"), fields.get("stepping", "?"))
        flags = fields.get("flags", "").split()
        info["cpu_flags"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl") if f in flags]
    except OSError:
        pass
    if shutil.which("lscpu"):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("L1d cache", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError):
        pass
    try:
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        info["os"] = release["PRETTY_NAME"].strip('"')
    except (OSError, KeyError, ValueError):
        info["os"] = platform.platform()
    return info


def git_commit():
    r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def dotnet_sdk():
    r = subprocess.run(["dotnet", "--version"], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def python_has(python, module):
    return subprocess.run([python, "-c", "import " + module], capture_output=True).returncode == 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes and short rounds: a smoke run")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip (and say so in the report) a producer, library or matplotlib that is not installed")
    parser.add_argument("--producers", default=",".join(PRODUCERS))
    parser.add_argument("--threads", help="comma-separated thread counts (default 1, 2, 4, … all)")
    parser.add_argument("--passes", type=int)
    parser.add_argument("--rounds", type=int, help="rounds per process and pass")
    parser.add_argument("--min-time", type=float, help="seconds per contender per round, at least")
    parser.add_argument("--python", default=PYTHON,
                        help="the interpreter of the Python producer and the report (default %(default)s)")
    parser.add_argument("--generated-by", default="./build.sh bench",
                        help="what the report names as having written it (default %(default)s)")
    parser.add_argument("--commit", help="the commit the report names (default: git describe of this checkout)")
    parser.add_argument("--packages-from", type=Path,
                        help="tools/prebuilt/pack.sh's built.txt: versions of the libraries it carried")
    parser.add_argument("--bin-dir", type=Path, default=ROOT / "build/bin")
    parser.add_argument("--work-dir", type=Path, help="default build/bench (build/bench-quick with --quick)")
    parser.add_argument("--docs-dir", type=Path, help="default docs/ (<work-dir>/docs with --quick)")
    args = parser.parse_args(argv)

    config = settings(args.quick)
    for key in ("passes", "rounds", "min_time"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    work = args.work_dir or ROOT / ("build/bench-quick" if args.quick else "build/bench")
    docs = args.docs_dir or (work / "docs" if args.quick else ROOT / "docs")
    results = work / "results"
    if results.exists():
        shutil.rmtree(results)
    results.mkdir(parents=True)

    cpus = sorted(os.sched_getaffinity(0))
    all_threads = len(cpus)
    counts = sorted({int(t) for t in args.threads.split(",")}) if args.threads else thread_counts(all_threads)
    if counts[0] < 1 or counts[-1] > all_threads:
        parser.error("thread counts must lie in 1..%d (the CPUs this process may use)" % all_threads)
    all_threads = counts[-1]
    config.update(thread_counts=counts, all_threads=all_threads, quick=args.quick)

    wanted = [p for p in args.producers.split(",") if p]
    skipped = {}

    def skip(producer, reason):
        if not args.allow_missing:
            sys.exit("run_benchmarks: %s (install it, or pass --allow-missing)" % reason)
        print("run_benchmarks: skipping %s: %s" % (producer, reason), file=sys.stderr)
        skipped[producer] = reason

    cpp = args.bin_dir / "nsm_bench_compare"
    if "cpp" in wanted and not os.access(cpp, os.X_OK):
        skip("cpp", "%s is not built (it needs libdnnl-dev, libxnnpack-dev and libpthreadpool-dev)" % cpp)
    python_libraries = ["nativesoftmax"]
    if "python" in wanted:
        for module, name in (("torch", "PyTorch"), ("scipy", "scipy")):
            if python_has(args.python, module):
                python_libraries.append(module)
            else:
                skip(name, "%s cannot import %s" % (args.python, module))
    if "dotnet" in wanted:
        if not shutil.which("dotnet"):
            skip("dotnet", "the .NET SDK (dotnet) is not installed")
        else:
            print("==> dotnet build %s" % BENCH_PROJECT.relative_to(ROOT), flush=True)
            subprocess.run(["dotnet", "build", str(BENCH_PROJECT), "-c", "Release", "-nologo", "-v:q"], check=True)
    plots = True
    if not python_has(args.python, "matplotlib"):
        if not args.allow_missing:
            sys.exit("run_benchmarks: matplotlib is missing (apt-get install python3-matplotlib), or pass --allow-missing")
        skipped["plots"] = "matplotlib is not installed"
        plots = False

    jobs = []  # (name, threads, argv); results go to <name>-t<threads>.jsonl
    timing = ["--rounds", str(config["rounds"]), "--min-time", str(config["min_time"]),
              "--tolerance", str(config["tolerance"])]
    for t in counts:
        shapes = shapes_for(config, t, all_threads)
        common = ["--threads", str(t), "--shapes", shapes] + timing
        if "cpp" in wanted and "cpp" not in skipped:
            jobs.append(("cpp", t, [str(cpp)] + common))
            if t > 1:
                thread_shapes = ",".join("%dx%d" % tuple(s) for s in config["thread_shapes"])
                jobs.append(("cpp-scaling", t, [str(cpp), "--scaling", "--threads", str(t),
                                                "--shapes", thread_shapes] + timing))
        if "python" in wanted:
            libraries = [name for name in python_libraries if name != "scipy" or t == 1]
            jobs.append(("python", t, [args.python, str(ROOT / "bindings/python/benchmarks/compare.py")] + common
                         + ["--libraries", ",".join(libraries)]))
        if "dotnet" in wanted and "dotnet" not in skipped and t == 1:
            # One thread only: TensorPrimitives has no threaded softmax to set beside ours.
            jobs.append(("dotnet", t, ["dotnet", str(BENCH_DLL), "side-by-side"] + common[2:]))
    if not jobs:
        sys.exit("run_benchmarks: nothing to run")

    started = time.monotonic()
    failures = []
    seconds = {}
    for p in range(config["passes"]):
        order = jobs[p % len(jobs):] + jobs[:p % len(jobs)]
        for name, t, command in order:
            env = dict(os.environ, NATIVESOFTMAX_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t),
                       OMP_WAIT_POLICY="PASSIVE",
                       DOTNET_TC_CallCountingDelayMs="0", PYTHONDONTWRITEBYTECODE="1")
            pinned = t < len(cpus)
            if pinned:
                command = ["taskset", "-c", ",".join(str(c) for c in cpus[-t:])] + command
            out = results / ("%s-t%d.jsonl" % (name, t))
            print("\n==> pass %d/%d: %s, %d thread(s)%s" % (p + 1, config["passes"], name, t,
                                                        " (pinned to CPU %s)" % ",".join(map(str, cpus[-t:])) if pinned else ""),
                  flush=True)
            begin = time.monotonic()
            code = subprocess.run(command + ["--out", str(out)], env=env, cwd=ROOT).returncode
            seconds["%s-t%d" % (name, t)] = seconds.get("%s-t%d" % (name, t), 0) + time.monotonic() - begin
            if code != 0:
                failures.append("%s with %d thread(s), pass %d: exit code %d" % (name, t, p + 1, code))

    meta = {
        "generated_by": args.generated_by,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": args.commit or git_commit(),
        "machine": machine(),
        "cpus_allowed": cpus,
        "packages": package_versions(args.packages_from),
        "dotnet_sdk": dotnet_sdk() if "dotnet" in wanted else "",
        "config": config,
        "skipped": skipped,
        "failures": failures,
        "seconds_measuring": round(time.monotonic() - started, 1),
        "seconds_per_process": {k: round(v, 1) for k, v in seconds.items()},
    }
    (results / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    report = [args.python, str(HERE / "write_report.py"), "--results", str(results), "--docs", str(docs)]
    if not plots:
        report.append("--no-plots")
    code = subprocess.run(report).returncode
    print("\nmeasured for %.0f s; report: %s" % (meta["seconds_measuring"], docs / "benchmarks.md"))
    for failure in failures:
        print("run_benchmarks: failed: " + failure, file=sys.stderr)
    return 1 if failures or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())

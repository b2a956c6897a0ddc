"""The package as users get it: where it finds its library (NATIVESOFTMAX_LIBRARY as a file or a
folder, the package's own folder, the repository build, the system loader path, in that order)
and ``python -m nativesoftmax``. Each case runs in a fresh interpreter, with the package copied
where the case needs it and the library linked beside it."""

import io
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import nativesoftmax as nsm
from nativesoftmax import _native

PACKAGE = _native.PACKAGE_DIR
BUILD_LIB = Path(nsm.library_path()).resolve().parent  # where the suite's library lives

# computes something, then prints the library path (the file loaded)
PROBE = ("import nativesoftmax as n\n"
         "print(n.softmax([[0.0, 0.0]]).tolist())\n"
         "print(n.library_path())\n")


def _run(args, cwd, pythonpath=None, **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("NATIVESOFTMAX_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    full.update({k: str(v) for k, v in env.items()})
    return subprocess.run([sys.executable] + args, cwd=str(cwd), env=full, capture_output=True,
                          text=True, timeout=120)


def _probe(cwd, pythonpath=None, **env):
    run = _run(["-c", PROBE], cwd, pythonpath, **env)
    assert run.returncode == 0, run.stdout + run.stderr
    values, path = run.stdout.splitlines()
    assert values == "[[0.5, 0.5]]", run.stdout
    return path


def _copy_package(where):
    """A copy of the package (without its caches) at where/nativesoftmax; returns where."""
    shutil.copytree(PACKAGE, where / "nativesoftmax",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return where


def _link_libraries(folder):
    """The dispatcher and its variants, linked into folder (the dispatcher finds the variants
    beside its real path)."""
    folder.mkdir(parents=True, exist_ok=True)
    for lib in BUILD_LIB.glob("libnativesoftmax*.so"):
        (folder / lib.name).symlink_to(lib)
    return folder / _native.LIBRARY_FILE


def test_the_checkout_uses_the_repository_build():
    assert _native.repository_library_path() == BUILD_LIB / _native.LIBRARY_FILE
    assert _probe(PACKAGE.parent.parent, pythonpath=PACKAGE.parent) == str(
        _native.repository_library_path())


def test_environment_variable_names_a_file_or_a_folder(tmp_path):
    lib = _link_libraries(tmp_path / "custom")
    assert _probe(tmp_path, PACKAGE.parent, NATIVESOFTMAX_LIBRARY=lib) == str(lib)
    assert _probe(tmp_path, PACKAGE.parent, NATIVESOFTMAX_LIBRARY=lib.parent) == str(lib)
    # when it is set, nothing else is tried
    run = _run(["-c", PROBE], tmp_path, PACKAGE.parent,
               NATIVESOFTMAX_LIBRARY=tmp_path / "empty")
    assert run.returncode != 0 and "NATIVESOFTMAX_LIBRARY" in run.stderr, run.stderr


def test_lookup_order_package_folder_then_repository_then_system(tmp_path):
    # a checkout's layout: <repo>/bindings/python/nativesoftmax and <repo>/build/lib
    repo = tmp_path / "repo"
    package_parent = _copy_package(repo / "bindings" / "python")
    repo_lib = _link_libraries(repo / "build" / "lib")
    system_lib = _link_libraries(tmp_path / "system")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    own = _link_libraries(package_parent / "nativesoftmax")
    # 2. the package's own folder wins over the repository build and the loader path
    assert _probe(elsewhere, package_parent, LD_LIBRARY_PATH=system_lib.parent) == str(own)
    for lib in own.parent.glob("*.so"):
        lib.unlink()
    # 3. then the repository build
    assert _probe(elsewhere, package_parent, LD_LIBRARY_PATH=system_lib.parent) == str(repo_lib)
    # 4. a package outside a checkout, without libraries: the system loader (LD_LIBRARY_PATH);
    # the path printed is the file the loader opened
    outside = _copy_package(tmp_path / "site")
    assert _probe(elsewhere, outside, LD_LIBRARY_PATH=system_lib.parent) == str(
        BUILD_LIB.joinpath(_native.LIBRARY_FILE).resolve())
    # nothing anywhere: a LibraryLoadError that lists where it looked
    run = _run(["-c", "import nativesoftmax as n\n"
                "try:\n    n.isa()\nexcept n.LibraryLoadError as e:\n    print('LOADERR', e)"],
               elsewhere, outside)
    assert run.returncode == 0, run.stderr
    assert "LOADERR" in run.stdout and "package's folder" in run.stdout, run.stdout
    assert "system loader" in run.stdout and "NATIVESOFTMAX_LIBRARY" in run.stdout, run.stdout


def test_python_m_nativesoftmax(tmp_path):
    run = _run(["-m", "nativesoftmax"], tmp_path, PACKAGE.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines()[1:] if ": " in line)
    assert run.stdout.splitlines()[0] == "nativesoftmax %s" % nsm.__version__
    assert lines["library"] == nsm.library_path()
    assert lines["library version"] == nsm.library_version()
    assert lines["isa"] == nsm.isa()
    assert lines["threads"] == str(nsm.get_num_threads())
    assert lines["self-check"].startswith("ok"), run.stdout


def test_python_m_nativesoftmax_fails_without_a_library(tmp_path):
    run = _run(["-m", "nativesoftmax"], tmp_path, PACKAGE.parent,
               NATIVESOFTMAX_LIBRARY=tmp_path / "missing.so")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "not loaded" in run.stderr and "missing.so" in run.stderr


def test_self_check_reports_a_wrong_result(monkeypatch):
    from nativesoftmax import __main__ as cli

    assert cli.self_check() == []
    right = nsm.log_softmax
    monkeypatch.setattr(nsm, "log_softmax", lambda z: right(z) * (1 + 1e-4))
    problems = cli.self_check()
    assert problems and all(p.startswith("log_softmax ") for p in problems), problems
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main() == 1
    assert re.search(r"self-check: FAILED \(2 problems\)", out.getvalue()), out.getvalue()

"""The wheel as installed: run by ./build.sh test with the venv's python, from a temporary folder
that holds only this file, reference.py and test_torch_autograd.py (not by the checkout's suite,
whose conftest puts the checkout's package first). The package must be the installed one, its
library the one the wheel carries, and it must compute."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import nativesoftmax as nsm
import reference as ref

PACKAGE = Path(nsm.__file__).resolve().parent


def test_the_package_is_the_installed_one():
    assert Path(sys.prefix).resolve() in PACKAGE.parents, (sys.prefix, PACKAGE)
    assert "bindings" not in PACKAGE.parts, PACKAGE
    assert importlib.metadata.version("nativesoftmax") == nsm.__version__


def test_the_wheel_carries_the_dispatcher_and_its_variants():
    files = sorted(p.name for p in PACKAGE.glob("libnativesoftmax*.so"))
    assert "libnativesoftmax.so" in files and len(files) >= 2, files
    assert nsm.library_path() == str(PACKAGE / "libnativesoftmax.so")
    assert nsm.isa() != "none"
    assert nsm.library_path() == str(PACKAGE / "libnativesoftmax.so")  # and it was loaded


def test_the_wheel_is_platform_tagged():
    wheel = importlib.metadata.distribution("nativesoftmax").read_text("WHEEL")
    tags = [line.split(": ", 1)[1] for line in wheel.splitlines() if line.startswith("Tag: ")]
    assert tags and all(t.startswith("py3-none-") and not t.endswith("-any") for t in tags), wheel
    assert "Root-Is-Purelib: false" in wheel


def test_it_computes():
    rng = np.random.default_rng(5)
    z = rng.uniform(-10, 10, size=(6, 11)).astype(np.float32)
    t = rng.integers(0, 11, size=6)
    ref.assert_close(nsm.softmax(z), ref.softmax(z), 1e-6, 1e-37, "installed softmax")
    loss, grad = nsm.cross_entropy(z, t, return_grad=True)
    rloss, rgrad, _ = ref.cross_entropy(z, t)
    ref.assert_close(loss, rloss, 2e-6, 2e-6, "installed cross_entropy loss")
    ref.assert_close(grad, rgrad, 1e-6, 1e-6, "installed cross_entropy grad")


def test_python_m_nativesoftmax():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                            "NATIVESOFTMAX_LIBRARY")}
    run = subprocess.run([sys.executable, "-m", "nativesoftmax"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=os.path.dirname(os.path.abspath(__file__)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "library: %s" % (PACKAGE / "libnativesoftmax.so") in run.stdout, run.stdout
    assert "self-check: ok" in run.stdout, run.stdout

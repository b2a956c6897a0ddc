"""The digits demos train to their accuracy target through the binding: softmax regression with
numpy (train_digits.py) and a torch MLP through nativesoftmax.torch (train_digits_torch.py)."""

import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def _run_demo(name):
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"held-out accuracy: ([0-9.]+)", run.stdout)
    assert match, run.stdout
    assert float(match.group(1)) >= 0.95, run.stdout
    assert re.search(r"ISA path: (avx512|avx2|sse4\.2|neon)", run.stdout), run.stdout


def test_train_digits_reaches_95_percent():
    pytest.importorskip("sklearn")
    _run_demo("train_digits.py")


def test_train_digits_torch_mlp_reaches_95_percent():
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")
    _run_demo("train_digits_torch.py")

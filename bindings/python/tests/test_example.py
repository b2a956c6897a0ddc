"""The softmax-regression demo trains to its accuracy target through the binding."""

import os
import re
import subprocess
import sys

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                       "train_digits.py")


def test_train_digits_reaches_95_percent():
    pytest.importorskip("sklearn")
    run = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"held-out accuracy: ([0-9.]+)", run.stdout)
    assert match, run.stdout
    assert float(match.group(1)) >= 0.95, run.stdout
    assert re.search(r"ISA path: (avx512|avx2|sse4\.2|neon)", run.stdout), run.stdout

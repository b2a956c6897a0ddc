"""Makes the package in bindings/python importable when the suite is run from the repository root
(`/usr/bin/python3 -m pytest bindings/python/tests`) and loads the library once, up front, so that
a missing or mismatched build fails every test with the loader's message instead of being skipped.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # bindings/python
sys.path.insert(0, HERE)  # reference.py

import pytest  # noqa: E402

import nativesoftmax  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _library_loaded():
    nativesoftmax._native.lib()  # raises LibraryLoadError with the path it tried


def pytest_report_header(config):
    try:
        return "nativesoftmax %s, library %s, isa %s" % (
            nativesoftmax.__version__, nativesoftmax.library_path(), nativesoftmax.isa())
    except Exception as exc:  # reported by the fixture above as a failure
        return "nativesoftmax: library not loaded: %s" % exc

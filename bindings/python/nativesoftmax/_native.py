"""Loading libnativesoftmax.so and declaring its C ABI for ctypes.

Everything here mirrors native/include/nativesoftmax.h (the single source of truth for the ABI);
nothing else in the package touches ctypes prototypes. The library is loaded lazily, on the first
call that needs it, so that ``import nativesoftmax`` works (and says where it looked) even before
the native build exists.
"""

import ctypes
import os
import threading
from pathlib import Path

# The header this binding was written against: its NSM_VERSION_MAJOR, _MINOR and _PATCH (checked
# against the header by tests/test_abi_conformance.py). NSM_VERSION_NUMBER is
# MAJOR*10000 + MINOR*100 + PATCH.
_HEADER_VERSION = (0, 2, 0)
HEADER_VERSION_NUMBER = _HEADER_VERSION[0] * 10000 + _HEADER_VERSION[1] * 100 + _HEADER_VERSION[2]
HEADER_VERSION_STRING = "%d.%d.%d" % _HEADER_VERSION

# Status codes, pinned by the header (never renumbered or reused). These constants, the reductions
# below, the structure and the prototypes are checked against the header by
# tests/test_abi_conformance.py (libclang).
NSM_OK = 0
NSM_ERR_NULL_POINTER = 1
NSM_ERR_INVALID_SHAPE = 2
NSM_ERR_INVALID_LEADING_DIM = 3
NSM_ERR_LABEL_OUT_OF_RANGE = 4
NSM_ERR_INVALID_ARGUMENT = 5
NSM_ERR_OVERLAP = 6
NSM_ERR_UNSUPPORTED_CPU = 7
NSM_ERR_INTERNAL = 8

# Each status code's macro name, e.g. STATUS_NAMES[4] == "NSM_ERR_LABEL_OUT_OF_RANGE".
STATUS_NAMES = {value: name for name, value in list(globals().items())
                if name == "NSM_OK" or name.startswith("NSM_ERR_")}

NSM_REDUCTION_NONE = 0
NSM_REDUCTION_SUM = 1
NSM_REDUCTION_MEAN = 2

LIBRARY_ENV = "NATIVESOFTMAX_LIBRARY"


class NativeSoftmaxError(ValueError):
    """A NativeSoftmax call failed.

    Attributes:
        status: the nsm_status code (an int, see the header's status list).
        status_name: its macro name, e.g. ``"NSM_ERR_LABEL_OUT_OF_RANGE"``.
        message: the library's nsm_last_error() text for the failed call (or, for the few checks
            the binding makes itself before calling, such as two arrays of different shapes,
            the binding's message, prefixed "binding: ").
    """

    def __init__(self, status, message):
        self.status = int(status)
        self.status_name = STATUS_NAMES.get(self.status, "unknown status %d" % self.status)
        self.message = message
        super().__init__("%s (%d): %s" % (self.status_name, self.status, message))


class NativeSoftmaxTypeError(NativeSoftmaxError, TypeError):
    """An array has a dtype the library cannot work in (complex, object, strings, ...).

    Both a NativeSoftmaxError (status NSM_ERR_INVALID_ARGUMENT) and a TypeError.
    """


class LibraryLoadError(OSError):
    """libnativesoftmax.so could not be found or loaded, or its version differs from the header
    this binding was written for."""


class CrossEntropyOptions(ctypes.Structure):
    """nsm_cross_entropy_options, field for field as the header declares it."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reduction", ctypes.c_int32),
        ("ignore_index", ctypes.c_int64),
        ("label_smoothing", ctypes.c_double),
        ("grad_scale", ctypes.c_double),
    ]


_i64 = ctypes.c_int64
_f32p = ctypes.POINTER(ctypes.c_float)
_f64p = ctypes.POINTER(ctypes.c_double)
_i64p = ctypes.POINTER(ctypes.c_int64)
_optp = ctypes.POINTER(CrossEntropyOptions)
_status = ctypes.c_int32


def _prototypes():
    """(name, restype, argtypes) for every function of the header."""
    protos = [
        ("nsm_status_string", ctypes.c_char_p, [_status]),
        ("nsm_last_error", ctypes.c_char_p, []),
        ("nsm_version_number", ctypes.c_int32, []),
        ("nsm_version_string", ctypes.c_char_p, []),
        ("nsm_isa", ctypes.c_char_p, []),
    ]
    for suffix, fp in (("f32", _f32p), ("f64", _f64p)):
        for op in ("softmax", "log_softmax"):
            protos.append(("nsm_%s_%s" % (op, suffix), _status, [_i64, _i64, fp, _i64, fp, _i64]))
        for op in ("softmax_backward", "log_softmax_backward"):
            protos.append(("nsm_%s_%s" % (op, suffix), _status,
                           [_i64, _i64, fp, _i64, fp, _i64, fp, _i64]))
        protos.append(("nsm_softmax_jacobian_%s" % suffix, _status, [_i64, fp, fp, _i64]))
        protos.append(("nsm_cross_entropy_%s" % suffix, _status,
                       [_i64, _i64, fp, _i64, _i64p, fp, _optp, fp, fp, _i64]))
        protos.append(("nsm_cross_entropy_soft_%s" % suffix, _status,
                       [_i64, _i64, fp, _i64, fp, _i64, fp, _optp, fp, fp, _i64]))
    return protos


def default_library_path():
    """The repository's build output, found relative to this package:
    <repo>/build/lib/libnativesoftmax.so (the package lives in <repo>/bindings/python)."""
    return Path(__file__).resolve().parents[3] / "build" / "lib" / "libnativesoftmax.so"


def library_path():
    """The path that will be loaded: $NATIVESOFTMAX_LIBRARY if set and non-empty, else
    default_library_path()."""
    env = os.environ.get(LIBRARY_ENV)
    return Path(env) if env else default_library_path()


def check_version(library_number):
    """Raise LibraryLoadError unless the library's nsm_version_number() equals the header's."""
    if library_number != HEADER_VERSION_NUMBER:
        raise LibraryLoadError(
            "libnativesoftmax version mismatch: the library reports NSM_VERSION_NUMBER %d, this "
            "binding was written for the header's %d (%s); rebuild the library or use the "
            "matching binding" % (library_number, HEADER_VERSION_NUMBER, HEADER_VERSION_STRING))


def load(path):
    """Load the library at ``path``, declare every prototype and check its version."""
    path = Path(path)
    if not path.exists():
        raise LibraryLoadError(
            "libnativesoftmax.so not found at %s (set %s to the library's path, or build the "
            "repository so that build/lib/libnativesoftmax.so exists)" % (path, LIBRARY_ENV))
    try:
        # An absolute path, so the dispatcher's per-ISA variants are looked up beside it.
        handle = ctypes.CDLL(str(path.resolve()))
    except OSError as exc:
        raise LibraryLoadError("cannot load %s: %s" % (path, exc)) from exc
    for name, restype, argtypes in _prototypes():
        try:
            fn = getattr(handle, name)
        except AttributeError as exc:
            raise LibraryLoadError("%s does not export %s" % (path, name)) from exc
        fn.restype = restype
        fn.argtypes = argtypes
    check_version(int(handle.nsm_version_number()))
    return handle


_lock = threading.Lock()
_lib = None


def lib():
    """The loaded library (loaded and checked on the first call, then cached)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = load(library_path())
    return _lib


def _text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else ""


def check(status):
    """Raise NativeSoftmaxError for a non-OK status, with the thread's nsm_last_error()."""
    if status != NSM_OK:
        raise NativeSoftmaxError(status, _text(lib().nsm_last_error()))


def status_string(status):
    """nsm_status_string(status) as str."""
    return _text(lib().nsm_status_string(status))


def text_of(fn):
    """Call a const char* (void) function of the library and return str."""
    return _text(fn())

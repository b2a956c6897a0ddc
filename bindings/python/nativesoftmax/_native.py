"""Finding and loading libnativesoftmax.so and declaring its C ABI for ctypes.

Everything here mirrors native/include/nativesoftmax.h (the single source of truth for the ABI);
nothing else in the package declares ctypes prototypes. The library is loaded lazily, on the first
call that needs it, so that ``import nativesoftmax`` works (and says where it looked) even before
the native build exists.

Each function is bound twice, once, at load time: ``lib()`` has the header's typed prototypes
(``float*`` is ``POINTER(c_float)``), for callers that build ctypes pointers; ``functions()`` has
the same symbols with every data pointer declared ``c_void_p``, so that the operations pass plain
integer addresses, the cheapest argument ctypes converts. Where an ``int64_t`` argument and a
pointer are passed alike (``WORDS_ALIKE``), ``word_functions()`` binds the functions whose
arguments are all ``int64_t`` and data pointers a third time, every argument declared
``c_void_p``, for the operations' fast paths: ctypes converts a Python int for ``c_void_p`` at
about half the cost of one for ``c_int64``.
"""

import ctypes
import ctypes.util
import os
import platform
import struct
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
NSM_ERR_OUT_OF_MEMORY = 9

# Each status code's macro name, e.g. STATUS_NAMES[4] == "NSM_ERR_LABEL_OUT_OF_RANGE".
STATUS_NAMES = {value: name for name, value in list(globals().items())
                if name == "NSM_OK" or name.startswith("NSM_ERR_")}

NSM_REDUCTION_NONE = 0
NSM_REDUCTION_SUM = 1
NSM_REDUCTION_MEAN = 2

LIBRARY_ENV = "NATIVESOFTMAX_LIBRARY"
LIBRARY_FILE = "libnativesoftmax.so"


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


class NativeSoftmaxMemoryError(NativeSoftmaxError, MemoryError):
    """The system refused the working memory a call needs (status NSM_ERR_OUT_OF_MEMORY: a
    bfloat16 or float16 row's float32 copy, a 16-bit Jacobian's scratch). Nothing was written.

    Both a NativeSoftmaxError and a MemoryError.
    """


class LibraryLoadError(OSError):
    """libnativesoftmax.so could not be found or loaded, or its version differs from the header
    this binding was written for."""


class CrossEntropyOptions(ctypes.Structure):
    """nsm_cross_entropy_options, field for field as the header declares it (version 2: version 1
    ends with grad_scale; grad_output is the address of [rows] per-row upstream gradients, or
    None / 0)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("reduction", ctypes.c_int32),
        ("ignore_index", ctypes.c_int64),
        ("label_smoothing", ctypes.c_double),
        ("grad_scale", ctypes.c_double),
        ("grad_output", ctypes.c_void_p),
    ]


# The same structure as a struct format (native sizes and alignment, from the ctypes fields
# above): packing gives the bytes of a CrossEntropyOptions, and the operations pass those bytes
# as the read-only options pointer, which costs one pack instead of building a Structure. A NULL
# grad_output is packed as 0.
OPTIONS_FORMAT = struct.Struct("@" + "".join(t._type_ for _, t in CrossEntropyOptions._fields_))
if OPTIONS_FORMAT.size != ctypes.sizeof(CrossEntropyOptions):  # pragma: no cover - a new field
    raise ImportError("OPTIONS_FORMAT does not describe CrossEntropyOptions")
OPTIONS_SIZE = ctypes.sizeof(CrossEntropyOptions)


class CrossEntropyStats(ctypes.Structure):
    """nsm_cross_entropy_stats, field for field as the header declares it: one row's statistics of
    the vocabulary-split cross-entropy, seven float64 values (56 bytes)."""
    _fields_ = [
        ("max", ctypes.c_double),
        ("count_at_max", ctypes.c_double),
        ("sum_below_max", ctypes.c_double),
        ("target_sum", ctypes.c_double),
        ("target_gaps", ctypes.c_double),
        ("label_weight", ctypes.c_double),
        ("has_target", ctypes.c_double),
    ]
class BFloat16(ctypes.Structure):
    """nsm_bfloat16: the bits of one bfloat16."""
    _fields_ = [("bits", ctypes.c_uint16)]


class Float16(ctypes.Structure):
    """nsm_float16: the bits of one IEEE binary16."""
    _fields_ = [("bits", ctypes.c_uint16)]


_i64 = ctypes.c_int64
_f32p = ctypes.POINTER(ctypes.c_float)
_f64p = ctypes.POINTER(ctypes.c_double)
_i64p = ctypes.POINTER(ctypes.c_int64)
_optp = ctypes.POINTER(CrossEntropyOptions)
_statsp = ctypes.POINTER(CrossEntropyStats)
_status = ctypes.c_int32


def _prototypes():
    """(name, restype, argtypes) for every function of the header."""
    protos = [
        ("nsm_status_string", ctypes.c_char_p, [_status]),
        ("nsm_last_error", ctypes.c_char_p, []),
        ("nsm_version_number", ctypes.c_int32, []),
        ("nsm_version_string", ctypes.c_char_p, []),
        ("nsm_isa", ctypes.c_char_p, []),
        ("nsm_get_num_threads", ctypes.c_int32, []),
        ("nsm_set_num_threads", _status, [ctypes.c_int32]),
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
        # The vocabulary-split cross-entropy: partial, finish (merge has no dtype, below).
        shard = [_i64, _i64, _i64, _i64, fp, _i64]
        protos.append(("nsm_cross_entropy_partial_%s" % suffix, _status,
                       shard + [_i64p, fp, _optp, _statsp]))
        protos.append(("nsm_cross_entropy_partial_soft_%s" % suffix, _status,
                       shard + [fp, _i64, fp, _optp, _statsp]))
        protos.append(("nsm_cross_entropy_finish_%s" % suffix, _status,
                       shard + [_i64p, fp, _statsp, _optp, fp, fp, _i64]))
        protos.append(("nsm_cross_entropy_finish_soft_%s" % suffix, _status,
                       shard + [fp, _i64, fp, _statsp, _optp, fp, fp, _i64]))
    protos.append(("nsm_cross_entropy_merge", _status, [_i64, _statsp, _statsp, _statsp]))
    # Half precision: 16-bit matrices (nsm_bfloat16, nsm_float16); weight and loss float32.
    for suffix, h in (("bf16", ctypes.POINTER(BFloat16)), ("f16", ctypes.POINTER(Float16))):
        for op in ("softmax", "log_softmax"):
            protos.append(("nsm_%s_%s" % (op, suffix), _status, [_i64, _i64, h, _i64, h, _i64]))
        for op in ("softmax_backward", "log_softmax_backward"):
            protos.append(("nsm_%s_%s" % (op, suffix), _status,
                           [_i64, _i64, h, _i64, h, _i64, h, _i64]))
        protos.append(("nsm_softmax_jacobian_%s" % suffix, _status, [_i64, h, h, _i64]))
        protos.append(("nsm_cross_entropy_%s" % suffix, _status,
                       [_i64, _i64, h, _i64, _i64p, _f32p, _optp, _f32p, h, _i64]))
        protos.append(("nsm_cross_entropy_soft_%s" % suffix, _status,
                       [_i64, _i64, h, _i64, h, _i64, _f32p, _optp, _f32p, h, _i64]))
    return protos


def address_argtypes(argtypes):
    """``argtypes`` with every data pointer type (``POINTER(T)``) replaced by ``c_void_p``; other
    types, ``c_char_p`` included, unchanged."""
    return [ctypes.c_void_p if isinstance(t, type) and issubclass(t, ctypes._Pointer) else t
            for t in argtypes]


# The machines on which an int64_t argument and a data pointer are passed the same way (one 64-bit
# integer register, or one 8-byte stack slot, in the same sequence): the LP64 x86-64 and arm64
# calling conventions, which both class them as 8-byte integers. Only there are the fast paths'
# sizes declared c_void_p (word_functions); elsewhere word_functions() is empty.
_LP64_MACHINES = ("x86_64", "amd64", "aarch64", "arm64")
WORDS_ALIKE = (platform.machine().lower() in _LP64_MACHINES
               and ctypes.sizeof(ctypes.c_void_p) == ctypes.sizeof(ctypes.c_int64) == 8)


def word_argtypes(argtypes):
    """``[c_void_p] * len(argtypes)`` when every one of ``argtypes`` is ``c_int64`` or a data
    pointer (``POINTER(T)``), else None (``c_char_p``, ``c_int32`` and no-argument functions are
    not bound with words)."""
    if argtypes and all(t is _i64 or (isinstance(t, type) and issubclass(t, ctypes._Pointer))
                        for t in argtypes):
        return [ctypes.c_void_p] * len(argtypes)
    return None


# ------------------------------------------------------------------------------------------------
# Finding the library
# ------------------------------------------------------------------------------------------------

PACKAGE_DIR = Path(__file__).resolve().parent


def repository_library_path():
    """<repo>/build/lib/libnativesoftmax.so when this package is the one in <repo>/bindings/python
    (a repository checkout), else None."""
    python_dir = PACKAGE_DIR.parent
    if python_dir.name == "python" and python_dir.parent.name == "bindings":
        return python_dir.parent.parent / "build" / "lib" / LIBRARY_FILE
    return None


def lookup_order():
    """The places looked at, in order, as (description, path); the path is None for the system
    loader, which is asked by name."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        path = Path(env)
        return [("$%s" % LIBRARY_ENV, path / LIBRARY_FILE if path.is_dir() else path)]
    places = [("the package's folder", PACKAGE_DIR / LIBRARY_FILE)]
    repo = repository_library_path()
    if repo is not None:
        places.append(("the repository build", repo))
    places.append(("the system loader path", None))
    return places


def find_library():
    """What ``load`` will open: the first file of ``lookup_order`` that exists, the path named by
    $NATIVESOFTMAX_LIBRARY whether or not it exists, or None for the system loader."""
    places = lookup_order()
    if places[0][0].startswith("$"):
        return places[0][1]
    for _, path in places:
        if path is not None and path.is_file():
            return path
    return None


def check_version(library_number):
    """Raise LibraryLoadError unless the library's nsm_version_number() equals the header's."""
    if library_number != HEADER_VERSION_NUMBER:
        raise LibraryLoadError(
            "libnativesoftmax version mismatch: the library reports NSM_VERSION_NUMBER %d, this "
            "binding was written for the header's %d (%s); rebuild the library or use the "
            "matching binding" % (library_number, HEADER_VERSION_NUMBER, HEADER_VERSION_STRING))


def _open_from_system():
    """ctypes.CDLL of the library found by the system loader (LD_LIBRARY_PATH, the loader's
    cache, the default directories)."""
    names = [LIBRARY_FILE]
    found = ctypes.util.find_library("nativesoftmax")
    if found and found not in names:
        names.append(found)
    reasons = []
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            reasons.append(str(exc))
    places = ", ".join("%s (%s)" % (what, path) for what, path in lookup_order() if path)
    raise LibraryLoadError(
        "libnativesoftmax.so not found: looked in %s and the system loader path (%s); set %s to "
        "the library or its folder, install the nativesoftmax wheel, or build the repository so "
        "that build/lib/libnativesoftmax.so exists" % (places, "; ".join(reasons), LIBRARY_ENV))


def load(path):
    """Load the library at ``path`` (None: ask the system loader), declare every prototype and
    check its version. Returns (typed handle, address-typed functions by name, word-typed
    functions by name (empty unless WORDS_ALIKE))."""
    if path is None:
        handle = _open_from_system()
    else:
        path = Path(path)
        if not path.exists():
            raise LibraryLoadError(
                "libnativesoftmax.so not found at %s (set %s to the library or its folder, or "
                "build the repository so that build/lib/libnativesoftmax.so exists)"
                % (path, LIBRARY_ENV))
        try:
            # An absolute path, so the dispatcher's per-ISA variants are looked up beside it.
            handle = ctypes.CDLL(str(path.resolve()))
        except OSError as exc:
            raise LibraryLoadError("cannot load %s: %s" % (path, exc)) from exc
    functions, words = {}, {}
    for name, restype, argtypes in _prototypes():
        try:
            fn = getattr(handle, name)
        except AttributeError as exc:
            raise LibraryLoadError("%s does not export %s" % (path or handle._name, name)) from exc
        fn.restype = restype
        fn.argtypes = argtypes
        # A second function object for the same symbol (indexing creates one; attribute access
        # returns the cached first), with addresses for pointers.
        fast = handle[name]
        fast.restype = restype
        fast.argtypes = address_argtypes(argtypes)
        functions[name] = fast
        word_types = word_argtypes(argtypes) if WORDS_ALIKE else None
        if word_types is not None:
            word = handle[name]  # a third function object for the symbol
            word.restype = restype
            word.argtypes = word_types
            words[name] = word
    check_version(int(handle.nsm_version_number()))
    return handle, functions, words


_lock = threading.Lock()
_lib = None
_functions = None
_words = None
_loaded_from = None


def _load_once():
    global _lib, _functions, _words, _loaded_from
    with _lock:
        if _lib is None:
            path = find_library()
            handle, functions, words = load(path)
            _loaded_from = str(path) if path is not None else _file_of(handle)
            _functions = functions
            _words = words
            _lib = handle


def lib():
    """The loaded library with the header's typed prototypes (loaded and checked on the first
    call, then cached)."""
    if _lib is None:
        _load_once()
    return _lib


def functions():
    """The library's functions by name, with data pointers declared ``c_void_p`` (loads the
    library on the first call)."""
    if _functions is None:
        _load_once()
    return _functions


def word_functions():
    """The functions whose arguments are all ``int64_t`` and data pointers, by name, with every
    argument declared ``c_void_p``: the sizes are passed as Python ints, the pointers as
    addresses (loads the library on the first call). Empty unless WORDS_ALIKE."""
    if _words is None:
        _load_once()
    return _words


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _file_of(handle):
    """The file the loader opened for ``handle`` (dladdr of one of its functions), or its name."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        return handle._name
    dladdr.restype = ctypes.c_int
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    address = ctypes.cast(handle.nsm_version_number, ctypes.c_void_p)
    if dladdr(address, ctypes.byref(info)) and info.dli_fname:
        return os.path.realpath(os.fsdecode(info.dli_fname))
    return handle._name  # pragma: no cover - dladdr knows every loaded library


def library_path():
    """The library file in use: once loaded, the file that was loaded; before, the file the
    lookup order finds (without loading it), or the bare name the system loader will be asked
    for."""
    if _loaded_from is not None:
        return _loaded_from
    path = find_library()
    return str(path) if path is not None else LIBRARY_FILE


def _text(raw):
    return raw.decode("utf-8", "replace") if raw is not None else ""


def check(status):
    """Raise NativeSoftmaxError for a non-OK status, with the thread's nsm_last_error():
    NativeSoftmaxMemoryError for NSM_ERR_OUT_OF_MEMORY."""
    if status != NSM_OK:
        error = NativeSoftmaxMemoryError if status == NSM_ERR_OUT_OF_MEMORY else NativeSoftmaxError
        raise error(status, _text(lib().nsm_last_error()))


def status_string(status):
    """nsm_status_string(status) as str."""
    return _text(lib().nsm_status_string(status))


def text_of(fn):
    """Call a const char* (void) function of the library and return str."""
    return _text(fn())

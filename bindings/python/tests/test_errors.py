"""Error handling: every failure raises NativeSoftmaxError (a ValueError) carrying the status code,
its name and the library's nsm_last_error() message; nothing is written on failure; the loader
refuses a missing library and a version mismatch."""

import ctypes
import os
import subprocess
import sys

import numpy as np
import pytest

import nativesoftmax as nsm
from nativesoftmax import _native

LIB_MESSAGE_MARK = "binding: "


def _raises(status_name, fn, *args, **kwargs):
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        fn(*args, **kwargs)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.status_name == status_name, str(exc)
    assert exc.status == getattr(_native, status_name)
    assert exc.message and exc.message in str(exc), str(exc)
    return exc


def _from_library(exc):
    """The message came from nsm_last_error() on this thread, not from the binding."""
    assert not exc.message.startswith(LIB_MESSAGE_MARK), exc.message
    assert exc.message == _native.text_of(_native.lib().nsm_last_error)


# ------------------------------------------------------------------------------------------------
# Through the Python API
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_zero_classes_is_the_librarys_invalid_shape(dtype):
    for fn in (nsm.softmax, nsm.log_softmax):
        _from_library(_raises("NSM_ERR_INVALID_SHAPE", fn, np.zeros((3, 0), dtype)))
    _from_library(_raises("NSM_ERR_INVALID_SHAPE", nsm.softmax_backward,
                          np.zeros((2, 0), dtype), np.zeros((2, 0), dtype)))
    _from_library(_raises("NSM_ERR_INVALID_SHAPE", nsm.softmax_jacobian, np.zeros(0, dtype)))
    _from_library(_raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, np.zeros((2, 0), dtype),
                          np.zeros(2, np.int64)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("label", [3, 4, 1000, -1, -101, 2 ** 62])
def test_label_out_of_range(dtype, label):
    z = np.zeros((3, 3), dtype)
    exc = _raises("NSM_ERR_LABEL_OUT_OF_RANGE", nsm.cross_entropy, z, np.array([0, label, 1]),
                  return_grad=True)
    _from_library(exc)
    # an in-range ignore_index does not make other labels valid, and a label equal to it is fine
    _raises("NSM_ERR_LABEL_OUT_OF_RANGE", nsm.cross_entropy, z, np.array([4, 2, 0]),
            ignore_index=2)
    assert np.isfinite(nsm.cross_entropy(z, np.array([label, 2, 0]), ignore_index=label))


@pytest.mark.parametrize("eps", [-0.1, 1.0 + 1e-9, 2.0, float("nan"), float("inf")])
def test_label_smoothing_outside_0_1_or_nan(eps):
    z = np.zeros((2, 3))
    for target in (np.array([0, 1]), np.full((2, 3), 1 / 3)):
        _from_library(_raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, target,
                              label_smoothing=eps))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weight_or_grad_scale(bad):
    z = np.zeros((2, 3))
    w = np.array([1.0, bad, 1.0])
    for target in (np.array([0, 2]), np.full((2, 3), 1 / 3)):
        _from_library(_raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, target, weight=w))
        _from_library(_raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, target,
                              return_grad=True, grad_scale=bad))


def test_weight_that_overflows_the_working_dtype():
    """1e300 is a finite float64 weight, but float32 logits are computed in float32, where it
    would be inf: the binding refuses it, naming the value passed, before any cast warns."""
    import warnings

    z = np.zeros((2, 3), np.float32)
    for big in (1e300, -1e300, 3.5e38):
        w = np.array([1.0, big, 1.0])
        for target in (np.array([0, 2]), np.full((2, 3), 1 / 3, np.float32)):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no numpy overflow warning on the way
                exc = _raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, target,
                              weight=w, return_grad=True)
            assert exc.message.startswith(LIB_MESSAGE_MARK), exc.message
            assert "weight[1]" in exc.message and repr(big) in exc.message, exc.message
            assert "float32" in exc.message and "does not fit" in exc.message, exc.message
    # the largest float32, given as float64, still fits (and so do huge integers)
    fmax = float(np.finfo(np.float32).max)
    assert np.isfinite(nsm.cross_entropy(z, np.array([0, 2]), weight=np.array([1.0, fmax, 1.0])))
    assert np.isfinite(nsm.cross_entropy(z, np.array([0, 2]), weight=np.array([1, 2 ** 62, 1])))
    # a long double beyond float64's range, with float64 logits (where long double is wider)
    if np.finfo(np.longdouble).max > np.finfo(np.float64).max:
        w = np.array([1, 1, 1], np.longdouble)
        w[2] = np.longdouble(np.finfo(np.float64).max) * 16
        exc = _raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, np.zeros((2, 3)),
                      np.array([0, 1]), weight=w)
        assert "weight[2]" in exc.message and "float64" in exc.message, exc.message


def test_shape_mismatches_found_by_the_binding():
    z = np.zeros((3, 4))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, z, np.array([0, 1]))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, z, np.zeros((3, 1), np.int64))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, z, np.zeros((3, 5)))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, z, np.array([0, 1, 2]),
            weight=np.ones(3))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, np.zeros((2, 3, 4)), np.zeros((2, 3)))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, np.zeros(4), np.array([1]))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.softmax_backward, np.zeros((2, 3)), np.zeros((3, 2)))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.log_softmax_backward, np.zeros(3), np.zeros(4))
    exc = _raises("NSM_ERR_INVALID_SHAPE", nsm.softmax_jacobian, np.zeros((2, 2)))
    assert exc.message.startswith(LIB_MESSAGE_MARK)


def test_bad_options_found_by_the_binding():
    z = np.zeros((2, 3))
    t = np.array([0, 1])
    for reduction in ("avg", "MEAN", None, 2):
        _raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, t, reduction=reduction)
    _raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, t, ignore_index=2 ** 63)
    with pytest.raises(TypeError):
        nsm.cross_entropy(z, t, ignore_index=1.5)


def test_unsupported_dtypes_raise_type_errors():
    for bad in (np.zeros((2, 3), np.complex128), np.array([["a", "b"]]),
                np.array([[object(), object()]])):
        with pytest.raises(nsm.NativeSoftmaxTypeError) as info:
            nsm.softmax(bad)
        assert isinstance(info.value, TypeError) and isinstance(info.value, nsm.NativeSoftmaxError)
    with pytest.raises(TypeError):
        nsm.cross_entropy(np.zeros((2, 3)), np.array([True, False]))
    with pytest.raises(TypeError):
        nsm.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(3, np.complex64))
    with pytest.raises(TypeError):
        nsm.softmax_backward(np.zeros(3), np.zeros(3, np.complex64))


def test_axis_errors():
    with pytest.raises(IndexError):  # numpy's AxisError is an IndexError and a ValueError
        nsm.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError):
        nsm.log_softmax(np.float64(1.0))


# ------------------------------------------------------------------------------------------------
# The C ABI directly: codes the Python API cannot produce, and "nothing written on failure"
# ------------------------------------------------------------------------------------------------

F64P = ctypes.POINTER(ctypes.c_double)


def _p(a):
    return a.ctypes.data_as(F64P if a.dtype == np.float64 else ctypes.POINTER(ctypes.c_int64))


def _opts(**kw):
    o = _native.CrossEntropyOptions(ctypes.sizeof(_native.CrossEntropyOptions),
                                    _native.NSM_REDUCTION_MEAN, -100, 0.0, 1.0)
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def _ce(rows, cols, z, t, w, opts, loss, grad, ld_z=None, ld_g=None):
    lib = _native.lib()
    return lib.nsm_cross_entropy_f64(rows, cols, _p(z), ld_z or cols, _p(t),
                                     None if w is None else _p(w), ctypes.byref(opts)
                                     if opts is not None else None,
                                     None if loss is None else _p(loss),
                                     None if grad is None else _p(grad), ld_g or cols)


def test_options_struct_matches_the_header():
    # version 1 (32 bytes, its offsets unchanged), then version 2's grad_output
    assert ctypes.sizeof(_native.CrossEntropyOptions) == 40
    offsets = [getattr(_native.CrossEntropyOptions, f).offset
               for f in ("struct_size", "reduction", "ignore_index", "label_smoothing",
                         "grad_scale", "grad_output")]
    assert offsets == [0, 4, 8, 16, 24, 32]


def test_failed_calls_write_nothing():
    z = np.random.default_rng(20).standard_normal((4, 3))
    t = np.array([0, 1, 3, 2])  # row 2 out of range: checked before anything is written
    loss = np.full(4, 123.0)
    grad = np.full((4, 3), 456.0)
    for reduction in (0, 1, 2):
        status = _ce(4, 3, z, t, None, _opts(reduction=reduction), loss, grad)
        assert status == _native.NSM_ERR_LABEL_OUT_OF_RANGE
        assert np.all(loss == 123.0) and np.all(grad == 456.0), "written on failure"
    t_ok = np.array([0, 1, 2, 2])
    for bad in (dict(label_smoothing=1.5), dict(label_smoothing=float("nan")),
                dict(grad_scale=float("inf")), dict(reduction=3), dict(reduction=-1),
                dict(struct_size=4)):
        status = _ce(4, 3, z, t_ok, None, _opts(**bad), loss, grad)
        assert status == _native.NSM_ERR_INVALID_ARGUMENT, bad
        assert np.all(loss == 123.0) and np.all(grad == 456.0), "written on failure %s" % bad
    status = _ce(4, 3, z, t_ok, np.array([1.0, np.nan, 1.0]), _opts(), loss, grad)
    assert status == _native.NSM_ERR_INVALID_ARGUMENT
    assert np.all(loss == 123.0) and np.all(grad == 456.0)


def test_abi_status_codes():
    lib = _native.lib()
    z = np.zeros((2, 3))
    out = np.zeros((2, 3))
    assert lib.nsm_softmax_f64(2, 3, _p(z), 2, _p(out), 3) == _native.NSM_ERR_INVALID_LEADING_DIM
    assert lib.nsm_softmax_f64(2, 3, _p(z), 3, _p(out), 2) == _native.NSM_ERR_INVALID_LEADING_DIM
    assert lib.nsm_softmax_f64(2, 3, None, 3, _p(out), 3) == _native.NSM_ERR_NULL_POINTER
    assert lib.nsm_softmax_f64(2, 3, _p(z), 3, None, 3) == _native.NSM_ERR_NULL_POINTER
    assert lib.nsm_softmax_f64(0, 3, None, 3, _p(out), 3) == _native.NSM_OK  # no rows: NULL is fine
    assert lib.nsm_softmax_f64(-1, 3, _p(z), 3, _p(out), 3) == _native.NSM_ERR_INVALID_SHAPE
    assert lib.nsm_softmax_f64(2, 0, _p(z), 3, _p(out), 3) == _native.NSM_ERR_INVALID_SHAPE
    assert _native.text_of(lib.nsm_last_error)  # says which argument
    # exact in place is allowed, partial overlap is not
    buf = np.random.default_rng(21).standard_normal(8)
    want = nsm.softmax(buf[:6].reshape(2, 3))
    assert lib.nsm_softmax_f64(2, 3, _p(buf), 3, _p(buf), 3) == _native.NSM_OK
    np.testing.assert_allclose(buf[:6].reshape(2, 3), want, rtol=1e-12)
    shifted = buf[1:].ctypes.data_as(F64P)
    assert lib.nsm_softmax_f64(2, 3, _p(buf), 3, shifted, 3) == _native.NSM_ERR_OVERLAP
    # cross-entropy: both outputs NULL, target NULL
    t = np.array([0, 1])
    loss = np.zeros(1)
    assert _ce(2, 3, z, t, None, _opts(), None, None) == _native.NSM_ERR_NULL_POINTER
    assert lib.nsm_cross_entropy_f64(2, 3, _p(z), 3, None, None, None, _p(loss), None,
                                     3) == _native.NSM_ERR_NULL_POINTER
    # options == NULL means the defaults (mean)
    assert _ce(2, 3, z, t, None, None, loss, None) == _native.NSM_OK
    assert loss[0] == pytest.approx(np.log(3), rel=1e-12)
    # the gradient alone (loss NULL) is allowed
    grad = np.zeros((2, 3))
    assert _ce(2, 3, z, t, None, _opts(), None, grad) == _native.NSM_OK
    np.testing.assert_allclose(grad, (np.full((2, 3), 1 / 3) - np.eye(3)[[0, 1]]) / 2, rtol=1e-12)


def test_status_strings():
    for code in range(_native.NSM_ERR_OUT_OF_MEMORY + 1):
        assert _native.status_string(code) != "unknown status", code
    assert _native.status_string(9999) == "unknown status"
    exc = nsm.NativeSoftmaxError(4, "msg")
    assert (exc.status, exc.status_name, exc.message) == (4, "NSM_ERR_LABEL_OUT_OF_RANGE", "msg")


# ------------------------------------------------------------------------------------------------
# Loader
# ------------------------------------------------------------------------------------------------

def test_library_version():
    # test_abi_conformance.py checks these, and the ISA names, against the header
    assert nsm.library_version() == nsm.__version__
    assert _native.lib().nsm_version_number() == nsm.HEADER_VERSION_NUMBER


def test_version_mismatch_is_refused():
    ours = nsm.HEADER_VERSION_NUMBER
    with pytest.raises(nsm.LibraryLoadError, match="version mismatch.*%d.*%d" % (ours + 1, ours)):
        _native.check_version(ours + 1)
    with pytest.raises(nsm.LibraryLoadError, match=str(ours + 10000)):
        _native.check_version(ours + 10000)
    _native.check_version(ours)


def _run(code, **env):
    full = dict(os.environ)
    full.update(env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=full,
                          capture_output=True, text=True, timeout=60)


def test_refused_memory_raises_a_memory_error_and_writes_nothing():
    # In a child process under an address-space limit: a float16 row of 2^24 classes needs a
    # float32 copy of 64 MiB, with 32 MiB of room. NativeSoftmaxMemoryError, and out untouched.
    r = _run("import resource, numpy as np, nativesoftmax as n\n"
             "n.softmax(np.zeros((2, 8), np.float16))  # the library loaded, before the limit\n"
             "z = np.zeros((1, 1 << 24), np.float16)\n"
             "out = np.full_like(z, 7.0)\n"
             "with open('/proc/self/status') as f:\n"
             "    mapped = next(int(l.split()[1]) for l in f if l.startswith('VmSize:')) * 1024\n"
             "resource.setrlimit(resource.RLIMIT_AS, (mapped + (32 << 20), resource.RLIM_INFINITY))\n"
             "try:\n"
             "    n.softmax(z, out=out)\n"
             "except MemoryError as e:\n"
             "    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
             "    assert isinstance(e, n.NativeSoftmaxError) and isinstance(e, n.NativeSoftmaxMemoryError)\n"
             "    print(e.status_name, bool((out == 7.0).all()), e.message)\n",
             MALLOC_MMAP_THRESHOLD_="1048576", MALLOC_ARENA_MAX="1")
    assert r.returncode == 0, r.stderr
    status_name, untouched, message = r.stdout.strip().split(" ", 2)
    assert (status_name, untouched) == ("NSM_ERR_OUT_OF_MEMORY", "True"), r.stdout
    assert "out of memory" in message


def test_missing_library_is_reported_with_its_path(tmp_path):
    missing = str(tmp_path / "nope" / "libnativesoftmax.so")
    r = _run("import nativesoftmax as n\n"
             "try:\n    n.softmax([1.0])\nexcept n.LibraryLoadError as e:\n    print('LOADERR', e)",
             NATIVESOFTMAX_LIBRARY=missing)
    assert r.returncode == 0, r.stderr
    assert "LOADERR" in r.stdout and missing in r.stdout and "NATIVESOFTMAX_LIBRARY" in r.stdout


def test_library_env_var_is_used():
    path = nsm.library_path()
    r = _run("import nativesoftmax as n; print(n.library_path()); print(n.isa())",
             NATIVESOFTMAX_LIBRARY=path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == path


def test_not_a_library_is_refused(tmp_path):
    fake = tmp_path / "libnativesoftmax.so"
    fake.write_text("not an ELF file")
    r = _run("import nativesoftmax as n\n"
             "try:\n    n.isa()\nexcept n.LibraryLoadError as e:\n    print('LOADERR', e)",
             NATIVESOFTMAX_LIBRARY=str(fake))
    assert "LOADERR" in r.stdout and str(fake) in r.stdout, r.stdout + r.stderr

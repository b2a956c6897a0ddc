"""Layout promises of the C ABI, checked through ctypes: with leading dimensions larger than cols
only [a, a + (rows − 1)·ld + cols) is written (the padding between rows stays as it was), exact
in-place calls work where the header allows them, and results below the smallest normal number
are flushed to 0."""

import ctypes

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref
from nativesoftmax import _native

DTYPES = [np.float32, np.float64]
PTR = {np.dtype(np.float32): ctypes.POINTER(ctypes.c_float),
       np.dtype(np.float64): ctypes.POINTER(ctypes.c_double),
       np.dtype(np.int64): ctypes.POINTER(ctypes.c_int64)}


def _p(a):
    return a.ctypes.data_as(PTR[a.dtype])


def _suffix(dtype):
    return "f32" if dtype == np.float32 else "f64"


def _padded(values, ld, fill):
    rows, cols = values.shape
    buf = np.full((rows, ld), fill, dtype=values.dtype)
    buf[:, :cols] = values
    return buf


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_padding_between_rows_is_never_written(dtype):
    seed = 400
    rng = np.random.default_rng(seed)
    lib = _native.lib()
    rows, cols, ld = 5, 7, 11
    z = rng.uniform(-5, 5, size=(rows, cols)).astype(dtype)
    g = rng.standard_normal((rows, cols)).astype(dtype)
    sentinel = dtype(-12345.0)
    zin = _padded(z, ld + 2, np.nan)  # NaN padding in the input: must not be read either
    for op, want in (("softmax", ref.softmax(z)), ("log_softmax", ref.log_softmax(z))):
        out = _padded(np.zeros((rows, cols), dtype), ld, sentinel)
        st = getattr(lib, "nsm_%s_%s" % (op, _suffix(dtype)))(rows, cols, _p(zin), ld + 2,
                                                               _p(out), ld)
        assert st == 0
        assert np.all(out[:, cols:] == sentinel), "%s wrote into the padding" % op
        ref.assert_close(out[:, :cols], want, 1e-5, 1e-6, "%s ld=%d seed=%d" % (op, ld, seed))
    o = ref.softmax(z).astype(dtype)
    for op, want in (("softmax_backward", ref.softmax_backward(g, o)),
                     ("log_softmax_backward", ref.log_softmax_backward(g, o))):
        out = _padded(np.zeros((rows, cols), dtype), ld, sentinel)
        st = getattr(lib, "nsm_%s_%s" % (op, _suffix(dtype)))(
            rows, cols, _p(_padded(g, ld + 1, np.nan)), ld + 1, _p(_padded(o, ld + 3, np.nan)),
            ld + 3, _p(out), ld)
        assert st == 0
        assert np.all(out[:, cols:] == sentinel), "%s wrote into the padding" % op
        ref.assert_close(out[:, :cols], want, 1e-5, 1e-5, "%s ld=%d seed=%d" % (op, ld, seed))
    jac = np.full((cols, ld), sentinel, dtype)
    assert getattr(lib, "nsm_softmax_jacobian_" + _suffix(dtype))(cols, _p(z[0].copy()),
                                                                    _p(jac), ld) == 0
    assert np.all(jac[:, cols:] == sentinel)
    ref.assert_close(jac[:, :cols], ref.jacobian(z[0]), 1e-5, 1e-6, "jacobian ld=%d" % ld)
    t = rng.integers(0, cols, size=rows)
    p = rng.dirichlet(np.ones(cols), size=rows).astype(dtype)
    opts = _native.CrossEntropyOptions(ctypes.sizeof(_native.CrossEntropyOptions),
                                       _native.NSM_REDUCTION_SUM, -100, 0.1, 1.0)
    for soft in (False, True):
        grad = _padded(np.zeros((rows, cols), dtype), ld, sentinel)
        loss = np.zeros(1, dtype)
        if soft:
            st = getattr(lib, "nsm_cross_entropy_soft_" + _suffix(dtype))(
                rows, cols, _p(zin), ld + 2, _p(_padded(p, ld + 4, np.nan)), ld + 4, None,
                ctypes.byref(opts), _p(loss), _p(grad), ld)
        else:
            st = getattr(lib, "nsm_cross_entropy_" + _suffix(dtype))(
                rows, cols, _p(zin), ld + 2, _p(t), None, ctypes.byref(opts), _p(loss),
                _p(grad), ld)
        assert st == 0
        assert np.all(grad[:, cols:] == sentinel), "cross_entropy wrote into the padding"
        rloss, rgrad, _ = ref.cross_entropy(z, p if soft else t, reduction="sum",
                                            label_smoothing=0.1)
        ref.assert_close(loss[0], rloss, 1e-5, 1e-5, "cross_entropy loss soft=%s" % soft)
        ref.assert_close(grad[:, :cols], rgrad, 1e-5, 1e-6, "cross_entropy grad soft=%s" % soft)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_exact_in_place(dtype):
    seed = 401
    rng = np.random.default_rng(seed)
    lib = _native.lib()
    s = _suffix(dtype)
    z = rng.uniform(-5, 5, size=(4, 9)).astype(dtype)
    g = rng.standard_normal((4, 9)).astype(dtype)
    for op in ("softmax", "log_softmax"):
        buf = z.copy()
        assert getattr(lib, "nsm_%s_%s" % (op, s))(4, 9, _p(buf), 9, _p(buf), 9) == 0
        ref.assert_close(buf, getattr(nsm, op)(z), 0, 0, "%s in place" % op)
    o = nsm.softmax(z)
    for which in ("grad_output", "output"):
        gg, oo = g.copy(), o.copy()
        out = gg if which == "grad_output" else oo
        assert getattr(lib, "nsm_softmax_backward_" + s)(4, 9, _p(gg), 9, _p(oo), 9,
                                                         _p(out), 9) == 0
        ref.assert_close(out, nsm.softmax_backward(g, o), 0, 0, "softmax_backward into " + which)
    t = rng.integers(0, 9, size=4)
    buf = z.copy()
    loss = np.zeros(1, dtype)
    assert getattr(lib, "nsm_cross_entropy_" + s)(4, 9, _p(buf), 9, _p(t), None, None,
                                                  _p(loss), _p(buf), 9) == 0
    want_loss, want_grad = nsm.cross_entropy(z, t, return_grad=True)
    ref.assert_close(buf, want_grad, 0, 0, "cross_entropy grad into logits")
    ref.assert_close(loss[0], want_loss, 0, 0, "cross_entropy loss with grad into logits")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_results_below_the_smallest_normal_are_flushed_to_zero(dtype):
    tiny = np.finfo(dtype).tiny
    d = 87.5 if dtype == np.float32 else 708.5  # exp(−d) is just below the smallest normal
    z = np.array([[0.0, -d, -d - 1.5, -d + 1.0, -d - 30.0]], dtype=dtype)
    o = nsm.softmax(z)
    subnormal = (o != 0) & (np.abs(o) < tiny)
    assert not np.any(subnormal), "subnormal probabilities %s" % o
    assert o[0, 1] == 0 and o[0, 2] == 0 and o[0, 4] == 0 and o[0, 3] >= tiny, o

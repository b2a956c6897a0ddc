"""cross_entropy(..., grad_out=...): the gradient written into a caller's array, optionally exactly
in place over the logits (or, for soft targets, over the target), as the C ABI allows.

In place and into a strided buffer must give the out-of-place result bit for bit: the library
computes the same row with the same operations whatever the destination, so any difference is a
bug, not rounding.
"""

import numpy as np
import pytest

import nativesoftmax as nsm
from nativesoftmax import _native

DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]


def _same(a, b):
    """Bit for bit, NaN included (and -0.0 ≠ 0.0)."""
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _problem(rng, dtype, soft, rows=9, cols=7):
    z = rng.uniform(-20, 20, size=(rows, cols)).astype(dtype)
    z[2, 3] = -np.inf  # a −inf logit with a finite maximum
    if soft:
        t = rng.dirichlet(np.ones(cols), size=rows)
        t[rng.random((rows, cols)) < 0.3] = 0.0
        t[4] = 0.0  # a row that asks for nothing
        t = t.astype(dtype)
    else:
        t = rng.integers(0, cols, size=rows)
        t[[1, 5]] = -100
    return z, t


def _options():
    for wkind in ("none", "positive", "mixed-sign"):
        for eps in (0.0, 0.3):
            for reduction in ("none", "sum", "mean"):
                for gs in (1.0, -2.5):
                    yield wkind, eps, reduction, gs


def _weight(rng, wkind, cols, dtype):
    if wkind == "none":
        return None
    w = rng.uniform(0.5, 2.0, size=cols)
    if wkind == "mixed-sign":
        w[::3] *= -0.5
    return w.astype(dtype)


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_in_place_over_logits_is_bit_identical(dtype, soft):
    rng = np.random.default_rng(700 + 2 * soft + (dtype == np.float32))
    n = 0
    for wkind, eps, reduction, gs in _options():
        z, t = _problem(rng, dtype, soft)
        w = _weight(rng, wkind, z.shape[1], dtype)
        kw = dict(weight=w, reduction=reduction, label_smoothing=eps, grad_scale=gs)
        what = "%s %s weight=%s eps=%g %s gs=%g" % (np.dtype(dtype).name, "soft" if soft
                                                    else "hard", wkind, eps, reduction, gs)
        want_loss, want_grad = nsm.cross_entropy(z, t, return_grad=True, **kw)
        buf = z.copy()
        loss, grad = nsm.cross_entropy(buf, t, grad_out=buf, **kw)
        assert grad is buf, what
        assert _same(loss, want_loss), "%s: loss %r vs %r" % (what, loss, want_loss)
        assert _same(grad, want_grad), "%s: in-place gradient differs" % what
        # one row, 1-D, in place
        row = z[0].copy()
        t0 = t[0]
        l1, g1 = nsm.cross_entropy(z[0], t0, return_grad=True, **kw)
        l2, g2 = nsm.cross_entropy(row, t0, grad_out=row, **kw)
        assert g2 is row and _same(l1, l2) and _same(g1, g2), "1-D " + what
        n += 1
    assert n == 36


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_in_place_over_soft_target_is_bit_identical(dtype):
    rng = np.random.default_rng(710 + (dtype == np.float32))
    for wkind, eps, reduction, gs in _options():
        z, t = _problem(rng, dtype, True)
        w = _weight(rng, wkind, z.shape[1], dtype)
        kw = dict(weight=w, reduction=reduction, label_smoothing=eps, grad_scale=gs)
        want_loss, want_grad = nsm.cross_entropy(z, t, return_grad=True, **kw)
        buf = t.copy()
        loss, grad = nsm.cross_entropy(z, buf, grad_out=buf, **kw)
        what = "%s weight=%s eps=%g %s" % (np.dtype(dtype).name, wkind, eps, reduction)
        assert grad is buf and _same(loss, want_loss) and _same(grad, want_grad), what


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_strided_grad_out_leaves_the_padding_alone(dtype, soft):
    rng = np.random.default_rng(720 + 2 * soft + (dtype == np.float32))
    sentinel = dtype(-7.25)
    for wkind, eps, reduction, gs in _options():
        z, t = _problem(rng, dtype, soft)
        rows, cols = z.shape
        w = _weight(rng, wkind, cols, dtype)
        kw = dict(weight=w, reduction=reduction, label_smoothing=eps, grad_scale=gs)
        want_loss, want_grad = nsm.cross_entropy(z, t, return_grad=True, **kw)
        for layout, where in (("column slice", (slice(0, rows), slice(2, 2 + cols))),
                              ("every other row", (slice(0, None, 2), slice(3, 3 + cols)))):
            wide = np.full((2 * rows, cols + 5), sentinel, dtype)
            view = wide[where]
            mask = np.ones(wide.shape, bool)
            mask[where] = False  # everything outside the view is padding
            loss, grad = nsm.cross_entropy(z, t, grad_out=view, **kw)
            what = "%s %s %s weight=%s eps=%g %s" % (np.dtype(dtype).name, "soft" if soft
                                                     else "hard", layout, wkind, eps, reduction)
            assert grad is view, what
            assert _same(loss, want_loss), what
            assert _same(np.ascontiguousarray(view), want_grad), what
            assert np.all(wide[mask] == sentinel), "%s: padding written" % what


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_strided_logits_in_place(dtype):
    """Logits that are a column slice of a wider array are passed without a copy, so grad_out may
    be that same view: exact in place with the wider leading dimension."""
    rng = np.random.default_rng(730 + (dtype == np.float32))
    wide = rng.uniform(-5, 5, size=(6, 11)).astype(dtype)
    z = wide[:, 1:8]
    t = rng.integers(0, 7, size=6)
    want_loss, want_grad = nsm.cross_entropy(z, t, reduction="sum", return_grad=True)
    before = wide.copy()
    loss, grad = nsm.cross_entropy(z, t, reduction="sum", grad_out=z)
    assert grad is z and _same(loss, want_loss) and _same(np.ascontiguousarray(z), want_grad)
    assert np.array_equal(wide[:, :1], before[:, :1]) and np.array_equal(wide[:, 8:],
                                                                         before[:, 8:])


def test_grad_out_implies_return_grad_and_handles_no_rows():
    z = np.zeros((0, 4))
    g = np.empty((0, 4))
    loss, grad = nsm.cross_entropy(z, np.zeros(0, np.int64), reduction="sum", grad_out=g,
                                   return_grad=False)
    assert loss == 0.0 and grad is g
    z = np.random.default_rng(740).standard_normal((3, 4))
    g = np.empty((3, 4))
    out = nsm.cross_entropy(z, np.array([0, 1, 2]), grad_out=g)
    assert isinstance(out, tuple) and out[1] is g
    assert _same(g, nsm.cross_entropy(z, np.array([0, 1, 2]), return_grad=True)[1])


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------

def _raises(status_name, *args, binding=True, **kwargs):
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        nsm.cross_entropy(*args, **kwargs)
    exc = info.value
    assert exc.status_name == status_name, str(exc)
    assert exc.message.startswith("binding: ") == binding, str(exc)
    if not binding:
        assert exc.message == _native.text_of(_native.lib().nsm_last_error)
    return exc


def test_grad_out_of_the_wrong_shape_dtype_or_layout():
    rng = np.random.default_rng(750)
    z = rng.standard_normal((4, 5))
    t = np.array([0, 1, 2, 3])
    _raises("NSM_ERR_INVALID_SHAPE", z, t, grad_out=np.empty((4, 6)))
    _raises("NSM_ERR_INVALID_SHAPE", z, t, grad_out=np.empty((5, 4)))
    _raises("NSM_ERR_INVALID_SHAPE", z, t, grad_out=np.empty(20))
    _raises("NSM_ERR_INVALID_SHAPE", z[0], 1, grad_out=np.empty((1, 5)))
    exc = _raises("NSM_ERR_INVALID_ARGUMENT", z, t, grad_out=np.empty((4, 5), np.float32))
    assert "float32" in exc.message and "float64" in exc.message
    _raises("NSM_ERR_INVALID_ARGUMENT", z.astype(np.float32), t, grad_out=np.empty((4, 5)))
    _raises("NSM_ERR_INVALID_ARGUMENT", z, t, grad_out=np.empty((4, 5), np.int64))
    _raises("NSM_ERR_INVALID_ARGUMENT", z, t, grad_out=np.empty((4, 5)).tolist())
    ro = np.empty((4, 5))
    ro.flags.writeable = False
    _raises("NSM_ERR_INVALID_ARGUMENT", z, t, grad_out=ro)
    for bad in (np.empty((4, 5), order="F"),          # column stride != 1
                np.empty((4, 10))[:, ::2],             # column stride 2
                np.empty((4, 5))[::-1],                # negative row stride
                np.empty((4, 5, 2))[:, :, 0]):         # column stride 2 again
        _raises("NSM_ERR_INVALID_LEADING_DIM", z, t, grad_out=bad)
    unaligned = np.frombuffer(bytearray(4 * 5 * 8 + 1), dtype=np.uint8)[1:].view(np.float64)
    _raises("NSM_ERR_INVALID_LEADING_DIM", z, t, grad_out=unaligned.reshape(4, 5))


def test_grad_out_over_logits_that_needed_a_conversion():
    """Logits read from a converted copy whose gradient has another dtype than theirs. (float16
    logits have a float16 gradient, so grad_out=logits works for them: test_conventions.py.)"""
    t = np.array([0, 1, 2])
    for z in (np.arange(12).reshape(3, 4),                       # int → float64
              np.arange(12, dtype=">f8").reshape(3, 4)):         # big-endian → native float64
        before = z.copy()
        exc = _raises("NSM_ERR_INVALID_ARGUMENT", z, t, grad_out=z)
        assert "grad_out is the logits" in exc.message and "in place" in exc.message, exc.message
        assert np.array_equal(z, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_partial_overlap_reaches_the_library(dtype):
    rng = np.random.default_rng(760 + (dtype == np.float32))
    wide = rng.standard_normal((4, 6)).astype(dtype)
    before = wide.copy()
    t = np.array([0, 1, 2, 3])
    # the gradient one column to the right of the logits, same leading dimension
    _raises("NSM_ERR_OVERLAP", wide[:, :5], t, grad_out=wide[:, 1:], binding=False)
    p = rng.dirichlet(np.ones(5), size=4).astype(dtype)
    wp = np.concatenate([p, p[:, :1]], axis=1)
    _raises("NSM_ERR_OVERLAP", rng.standard_normal((4, 5)).astype(dtype), wp[:, :5],
            grad_out=wp[:, 1:], binding=False)
    w = np.ones(5, dtype)
    _raises("NSM_ERR_OVERLAP", wide[:1, :5].copy(), t[:1], weight=w, grad_out=w.reshape(1, 5),
            binding=False)
    assert np.array_equal(wide, before), "written on failure"


def test_nothing_written_in_place_on_failure():
    z = np.random.default_rng(770).standard_normal((3, 4))
    before = z.copy()
    _raises("NSM_ERR_LABEL_OUT_OF_RANGE", z, np.array([0, 9, 1]), grad_out=z, binding=False)
    _raises("NSM_ERR_INVALID_ARGUMENT", z, np.array([0, 1, 1]), grad_out=z, label_smoothing=2.0,
            binding=False)
    assert np.array_equal(z, before)

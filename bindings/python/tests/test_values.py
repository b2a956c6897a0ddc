"""Values of every operation against the independent float64 reference in reference.py.

Tolerances (from the header's accuracy statements):
  softmax           float32 |a − r| <= 1e-6·|r| + 1e-37   float64 1e-12·|r| + 1e-300
  log_softmax, loss float32 2e-6·(1 + |r|)                float64 1e-12·(1 + |r|)
  backward passes, Jacobian, gradients: float32 1e-6·(1 + |r|)·scale, float64 1e-12·(1 + |r|)·scale
Every assertion message names the operation, dtype, shape and seed.
"""

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref

DTYPES = [np.float32, np.float64]
# Every row length 1 … 3 × (widest vector: 16 float32 lanes) + 1, then the workload sizes.
SHORT_COLS = list(range(1, 50))
WORKLOAD_COLS = [10, 1000, 1001, 32000, 128256]


def _tol(dtype, kind):
    f32 = dtype == np.float32
    return {
        "softmax": (1e-6, 1e-37) if f32 else (1e-12, 1e-300),
        "log": (2e-6, 2e-6) if f32 else (1e-12, 1e-12),
        "grad": (1e-6, 1e-6) if f32 else (1e-12, 1e-12),
    }[kind]


def _logits(rng, rows, cols, dtype, lo=-100.0, hi=100.0):
    return rng.uniform(lo, hi, size=(rows, cols)).astype(dtype)


def _forward_tol(op, z):
    """(rtol, atol) for softmax / log_softmax of z: the header's bounds, nothing added (the
    library computes z − m exactly before exp, so the float32 bound holds however far a
    probability lies below the row's maximum)."""
    return _tol(z.dtype, "softmax" if op == "softmax" else "log")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_forward_every_short_length(op, dtype):
    seed = 1000 + 10 * (op == "softmax") + (dtype == np.float32)
    rng = np.random.default_rng(seed)
    fn = getattr(nsm, op)
    rf = getattr(ref, op)
    for cols in SHORT_COLS:
        z = _logits(rng, 7, cols, dtype)
        rtol, atol = _forward_tol(op, z)
        got = fn(z)
        assert got.dtype == dtype and got.shape == z.shape
        ref.assert_close(got, rf(z), rtol, atol,
                         "%s %s cols=%d rows=7 seed=%d" % (op, np.dtype(dtype).name, cols, seed))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("cols", WORKLOAD_COLS)
def test_forward_workload_sizes(op, dtype, cols):
    seed = 2000 + cols
    rng = np.random.default_rng(seed)
    rows = 3 if cols > 10000 else 17
    z = _logits(rng, rows, cols, dtype)
    rtol, atol = _forward_tol(op, z)
    ref.assert_close(getattr(nsm, op)(z), getattr(ref, op)(z), rtol, atol,
                     "%s %s cols=%d rows=%d seed=%d" % (op, np.dtype(dtype).name, cols, rows, seed))


def test_softmax_float32_header_bound_as_written():
    """The header's literal 1e-6 relative on logits in [−100, 100], down to the smallest
    probabilities (where rounding z − m to float32 alone would cost |z − m|·2⁻²⁴)."""
    seed = 1011
    rng = np.random.default_rng(seed)
    for cols in SHORT_COLS + WORKLOAD_COLS[:3]:
        z = _logits(rng, 7, cols, np.float32)
        ref.assert_close(nsm.softmax(z), ref.softmax(z), 1e-6, 1e-37,
                         "softmax float32 (header's literal 1e-6) cols=%d seed=%d" % (cols, seed))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_forward_where_naive_exp_overflows(dtype):
    """Logits far beyond exp's range (exp(100) overflows float32, exp(1000) float64) only work
    with the max shift."""
    seed = 3000
    rng = np.random.default_rng(seed)
    big = 1e4 if dtype == np.float32 else 1e6
    for cols in (1, 5, 33, 1001):
        z = (big + rng.uniform(-30, 30, size=(4, cols))).astype(dtype)
        z[1] = -z[1]
        what = "%s cols=%d offset=±%g seed=%d" % (np.dtype(dtype).name, cols, big, seed)
        rtol, atol = _tol(dtype, "softmax")
        ref.assert_close(nsm.softmax(z), ref.softmax(z), rtol, atol, "softmax " + what)
        rtol, atol = _tol(dtype, "log")
        # |log-prob| ≪ |logit|, so scale the tolerance by the logit magnitude the subtraction saw
        ref.assert_close(nsm.log_softmax(z), ref.log_softmax(z), rtol, atol * (1 + big) * 1e-3
                         if dtype == np.float32 else atol * big, "log_softmax " + what)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["softmax_backward", "log_softmax_backward"])
def test_backward_values(op, dtype):
    seed = 4000 + (op == "softmax_backward")
    rng = np.random.default_rng(seed)
    rtol, atol = _tol(dtype, "grad")
    for cols in SHORT_COLS + [1000, 1001]:
        z = rng.uniform(-20, 20, size=(5, cols))
        g = rng.standard_normal((5, cols)).astype(dtype)
        out = (ref.softmax(z) if op == "softmax_backward" else ref.log_softmax(z)).astype(dtype)
        got = getattr(nsm, op)(g, out)
        want = getattr(ref, op)(g, out)
        # the result's rounding scales with |g|·|o| terms of the row sum
        scale = 1 + np.max(np.abs(g), axis=1, keepdims=True)
        ref.assert_close(got, want, rtol, atol * scale,
                         "%s %s cols=%d seed=%d" % (op, np.dtype(dtype).name, cols, seed))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_jacobian_values(dtype):
    seed = 5000
    rng = np.random.default_rng(seed)
    rtol, atol = _tol(dtype, "grad")
    for cols in list(range(1, 40)) + [100]:
        z = rng.uniform(-10, 10, size=cols).astype(dtype)
        jac = nsm.softmax_jacobian(z)
        what = "jacobian %s cols=%d seed=%d" % (np.dtype(dtype).name, cols, seed)
        assert jac.shape == (cols, cols) and jac.dtype == dtype, what
        ref.assert_close(jac, ref.jacobian(z), rtol, atol, what)


def _ce_cases():
    for soft in (False, True):
        for weight in ("none", "positive", "mixed-sign"):
            for ignore in (("absent", "present", "in-range") if not soft else ("n/a",)):
                for eps in (0.0, 0.3, 1.0):
                    for reduction in ("none", "sum", "mean"):
                        yield soft, weight, ignore, eps, reduction


def _make_ce_case(rng, rows, cols, soft, weight, ignore, dtype):
    z = rng.uniform(-20, 20, size=(rows, cols)).astype(dtype)
    w = None
    if weight == "positive":
        w = rng.uniform(0.5, 2.0, size=cols).astype(dtype)
    elif weight == "mixed-sign":
        w = rng.uniform(-1.0, 2.0, size=cols).astype(dtype)
    ignore_index = -100
    if soft:
        t = rng.dirichlet(np.ones(cols), size=rows).astype(dtype)
        if rows:
            t[0] *= 1.7  # one row that does not sum to 1: the general gradient o·Σy − y
    else:
        t = rng.integers(0, cols, size=rows)
        if ignore == "present" and rows:
            t[rng.random(rows) < 0.3] = -100
        elif ignore == "in-range":
            ignore_index = int(rng.integers(0, cols))
    return z, t, w, ignore_index


def _check_ce(z, t, w, ignore_index, reduction, eps, gs, what):
    dtype = z.dtype
    loss, grad = nsm.cross_entropy(z, t, weight=w, ignore_index=ignore_index, reduction=reduction,
                                   label_smoothing=eps, return_grad=True, grad_scale=gs)
    rloss, rgrad, info = ref.cross_entropy(z, t, weight=w, ignore_index=ignore_index,
                                           reduction=reduction, label_smoothing=eps,
                                           grad_scale=gs, soft=t.dtype.kind == "f")
    rtol, atol = _tol(dtype, "log")
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == (z.shape[0],), what
        ref.assert_close(loss, rloss, rtol, atol, "loss " + what)
    else:
        assert np.ndim(loss) == 0 and np.asarray(loss).dtype == dtype, what
        cond = info["cond"]
        bound = atol + rtol * max(abs(rloss), cond) if np.isfinite(cond) else 0.0
        ref.assert_close(loss, rloss, 0.0, bound, "loss " + what)
    assert grad.shape == z.shape and grad.dtype == dtype, what
    # gradient: 1e-6·|s| absolute in float32 for normalised targets; weighted targets scale it
    ysum = np.sum(np.abs(info["y"]), axis=1, keepdims=True) if z.size else 0.0
    grtol, gatol = _tol(dtype, "grad")
    s = abs(info["s"]) if np.isfinite(info["s"]) else 0.0
    ref.assert_close(grad, rgrad, grtol, gatol * s * np.maximum(1.0, ysum) + 1e-300,
                     "grad " + what)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cross_entropy_every_option_combination(dtype):
    """Hard and soft targets × weight × ignore_index × label_smoothing × reduction, against the
    float64 reference of the header's formulas (the torch tests compare with PyTorch too)."""
    seed = 6000 + (dtype == np.float32)
    rng = np.random.default_rng(seed)
    n = 0
    for soft, weight, ignore, eps, reduction in _ce_cases():
        for rows, cols in ((1, 1), (0, 3), (5, 2), (13, 7), (9, 33), (4, 1001)):
            z, t, w, ii = _make_ce_case(rng, rows, cols, soft, weight, ignore, dtype)
            gs = float(rng.choice([1.0, -0.7, 2.5]))
            what = ("cross_entropy %s %s rows=%d cols=%d weight=%s ignore=%s(%d) eps=%g "
                    "reduction=%s grad_scale=%g seed=%d"
                    % (np.dtype(dtype).name, "soft" if soft else "hard", rows, cols, weight,
                       ignore, ii, eps, reduction, gs, seed))
            _check_ce(z, t, w, ii, reduction, eps, gs, what)
            n += 1
    assert n == (81 + 27) * 6


# ------------------------------------------------------------------------------------------------
# Layouts: zero-copy views, other axes, other dtypes
# ------------------------------------------------------------------------------------------------

def test_strided_rows_are_passed_without_copy():
    base = np.random.default_rng(7).standard_normal((6, 20))
    view = base[1:5, 3:11]  # row stride 20 elements, 8 columns
    mat, rows, cols, ld = nsm._ops._as_rows(view, view.dtype)
    assert mat is view and (rows, cols, ld) == (4, 8, 20)
    every_other = base[::2, :8]  # row stride 40
    assert nsm._ops._as_rows(every_other, base.dtype)[3] == 40
    cube = np.zeros((3, 4, 9))[:, :, :5]  # leading axes collapse: row stride 9
    assert nsm._ops._as_rows(cube, cube.dtype)[1:] == (12, 5, 9)


@pytest.mark.parametrize("layout", ["column-stride-2", "negative-row-stride", "fortran",
                                    "transposed", "leading-axes-do-not-collapse",
                                    "broadcast-rows", "overlapping-windows"])
def test_every_layout_gives_the_reference(layout):
    seed = 8
    base = np.random.default_rng(seed).uniform(-30, 30, size=(3, 6, 20))
    a = {
        "column-stride-2": base[0, :, ::2],
        "negative-row-stride": base[1, ::-1, :],
        "fortran": np.asfortranarray(base[2]),
        "transposed": base[0].T,
        "leading-axes-do-not-collapse": base[:, 1:, :7],
        "broadcast-rows": np.broadcast_to(base[0, 0], (4, 20)),  # row stride 0
        "overlapping-windows": np.lib.stride_tricks.sliding_window_view(base[0, 0], 6),
    }[layout]
    assert nsm._ops._row_stride(a) is None, layout  # these need the one copy
    before = a.copy()
    what = "layout=%s strides=%s seed=%d" % (layout, a.strides, seed)
    ref.assert_close(nsm.softmax(a), ref.softmax(a), 1e-12, 1e-300, "softmax " + what)
    ref.assert_close(nsm.log_softmax(a), ref.log_softmax(a), 1e-12, 1e-12, "log_softmax " + what)
    assert np.array_equal(a, before), "input modified: " + what


def test_unaligned_and_readonly_input():
    raw = np.zeros(8 * 30 + 1, dtype=np.uint8)
    a = np.frombuffer(raw.data, dtype=np.float64, count=30, offset=1).reshape(3, 10)
    assert not a.flags.aligned
    a2 = np.random.default_rng(9).uniform(-5, 5, size=(3, 10))
    raw[1:] = a2.view(np.uint8).ravel()
    ref.assert_close(nsm.softmax(a), ref.softmax(a2), 1e-12, 1e-300, "unaligned")
    ro = a2.copy()
    ro.flags.writeable = False
    ref.assert_close(nsm.log_softmax(ro), ref.log_softmax(a2), 1e-12, 1e-12, "read-only")


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_any_axis_of_a_3d_array(axis):
    seed = 10 + axis
    z = np.random.default_rng(seed).uniform(-20, 20, size=(3, 4, 5))
    for op in ("softmax", "log_softmax"):
        got = getattr(nsm, op)(z, axis=axis)
        want = np.moveaxis(getattr(ref, op)(np.moveaxis(z, axis, -1)), -1, axis)
        ref.assert_close(got, want, 1e-12, 1e-12, "%s axis=%d seed=%d" % (op, axis, seed))
    o = nsm.softmax(z, axis=axis)
    g = np.random.default_rng(seed + 100).standard_normal(z.shape)
    got = nsm.softmax_backward(g, o, axis=axis)
    want = np.moveaxis(ref.softmax_backward(np.moveaxis(g, axis, -1), np.moveaxis(o, axis, -1)),
                       -1, axis)
    ref.assert_close(got, want, 1e-12, 1e-12, "softmax_backward axis=%d" % axis)
    assert np.allclose(np.sum(o, axis=axis), 1.0, rtol=0, atol=1e-14)


def test_dtype_rule():
    assert nsm.softmax(np.array([1, 2, 3])).dtype == np.float64
    assert nsm.softmax(np.array([True, False])).dtype == np.float64
    assert nsm.softmax(np.array([1, 2], dtype=np.float16)).dtype == np.float16  # via float32
    assert nsm.softmax([1.0, 2.0]).dtype == np.float64
    assert nsm.softmax(np.ones(3, np.float32)).dtype == np.float32
    assert nsm.softmax(np.ones(3, np.longdouble)).dtype == np.float64
    swapped = np.arange(6, dtype=">f4" if np.little_endian else "<f4").reshape(2, 3)
    assert nsm.log_softmax(swapped).dtype == np.float32
    ref.assert_close(nsm.log_softmax(swapped), ref.log_softmax(swapped.astype(np.float64)),
                     2e-6, 2e-6, "non-native byte order")
    assert nsm.cross_entropy(np.zeros((0, 3)), [], reduction="sum") == 0.0  # [] is no labels
    g32, o64 = np.ones(3, np.float32), np.full(3, 1 / 3)
    assert nsm.softmax_backward(g32, o64).dtype == np.float64
    ref.assert_close(nsm.softmax(np.array([1, 2, 3])), ref.softmax(np.array([1.0, 2.0, 3.0])),
                     1e-12, 1e-300, "int input")
    loss = nsm.cross_entropy(np.array([[1, 2, 3]]), np.array([2], dtype=np.uint8))
    assert np.asarray(loss).dtype == np.float64
    ref.assert_close(loss, ref.cross_entropy(np.array([[1.0, 2, 3]]), np.array([2]))[0],
                     1e-12, 1e-12, "int logits, uint8 labels")
    # float64 soft targets with float32 logits are computed in float32
    loss = nsm.cross_entropy(np.zeros((2, 4), np.float32), np.full((2, 4), 0.25))
    assert np.asarray(loss).dtype == np.float32


def test_one_row_logits_like_torch():
    z = np.array([0.5, -1.0, 2.0, 0.0])
    loss, grad = nsm.cross_entropy(z, 2, return_grad=True)
    rloss, rgrad, _ = ref.cross_entropy(z[None], np.array([2]))
    assert np.ndim(loss) == 0 and grad.shape == (4,)
    ref.assert_close(loss, rloss, 1e-12, 1e-12, "1-D logits, scalar label")
    ref.assert_close(grad, rgrad[0], 1e-12, 1e-12, "1-D logits grad")
    p = np.array([0.1, 0.2, 0.3, 0.4])
    loss = nsm.cross_entropy(z, p, reduction="none")
    assert np.ndim(loss) == 0
    ref.assert_close(loss, ref.cross_entropy(z[None], p[None])[0], 1e-12, 1e-12, "1-D soft")


def test_strided_logits_and_targets_for_cross_entropy():
    rng = np.random.default_rng(11)
    big = rng.uniform(-10, 10, size=(8, 12))
    z = big[::2, 2:9]
    p = rng.dirichlet(np.ones(7), size=8)[::2]
    t = rng.integers(0, 7, size=8)[::2]
    for target in (t, p):
        loss, grad = nsm.cross_entropy(z, target, reduction="sum", return_grad=True)
        rloss, rgrad, _ = ref.cross_entropy(z, target, reduction="sum")
        ref.assert_close(loss, rloss, 1e-12, 1e-12, "strided cross_entropy loss")
        ref.assert_close(grad, rgrad, 1e-12, 1e-12, "strided cross_entropy grad")


def test_without_return_grad_only_the_loss():
    z = np.random.default_rng(12).standard_normal((4, 3))
    t = np.array([0, 1, 2, 0])
    out = nsm.cross_entropy(z, t)
    assert np.ndim(out) == 0 and not isinstance(out, tuple)


# ------------------------------------------------------------------------------------------------
# The header's edge cases, against its documented behaviour
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_non_finite_rows(dtype):
    inf, nan = np.inf, np.nan
    z = np.array([[-inf, -inf, -inf],   # all −inf → NaN row
                  [0.0, inf, 1.0],      # +inf → NaN row
                  [0.0, nan, 1.0],      # NaN → NaN row
                  [0.0, -inf, 1.0],     # −inf with a finite max → p 0, log p −inf
                  [inf, inf, inf]], dtype=dtype)
    p = nsm.softmax(z)
    lp = nsm.log_softmax(z)
    what = np.dtype(dtype).name
    for r in range(3):
        assert np.all(np.isnan(p[r])) and np.all(np.isnan(lp[r])), "row %d %s: %s %s" % (
            r, what, p[r], lp[r])
    assert np.all(np.isnan(p[4])) and np.all(np.isnan(lp[4])), what
    assert p[3, 1] == 0.0 and lp[3, 1] == -inf, what
    ref.assert_close(p[3], ref.softmax(z[3]), 1e-6, 1e-37, "finite part " + what)
    loss, grad = nsm.cross_entropy(z, np.array([0, 0, 0, 2, 0]), reduction="none", return_grad=True)
    assert np.all(np.isnan(loss[[0, 1, 2, 4]])) and np.isfinite(loss[3]), "%s %s" % (what, loss)
    assert np.all(np.isnan(grad[[0, 1, 2, 4]])), what
    assert grad[3, 1] == 0.0, what
    # the label on the −inf logit: infinite loss
    assert nsm.cross_entropy(z[3:4], np.array([1])) == inf, what


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e38), (np.float32, 3.4e38),
                                       (np.float64, 1e308), (np.float64, 1.79e308)])
def test_extreme_finite_logits(dtype, big):
    z = np.array([[big, -big, 0.0], [big, big, -big], [-big, -big, -big]], dtype=dtype)
    p = nsm.softmax(z)
    what = "%s ±%g" % (np.dtype(dtype).name, big)
    ref.assert_close(p, [[1, 0, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]], 1e-6, 0.0,
                     "softmax " + what)
    lp = nsm.log_softmax(z)
    assert lp[0, 0] == 0.0 and lp[2, 0] == pytest.approx(-np.log(3), rel=1e-6), what + str(lp)
    # z − m = −2·big: finite for float32 1e38, beyond the range (so −inf, the correctly rounded
    # value) for the others
    with np.errstate(over="ignore"):
        minus_2big = (np.float64(-big) * 2).astype(dtype)
    assert lp[0, 1] == minus_2big and lp[1, 2] == minus_2big, what + str(lp)
    assert lp[0, 2] == dtype(-big), what + str(lp)
    loss, grad = nsm.cross_entropy(z, np.array([0, 0, 2]), reduction="none", return_grad=True)
    assert loss[0] == 0.0 and loss[1] == pytest.approx(np.log(2), rel=1e-6), what + str(loss)
    assert np.all(np.isfinite(grad)), what + str(grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_one_class_and_no_rows(dtype):
    z = np.array([[3.0], [-1e30], [0.0]], dtype=dtype)
    assert np.array_equal(nsm.softmax(z), np.ones((3, 1), dtype))
    assert np.array_equal(nsm.log_softmax(z), np.zeros((3, 1), dtype))
    loss, grad = nsm.cross_entropy(z, np.zeros(3, np.int64), reduction="none", return_grad=True)
    assert np.array_equal(loss, np.zeros(3)) and np.array_equal(grad, np.zeros((3, 1)))
    empty = np.zeros((0, 4), dtype)
    assert nsm.softmax(empty).shape == (0, 4) and nsm.log_softmax(empty).shape == (0, 4)
    assert nsm.softmax_backward(empty, empty).shape == (0, 4)
    t0 = np.zeros(0, np.int64)
    assert np.isnan(nsm.cross_entropy(empty, t0))
    assert nsm.cross_entropy(empty, t0, reduction="sum") == 0.0
    loss, grad = nsm.cross_entropy(empty, t0, reduction="none", return_grad=True)
    assert loss.shape == (0,) and grad.shape == (0, 4)
    assert np.isnan(nsm.cross_entropy(empty, np.zeros((0, 4), dtype)))
    assert nsm.cross_entropy(empty, np.zeros((0, 4), dtype), reduction="sum") == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_target_ignored(dtype):
    z = np.random.default_rng(13).standard_normal((4, 5)).astype(dtype)
    t = np.full(4, -100)
    for eps in (0.0, 0.2):
        loss, grad = nsm.cross_entropy(z, t, label_smoothing=eps, return_grad=True)
        assert np.isnan(loss), "mean over no rows must be NaN (eps=%g)" % eps
        assert np.array_equal(grad, np.zeros_like(z)), "ignored rows get a zero gradient"
        loss = nsm.cross_entropy(z, t, label_smoothing=eps, reduction="sum")
        assert loss == 0.0
        loss = nsm.cross_entropy(z, t, label_smoothing=eps, reduction="none")
        assert np.array_equal(loss, np.zeros(4))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_soft_target_zero_on_minus_inf_logit_contributes_nothing(dtype):
    """The header's deliberate difference from PyTorch (which gives NaN here): xlogy."""
    z = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -np.inf]], dtype=dtype)
    p = np.array([[0.3, 0.0, 0.7], [0.0, 0.0, 0.0]], dtype=dtype)
    loss, grad = nsm.cross_entropy(z, p, reduction="none", return_grad=True)
    rloss, rgrad, _ = ref.cross_entropy(z, p, reduction="none")
    assert np.all(np.isfinite(loss)), loss
    assert loss[1] == 0.0 and np.array_equal(grad[1], np.zeros(3, dtype)), (loss, grad)
    ref.assert_close(loss, rloss, 2e-6, 2e-6, "soft xlogy loss %s" % np.dtype(dtype).name)
    ref.assert_close(grad, rgrad, 1e-6, 1e-6, "soft xlogy grad %s" % np.dtype(dtype).name)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_ignored_rows_are_zero_whatever_their_logits(dtype):
    """Documented difference from PyTorch (which gives a NaN gradient for an ignored all-−inf
    row): a row whose label is ignore_index asks for nothing, so loss 0 and gradient 0, even when
    its logits are all −inf, +inf or NaN; the other rows are unaffected."""
    inf, nan = np.inf, np.nan
    z = np.array([[-inf, -inf, -inf, -inf],
                  [0.0, inf, 1.0, 2.0],
                  [0.0, nan, 1.0, 2.0],
                  [inf, inf, inf, inf],
                  [1.0, -2.0, 0.5, 3.0]], dtype=dtype)
    for ignore_index in (-100, 2):
        t = np.array([ignore_index] * 4 + [0])
        for w in (None, np.array([1.0, 2.0, 0.5, 1.5], dtype)):
            for eps in (0.0, 0.25):
                what = "%s ignore=%d weight=%s eps=%g" % (np.dtype(dtype).name, ignore_index,
                                                          w is not None, eps)
                loss, grad = nsm.cross_entropy(z, t, weight=w, ignore_index=ignore_index,
                                               reduction="none", label_smoothing=eps,
                                               return_grad=True)
                assert np.array_equal(loss[:4], np.zeros(4, dtype)), "%s: %s" % (what, loss)
                assert np.array_equal(grad[:4], np.zeros((4, 4), dtype)), "%s: %s" % (what, grad)
                rloss, rgrad, _ = ref.cross_entropy(z[4:], t[4:], weight=w,
                                                    ignore_index=ignore_index, reduction="none",
                                                    label_smoothing=eps)
                ref.assert_close(loss[4:], rloss, *_tol(dtype, "log"), "kept row " + what)
                ref.assert_close(grad[4:], rgrad, *_tol(dtype, "grad"), "kept row grad " + what)
                for reduction in ("sum", "mean"):
                    loss, grad = nsm.cross_entropy(z, t, weight=w, ignore_index=ignore_index,
                                                   reduction=reduction, label_smoothing=eps,
                                                   return_grad=True)
                    assert np.isfinite(loss) and np.all(np.isfinite(grad)), what + reduction
                    assert np.array_equal(grad[:4], np.zeros((4, 4), dtype)), what + reduction


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_all_zero_soft_target_rows_are_zero_whatever_their_logits(dtype):
    """Documented: soft-target rows whose weighted, smoothed targets are all zero ask for nothing:
    loss 0 and gradient 0 whatever the logits (all −inf, +inf, NaN, or ordinary), without
    label smoothing (which would make every target nonzero); also when zero weights zero them."""
    inf, nan = np.inf, np.nan
    z = np.array([[-inf, -inf, -inf],
                  [0.0, inf, 1.0],
                  [nan, 0.0, 1.0],
                  [inf, inf, inf],
                  [2.0, -1.0, 0.5],
                  [0.5, 1.0, -1.0]], dtype=dtype)
    p = np.zeros((6, 3), dtype)
    p[5] = [0.2, 0.5, 0.3]
    for w in (None, np.array([2.0, 0.5, 1.0], dtype)):
        what = "%s weight=%s" % (np.dtype(dtype).name, w is not None)
        loss, grad = nsm.cross_entropy(z, p, weight=w, reduction="none", return_grad=True)
        assert np.array_equal(loss[:5], np.zeros(5, dtype)), "%s: %s" % (what, loss)
        assert np.array_equal(grad[:5], np.zeros((5, 3), dtype)), "%s: %s" % (what, grad)
        rloss, rgrad, _ = ref.cross_entropy(z[5:], p[5:], weight=w, reduction="none")
        ref.assert_close(loss[5:], rloss, *_tol(dtype, "log"), "kept row " + what)
        ref.assert_close(grad[5:], rgrad, *_tol(dtype, "grad"), "kept row grad " + what)
        for reduction in ("sum", "mean"):
            loss = nsm.cross_entropy(z, p, weight=w, reduction=reduction)
            want = float(np.sum(rloss)) / (6 if reduction == "mean" else 1)
            assert loss == pytest.approx(want, rel=2e-6), what + reduction
    # targets nonzero only where the weight is zero: ŷ all zero again
    loss, grad = nsm.cross_entropy(z[:1], np.array([[0.0, 1.0, 0.0]], dtype),
                                   weight=np.array([1.0, 0.0, 1.0], dtype), reduction="none",
                                   return_grad=True)
    assert loss[0] == 0.0 and np.array_equal(grad, np.zeros((1, 3), dtype)), (loss, grad)
    # with label smoothing every ŷ_j is ε/C·w_j > 0: the row asks for something, NaN as usual
    loss = nsm.cross_entropy(z[:1], p[:1], reduction="none", label_smoothing=0.1)
    assert np.isnan(loss[0]), loss


def test_negative_weights_are_accepted():
    z = np.random.default_rng(14).standard_normal((6, 3))
    t = np.array([0, 1, 2, 0, 1, 2])
    w = np.array([1.0, -0.5, 2.0])
    loss, grad = nsm.cross_entropy(z, t, weight=w, return_grad=True)
    rloss, rgrad, _ = ref.cross_entropy(z, t, weight=w)
    ref.assert_close(loss, rloss, 1e-12, 1e-12, "negative weight loss")
    ref.assert_close(grad, rgrad, 1e-12, 1e-12, "negative weight grad")


def test_concurrent_calls_from_threads():
    """Reentrant, with a per-thread last error: threads mixing good and failing calls each see
    their own results and messages."""
    import threading

    rng = np.random.default_rng(15)
    z = rng.standard_normal((64, 100))
    want = ref.softmax(z)
    problems = []

    def work(k):
        for _ in range(50):
            try:
                nsm.cross_entropy(z[:2, :5], np.array([0, 5 + k]))
                problems.append("thread %d: no error" % k)
            except nsm.NativeSoftmaxError as exc:
                if exc.status_name != "NSM_ERR_LABEL_OUT_OF_RANGE":
                    problems.append("thread %d: %s" % (k, exc))
            if not np.allclose(nsm.softmax(z), want, rtol=1e-12, atol=1e-300):
                problems.append("thread %d: wrong softmax" % k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not problems, problems[:5]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_axis_none_normalises_over_the_whole_array_as_scipy(dtype):
    """axis=None, scipy.special.softmax's default: one softmax over every element."""
    rng = np.random.default_rng(77)
    z = rng.uniform(-5, 5, size=(3, 4, 5)).astype(dtype)
    flat = z.reshape(1, -1)
    rtol, atol = _tol(dtype, "softmax")
    ref.assert_close(nsm.softmax(z, axis=None), ref.softmax(flat).reshape(z.shape), rtol, atol, "softmax axis=None")
    ref.assert_close(nsm.log_softmax(z, axis=None), ref.log_softmax(flat).reshape(z.shape), *_tol(dtype, "log"),
                     "log_softmax axis=None")
    assert float(np.sum(nsm.softmax(z, axis=None), dtype=np.float64)) == pytest.approx(1.0, rel=1e-5)
    assert nsm.softmax(np.float64(3.0), axis=None) == 1.0  # a 0-d array, as scipy
    g = rng.standard_normal(z.shape).astype(dtype)
    o = nsm.softmax(z, axis=None)
    want = nsm.softmax_backward(g.reshape(1, -1), o.reshape(1, -1)).reshape(z.shape)
    np.testing.assert_array_equal(nsm.softmax_backward(g, o, axis=None), want)

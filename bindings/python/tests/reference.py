"""Independent float64 references, written from the formulas in docs/derivation.md and the header with
plain numpy (no call into nativesoftmax), and the tolerance checks shared by the test files.

Source of the formulas: docs/derivation.md.
"""

import numpy as np


def log_softmax(z):
    """z − m − log Σ exp(z − m) along the last axis, in float64. Rows that are all −inf, or hold
    +inf or NaN, come out NaN (IEEE arithmetic on the formula, as the header says)."""
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(z, axis=-1, keepdims=True) if z.shape[-1] else np.zeros(z.shape[:-1] + (1,))
        s = z - m
        return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def softmax(z):
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(z, axis=-1, keepdims=True)
        e = np.exp(z - m)
        return e / np.sum(e, axis=-1, keepdims=True)


def softmax_backward(g, o):
    g = np.asarray(g, dtype=np.float64)
    o = np.asarray(o, dtype=np.float64)
    return o * (g - np.sum(g * o, axis=-1, keepdims=True))


def log_softmax_backward(g, lo):
    g = np.asarray(g, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    return g - np.exp(lo) * np.sum(g, axis=-1, keepdims=True)


def jacobian(z):
    o = softmax(z)
    return np.diag(o) - np.outer(o, o)


def _targets_hard(t, cols, weight, ignore_index, eps):
    """The weighted, smoothed target matrix Y (rows × cols), the kept-row mask and the mean's
    divisor Σ w[t] over kept rows."""
    t = np.asarray(t, dtype=np.int64)
    w = np.ones(cols) if weight is None else np.asarray(weight, dtype=np.float64)
    keep = t != ignore_index
    tt = np.where(keep, t, 0)
    wt = w[tt] * keep
    onehot = np.zeros((t.shape[0], cols))
    onehot[np.arange(t.shape[0]), tt] = 1.0
    y = (1.0 - eps) * wt[:, None] * onehot + (eps / cols) * w[None, :] * keep[:, None]
    return y, keep, float(np.sum(wt))


def _targets_soft(p, cols, weight, eps):
    p = np.asarray(p, dtype=np.float64)
    w = np.ones(cols) if weight is None else np.asarray(weight, dtype=np.float64)
    y = ((1.0 - eps) * p + eps / cols) * w[None, :]
    return y, np.ones(p.shape[0], dtype=bool), float(p.shape[0])


def cross_entropy(z, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, grad_scale=1.0, soft=None):
    """Float64 reference of the header's formulas.

    Returns (loss, grad, info): loss (float or [N] array), grad [N, C], and info with the row
    losses, the gradient scale s and `cond`: Σ|row losses| / |divisor| for mean (Σ|row losses|
    for sum), the magnitude the reduced loss's rounding error scales with.
    """
    z = np.asarray(z, dtype=np.float64)
    rows, cols = z.shape
    if soft is None:
        soft = np.asarray(target).dtype.kind == "f"
    if soft:
        y, keep, div = _targets_soft(target, cols, weight, label_smoothing)
    else:
        y, keep, div = _targets_hard(target, cols, weight, ignore_index, label_smoothing)
    lp = log_softmax(z)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # terms with a zero target contribute 0 (xlogy), the header's soft-target convention;
        # for hard labels a zero target only ever meets finite or the target's own log-prob.
        terms = np.where(y != 0, -y * lp, 0.0)
        row_loss = np.where(keep, np.sum(terms, axis=1), 0.0)
        if reduction == "none":
            loss, s, cond = row_loss, grad_scale, None
        elif reduction == "sum":
            loss, s, cond = float(np.sum(row_loss)), grad_scale, float(np.sum(np.abs(row_loss)))
        else:
            loss = float(np.sum(row_loss)) / div if div != 0 else float("nan")
            s = grad_scale / div if div != 0 else float("inf")
            cond = float(np.sum(np.abs(row_loss))) / abs(div) if div != 0 else float("nan")
        o = np.exp(lp)
        grad = s * (o * np.sum(y, axis=1, keepdims=True) - y)
        grad = np.where(keep[:, None], grad, 0.0)
    return loss, grad, {"row_loss": row_loss, "s": s, "cond": cond, "y": y}


def assert_close(actual, expected, rtol, atol, what):
    """|a − e| <= atol + rtol·|e| elementwise; NaN must meet NaN and ±inf the same ±inf.
    `what` names the case (op, dtype, shape, seed) for the failure message."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, "%s: shape %s, expected %s" % (what, a.shape, e.shape)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), "%s: NaN at %s, expected NaN at %s" % (
        what, np.argwhere(nan_a)[:5].tolist(), np.argwhere(nan_e)[:5].tolist())
    inf_e = np.isinf(e)
    assert np.array_equal(a[inf_e], e[inf_e]), "%s: expected infinities %s, got %s" % (
        what, e[inf_e][:5], a[inf_e][:5])
    fin = ~nan_e & ~inf_e
    err = np.abs(a[fin] - e[fin])
    bound = (np.broadcast_to(atol, e.shape)[fin]
             + np.broadcast_to(rtol, e.shape)[fin] * np.abs(e[fin]))
    bad = ~(err <= bound)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        idx = np.argwhere(fin)[i].tolist()
        raise AssertionError("%s: %d of %d elements out of tolerance; first at %s: got %.17g, "
                             "expected %.17g (|err| %.3g > bound %.3g)"
                             % (what, int(bad.sum()), err.size, idx, a[fin][i], e[fin][i],
                                err[i], bound[i]))

"""Every gradient the library returns against central finite differences of the library's own
forward values, in float64: |analytic − fd| <= 1e-7·(1 + |fd|).

h = 1e-5: the truncation error (h²·f'''/6 ~ 1e-11) and the rounding error (a few ulp of |f| / h
~ 1e-10 with |f| < 10) both stay well below 1e-7.
"""

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref

H = 1e-5
TOL = 1e-7


def _fd(f, z):
    """Central differences of the scalar function f at every element of z (float64)."""
    z = np.array(z, dtype=np.float64)
    grad = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        keep = z[idx]
        z[idx] = keep + H
        up = f(z)
        z[idx] = keep - H
        down = f(z)
        z[idx] = keep
        grad[idx] = (up - down) / (2 * H)
    return grad


def _assert_fd(analytic, fd, what):
    ref.assert_close(analytic, fd, TOL, TOL, what)


SHAPES = [(1, 1), (1, 4), (3, 2), (4, 7), (6, 5), (2, 17)]


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_gradient_matches_finite_differences(soft, reduction):
    seed = 100 + 10 * soft + ["none", "sum", "mean"].index(reduction)
    rng = np.random.default_rng(seed)
    n = 0
    for rows, cols in SHAPES:
        for weight in (None, "positive", "mixed-sign"):
            for eps in (0.0, 0.25, 1.0):
                z = rng.uniform(-4, 4, size=(rows, cols))
                w = None
                if weight == "positive":
                    w = rng.uniform(0.5, 2.0, size=cols)
                elif weight == "mixed-sign":
                    w = rng.uniform(-1.0, 2.0, size=cols)
                ignore_index = -100
                if soft:
                    # unnormalised on purpose: the gradient must be o·Σy − y, not o − y
                    t = rng.uniform(0.0, 1.0, size=(rows, cols))
                else:
                    t = rng.integers(0, cols, size=rows)
                    if rows > 2:
                        ignore_index = int(t[0])  # an in-range ignore_index that hits row 0
                gs = float(rng.choice([1.0, -1.3, 0.4]))
                kw = dict(weight=w, ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=eps)
                what = ("cross_entropy %s reduction=%s rows=%d cols=%d weight=%s eps=%g "
                        "ignore_index=%d grad_scale=%g seed=%d"
                        % ("soft" if soft else "hard", reduction, rows, cols, weight, eps,
                           ignore_index, gs, seed))
                if reduction == "mean" and not soft and abs(ref.cross_entropy(
                        z, t, weight=w, ignore_index=ignore_index)[2]["s"]) > 1e3:
                    continue  # Σ weight[t] near 0: the mean is ill-conditioned, not a test of us
                _, grad = nsm.cross_entropy(z, t, return_grad=True, grad_scale=gs, **kw)
                # the gradient of grad_scale · (loss, or Σ of the row losses for "none")
                fd = _fd(lambda x: gs * float(np.sum(nsm.cross_entropy(x, t, **kw))), z)
                _assert_fd(grad, fd, what)
                n += 1
    assert n >= 40


def test_softmax_backward_is_the_vjp_of_softmax():
    seed = 200
    rng = np.random.default_rng(seed)
    for rows, cols in SHAPES:
        z = rng.uniform(-5, 5, size=(rows, cols))
        g = rng.standard_normal((rows, cols))
        analytic = nsm.softmax_backward(g, nsm.softmax(z))
        fd = _fd(lambda x: float(np.sum(g * nsm.softmax(x))), z)
        _assert_fd(analytic, fd, "softmax_backward rows=%d cols=%d seed=%d" % (rows, cols, seed))


def test_log_softmax_backward_is_the_vjp_of_log_softmax():
    seed = 201
    rng = np.random.default_rng(seed)
    for rows, cols in SHAPES:
        z = rng.uniform(-5, 5, size=(rows, cols))
        g = rng.standard_normal((rows, cols))
        analytic = nsm.log_softmax_backward(g, nsm.log_softmax(z))
        fd = _fd(lambda x: float(np.sum(g * nsm.log_softmax(x))), z)
        _assert_fd(analytic, fd,
                   "log_softmax_backward rows=%d cols=%d seed=%d" % (rows, cols, seed))


def test_backward_along_another_axis():
    seed = 202
    rng = np.random.default_rng(seed)
    z = rng.uniform(-3, 3, size=(3, 4, 2))
    g = rng.standard_normal(z.shape)
    analytic = nsm.softmax_backward(g, nsm.softmax(z, axis=1), axis=1)
    fd = _fd(lambda x: float(np.sum(g * nsm.softmax(x, axis=1))), z)
    _assert_fd(analytic, fd, "softmax_backward axis=1 shape=(3,4,2) seed=%d" % seed)
    analytic = nsm.log_softmax_backward(g, nsm.log_softmax(z, axis=0), axis=0)
    fd = _fd(lambda x: float(np.sum(g * nsm.log_softmax(x, axis=0))), z)
    _assert_fd(analytic, fd, "log_softmax_backward axis=0 shape=(3,4,2) seed=%d" % seed)


def test_jacobian_matches_finite_differences():
    seed = 203
    rng = np.random.default_rng(seed)
    for cols in (1, 2, 5, 9, 16, 17):
        z = rng.uniform(-5, 5, size=cols)
        jac = nsm.softmax_jacobian(z)
        fd = np.empty((cols, cols))
        for j in range(cols):  # column j: ∂o/∂z_j
            step = H * np.eye(cols)[j]
            fd[:, j] = (nsm.softmax(z + step) - nsm.softmax(z - step)) / (2 * H)
        _assert_fd(jac, fd, "softmax_jacobian cols=%d seed=%d" % (cols, seed))
        # and it is the matrix the backward pass multiplies by: gᵀJ = softmax_backward(g, o)
        g = rng.standard_normal(cols)
        ref.assert_close(g @ jac, nsm.softmax_backward(g, nsm.softmax(z)), 1e-12, 1e-12,
                         "gᵀJ vs softmax_backward cols=%d seed=%d" % (cols, seed))

"""``python -m nativesoftmax``: what is installed, and whether it computes the right numbers.

Prints the package version, the library file, its version, the instruction-set path and the
thread count, then runs every operation in
float32 and float64 against a float64 numpy reference. Exits with status 0 when every result is
within tolerance, 1 when the library cannot be loaded or a result is wrong.
"""

import sys

import numpy as np

import nativesoftmax as nsm

# |got − want| <= ATOL + RTOL·|want| per dtype: the header's float32 bounds with a margin for the
# gradients' sums, and float64 far below any real error.
TOLERANCES = {np.float32: (2e-6, 2e-5), np.float64: (1e-12, 1e-12)}


def _reference(z, g, t, p):
    """Every result of the self-check, from the formulas, in float64 numpy."""
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    o = e / s
    lo = z - m - np.log(s)
    rows = np.arange(z.shape[0])
    y = np.zeros_like(z)
    y[rows, t] = 1.0
    return {
        "softmax": o,
        "log_softmax": lo,
        "softmax_backward": o * (g - (g * o).sum(axis=1, keepdims=True)),
        "log_softmax_backward": g - o * g.sum(axis=1, keepdims=True),
        "softmax_jacobian": np.diag(o[0]) - np.outer(o[0], o[0]),
        "cross_entropy loss": -lo[rows, t].mean(),
        "cross_entropy grad": (o - y) / z.shape[0],
        "cross_entropy soft loss": -(p * lo).sum(axis=1),
        "cross_entropy soft grad": o * p.sum(axis=1, keepdims=True) - p,
    }


def self_check():
    """Every operation in float32 and float64 against _reference; returns the problems found
    (an empty list when all agree)."""
    rng = np.random.default_rng(2024)
    z = rng.uniform(-20, 20, size=(9, 37))
    g = rng.standard_normal(z.shape)
    t = rng.integers(0, z.shape[1], size=z.shape[0])
    p = rng.dirichlet(np.ones(z.shape[1]), size=z.shape[0])
    problems = []
    for dtype, (atol, rtol) in TOLERANCES.items():
        zd, gd, pd = z.astype(dtype), g.astype(dtype), p.astype(dtype)
        want = _reference(zd.astype(np.float64), gd.astype(np.float64), t,
                          pd.astype(np.float64))
        loss, grad = nsm.cross_entropy(zd, t, return_grad=True)
        soft_loss, soft_grad = nsm.cross_entropy(zd, pd, reduction="none", return_grad=True)
        got = {
            "softmax": nsm.softmax(zd),
            "log_softmax": nsm.log_softmax(zd),
            "softmax_backward": nsm.softmax_backward(gd, want["softmax"].astype(dtype)),
            "log_softmax_backward": nsm.log_softmax_backward(gd,
                                                             want["log_softmax"].astype(dtype)),
            "softmax_jacobian": nsm.softmax_jacobian(zd[0]),
            "cross_entropy loss": loss,
            "cross_entropy grad": grad,
            "cross_entropy soft loss": soft_loss,
            "cross_entropy soft grad": soft_grad,
        }
        for name, value in got.items():
            value = np.asarray(value)
            expected = want[name]
            if value.dtype != dtype or value.shape != np.shape(expected):
                problems.append("%s %s: got dtype %s shape %s" % (
                    name, np.dtype(dtype).name, value.dtype, value.shape))
                continue
            error = np.abs(value.astype(np.float64) - expected)
            bound = atol + rtol * np.abs(expected)
            if not np.all(error <= bound):  # NaN fails too
                worst = np.unravel_index(np.nanargmax(error - bound), error.shape) \
                    if error.ndim else ()
                problems.append("%s %s: off by %.3g at %s (allowed %.3g)" % (
                    name, np.dtype(dtype).name, error[worst], worst, bound[worst]))
    return problems


def main():
    print("nativesoftmax %s" % nsm.__version__)
    try:
        isa = nsm.isa()  # loads the library
        print("library: %s" % nsm.library_path())
        print("library version: %s" % nsm.library_version())
        print("isa: %s" % isa)
        print("threads: %d" % nsm.get_num_threads())
    except nsm.LibraryLoadError as exc:
        print("library: not loaded: %s" % exc, file=sys.stderr)
        return 1
    problems = self_check()
    if problems:
        for problem in problems:
            print("  " + problem)
        print("self-check: FAILED (%d problems)" % len(problems))
        return 1
    print("self-check: ok (every operation, float32 and float64, against a float64 reference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

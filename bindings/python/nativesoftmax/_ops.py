"""The public operations: numpy arrays in, numpy arrays out, one ctypes call each.

Source of the mathematics: shared/seed/softmax-cross-entropy-gradient.md ("Gradient of the Softmax
Function with Cross-Entropy Loss"), as implemented by the C ABI in native/include/nativesoftmax.h.
"""

import ctypes
import operator

import numpy as np

from . import _native
from ._native import (
    NSM_ERR_INVALID_ARGUMENT,
    NSM_ERR_INVALID_LEADING_DIM,
    NSM_ERR_INVALID_SHAPE,
    NSM_ERR_LABEL_OUT_OF_RANGE,
    NativeSoftmaxError,
    NativeSoftmaxTypeError,
)

try:  # numpy >= 1.25 moved it; older numpy has it at the top level
    from numpy.exceptions import AxisError as _AxisError
except ImportError:  # pragma: no cover - depends on the numpy version
    _AxisError = np.AxisError

_INT64_MIN = -(2 ** 63)
_INT64_MAX = 2 ** 63 - 1

_REDUCTIONS = {
    "none": _native.NSM_REDUCTION_NONE,
    "sum": _native.NSM_REDUCTION_SUM,
    "mean": _native.NSM_REDUCTION_MEAN,
}

_PTR = {
    np.dtype(np.float32): ctypes.POINTER(ctypes.c_float),
    np.dtype(np.float64): ctypes.POINTER(ctypes.c_double),
    np.dtype(np.int64): ctypes.POINTER(ctypes.c_int64),
}
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


# ------------------------------------------------------------------------------------------------
# Helpers: dtype rule, row layout, pointers
# ------------------------------------------------------------------------------------------------

def _binding_error(status, message):
    return NativeSoftmaxError(status, "binding: " + message)


def _working_dtype(*dtypes):
    """float32 and float64 stay as they are (mixed → float64, numpy's promotion; either byte
    order, converted to native); float16 is computed in float32; integers, bool and long double
    in float64 (as scipy.special.softmax does for integers); anything else (complex, object,
    strings, datetimes) raises NativeSoftmaxTypeError."""
    try:
        dt = np.result_type(*dtypes)
    except TypeError as exc:
        raise NativeSoftmaxTypeError(NSM_ERR_INVALID_ARGUMENT,
                                     "binding: no common dtype for %s: %s" % (dtypes, exc)) from exc
    if dt.kind == "f":
        dt = dt.newbyteorder("=")
        if dt == np.float32 or dt == np.float16:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    raise NativeSoftmaxTypeError(
        NSM_ERR_INVALID_ARGUMENT,
        "binding: unsupported dtype %s (NativeSoftmax computes in float32 or float64; "
        "integers and bool are converted to float64, float16 to float32)" % dt)


def _normalize_axis(axis, ndim):
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise _AxisError(axis, ndim)
    return axis % ndim


def _row_stride(a):
    """The leading dimension (in elements) if ``a`` (last axis = classes) can be passed to the
    library as it is: an aligned [rows × cols] matrix with unit column stride whose rows start at
    equal, positive distances >= cols. None when a copy is needed."""
    item = a.itemsize
    cols = a.shape[-1]
    if not a.flags.aligned:
        return None
    if cols > 1 and a.strides[-1] != item:
        return None
    rows = 1
    for n in a.shape[:-1]:
        rows *= n
    if rows == 0:
        return max(cols, 1)
    # The leading axes (size-1 axes do not matter) must collapse into one with a single stride.
    lead = [(n, s) for n, s in zip(a.shape[:-1], a.strides[:-1]) if n != 1]
    if not lead:
        return max(cols, 1)
    expected = lead[-1][1]
    for n, s in reversed(lead):
        if s != expected:
            return None
        expected = s * n
    stride = lead[-1][1]
    if stride <= 0 or stride % item != 0 or stride // item < cols:
        return None
    return stride // item


def _as_rows(a, dtype):
    """(matrix, rows, cols, ld): ``a`` (last axis = classes) as a [rows × cols] matrix of
    ``dtype``, with no copy when the layout allows it, else with exactly one contiguous copy."""
    cols = a.shape[-1]
    rows = a.size // cols if cols else int(np.prod(a.shape[:-1], dtype=np.int64))
    ld = _row_stride(a) if a.dtype == dtype else None
    if ld is None:
        a = np.ascontiguousarray(a, dtype=dtype)
        ld = max(cols, 1)
    return a, rows, cols, ld


def _ptr(a):
    """A typed pointer to ``a``'s first element; NULL for an array with no data, which the header
    accepts when there are no rows (an empty class axis is the library's invalid shape)."""
    return a.ctypes.data_as(_PTR[a.dtype])


def _to_last(a, axis):
    """``a`` with ``axis`` moved last (no call, and no view, when it already is)."""
    return a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)


def _from_last(a, axis):
    """Undoes :func:`_to_last`."""
    return a if axis == a.ndim - 1 else np.moveaxis(a, -1, axis)


def _fn(op, dtype):
    return getattr(_native.lib(), "nsm_%s_%s" % (op, _SUFFIX[dtype]))


# ------------------------------------------------------------------------------------------------
# Forward
# ------------------------------------------------------------------------------------------------

def _forward(op, x, axis):
    x = np.asarray(x)
    if axis is None:  # over the whole array, as scipy.special.softmax(x, axis=None)
        return _forward(op, x.reshape(1, -1), -1).reshape(x.shape)
    dtype = _working_dtype(x.dtype)
    axis = _normalize_axis(axis, x.ndim)
    xm = _to_last(x, axis)
    mat, rows, cols, ld = _as_rows(xm, dtype)
    out = np.empty(xm.shape, dtype)
    _native.check(_fn(op, dtype)(rows, cols, _ptr(mat), ld, _ptr(out), max(cols, 1)))
    return _from_last(out, axis)


def softmax(x, axis=-1):
    """Softmax along ``axis``: ``o_j = exp(z_j − m) / Σ_k exp(z_k − m)``, ``m = max_k z_k``.

    Args:
        x: array of any rank >= 1 (anything ``numpy.asarray`` accepts). float32 and float64 are
            computed in their own precision (either byte order); float16 in float32; integers,
            bool and long double in float64 (integers as ``scipy.special.softmax``).
        axis: the axis along which the probabilities sum to 1: default the last (PyTorch's
            usual ``dim=-1``); ``None`` normalises over the whole array, as
            ``scipy.special.softmax``'s default does (this function's default differs from scipy's).

    Returns:
        ndarray of ``x``'s shape and the working dtype above. ``x`` is not modified.

    Layout: when ``axis`` is the last axis and the rows are evenly strided with unit column
    stride (a C-contiguous array, or e.g. a 2-D column slice ``a[:, :k]``), ``x`` is passed to the
    library without a copy; otherwise it is copied once into a contiguous buffer.

    Numerics: each row is shifted by its maximum before exponentiation, so no finite logit
    overflows (up to ±3.4e38 in float32, ±1.8e308 in float64). exp is the library's vectorised
    approximation (measured maximum error below 1.25 ulp). float32 results are within 1e-6
    relative of the exact value (z − m is computed exactly before exp, so this holds for the
    smallest probabilities too); results below the smallest normal number are stored as 0.
    −inf in a row with a finite maximum gives probability 0; a row that is all −inf, or contains
    +inf or NaN, gives NaN for the whole row (as PyTorch).

    Raises:
        NativeSoftmaxError: the softmax axis has length 0 (NSM_ERR_INVALID_SHAPE), or any other
            status the library returns, with its nsm_last_error() message.
        NativeSoftmaxTypeError: an unsupported dtype (complex, object, ...); also a TypeError.
        numpy AxisError: ``axis`` is out of range (including any axis of a 0-d array).

    Source: shared/seed/softmax-cross-entropy-gradient.md (definition of o_j); DESIGN.md §1.
    """
    return _forward("softmax", x, axis)


def log_softmax(x, axis=-1):
    """Log-softmax along ``axis``: ``z_j − m − log Σ_k exp(z_k − m)``, ``m = max_k z_k``.

    Args and layout: as ``softmax``.

    Returns:
        ndarray of ``x``'s shape and working dtype (float32 or float64).

    Numerics: computed directly, never as ``log(softmax(x))``, so it does not underflow to −inf
    for very unlikely classes. float32 results are within 2e-6·(1 + |exact|). −inf logits in a
    row with a finite maximum give −inf; all-−inf rows and rows with +inf or NaN give NaN rows.
    (A finite result beyond the dtype's range, e.g. −1e38 − 1e38 in float32, is −inf.)

    Raises: as ``softmax``.

    Source: shared/seed/softmax-cross-entropy-gradient.md (log o_j, the term of the loss E);
    DESIGN.md §1.
    """
    return _forward("log_softmax", x, axis)


# ------------------------------------------------------------------------------------------------
# Backward
# ------------------------------------------------------------------------------------------------

def _backward(op, grad_output, output, axis):
    g = np.asarray(grad_output)
    o = np.asarray(output)
    dtype = _working_dtype(g.dtype, o.dtype)
    if g.shape != o.shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "grad_output has shape %s but output has shape %s; they must be equal"
                             % (g.shape, o.shape))
    if axis is None:  # over the whole array, as the forward pass with axis=None
        return _backward(op, g.reshape(1, -1), o.reshape(1, -1), -1).reshape(g.shape)
    axis = _normalize_axis(axis, g.ndim)
    gm = _to_last(g, axis)
    om = _to_last(o, axis)
    gmat, rows, cols, ldg = _as_rows(gm, dtype)
    omat, _, _, ldo = _as_rows(om, dtype)
    out = np.empty(gm.shape, dtype)
    _native.check(_fn(op, dtype)(rows, cols, _ptr(gmat), ldg, _ptr(omat), ldo,
                                 _ptr(out), max(cols, 1)))
    return _from_last(out, axis)


def softmax_backward(grad_output, output, axis=-1):
    """Vector–Jacobian product of softmax: ``dz = o ⊙ (g − ⟨g, o⟩)`` along ``axis``.

    This is the gradient of a scalar L with respect to the logits z, given ``g = ∂L/∂o`` and the
    forward output ``o = softmax(z, axis)`` (PyTorch's ``_softmax_backward_data``): the product
    of g with the Jacobian ``J = diag(o) − o oᵀ``.

    Args:
        grad_output: g, the upstream gradient, same shape as ``output``.
        output: o, the probabilities returned by ``softmax(z, axis)``.
        axis: the softmax axis used in the forward pass (default: the last; None: the whole array).
        Both are converted to a common working dtype as in ``softmax`` (float32 with float64 →
        float64); each is passed without a copy when its layout allows.

    Returns:
        ndarray of the common shape and working dtype.

    Numerics: ⟨g, o⟩ is accumulated in the working precision with several partial sums. NaN or
    infinite inputs propagate by IEEE arithmetic.

    Raises:
        NativeSoftmaxError: shapes differ (NSM_ERR_INVALID_SHAPE, raised by the binding), the
            axis has length 0, or any library status, with its message.
        NativeSoftmaxTypeError: an unsupported dtype. numpy AxisError: ``axis`` out of range.

    Source: shared/seed/softmax-cross-entropy-gradient.md, the partial derivatives
    ∂o_j/∂z_i = −o_j·o_i and ∂o_i/∂z_i = o_i − o_i²; DESIGN.md §1.
    """
    return _backward("softmax_backward", grad_output, output, axis)


def log_softmax_backward(grad_output, output, axis=-1):
    """Vector–Jacobian product of log-softmax: ``dz = g − exp(output) · Σ_j g_j`` along ``axis``.

    Given ``g = ∂L/∂(log o)`` and the forward output (the log-probabilities returned by
    ``log_softmax(z, axis)``, as PyTorch's ``_log_softmax_backward_data``), returns ∂L/∂z.

    Args, returns, raises: as ``softmax_backward`` (``output`` holds log-probabilities).

    Numerics: exp(output) uses the library's vectorised exp, whose measured maximum error is
    below 1.25 ulp (0.94 ulp float32, 0.88 ulp float64 where the CPU has FMA); Σ g is accumulated
    in the working precision. A −inf log-probability contributes 0·Σg = 0 (exp(−inf) = 0).

    Source: shared/seed/softmax-cross-entropy-gradient.md (∂ log o_j / ∂z_i = δ_ij − o_i);
    DESIGN.md §1.
    """
    return _backward("log_softmax_backward", grad_output, output, axis)


def softmax_jacobian(logits):
    """The softmax Jacobian of one row: ``J[i, j] = ∂o_i/∂z_j = o_i·(δ_ij − o_j)``.

    Args:
        logits: 1-D array of length C >= 1 (dtype rule as ``softmax``).

    Returns:
        [C × C] ndarray, ``diag(o) − o oᵀ`` with ``o = softmax(logits)``; symmetric, rows sum to 0.

    Numerics: o as in ``softmax`` (max-shifted). Meant for verification and small C: the result
    has C² elements.

    Raises:
        NativeSoftmaxError: ``logits`` is not 1-D (NSM_ERR_INVALID_SHAPE, raised by the binding)
            or is empty, or any library status, with its message.
        NativeSoftmaxTypeError: an unsupported dtype.

    Source: shared/seed/softmax-cross-entropy-gradient.md (∂o_i/∂z_i = o_i − o_i²,
    ∂o_j/∂z_i = −o_j·o_i).
    """
    z = np.asarray(logits)
    dtype = _working_dtype(z.dtype)
    if z.ndim != 1:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "softmax_jacobian takes one 1-D row of logits, got shape %s"
                             % (z.shape,))
    z = np.ascontiguousarray(z, dtype=dtype)
    cols = z.shape[0]
    jac = np.empty((cols, cols), dtype)
    _native.check(_fn("softmax_jacobian", dtype)(cols, _ptr(z), _ptr(jac), max(cols, 1)))
    return jac


# ------------------------------------------------------------------------------------------------
# Cross-entropy
# ------------------------------------------------------------------------------------------------

def _weight_in(w, dtype):
    """The weights as a contiguous array of the working dtype. A weight that is finite in its own
    dtype but overflows the working dtype (1e300 with float32 logits) is refused here, naming the
    value the caller passed: the library would only see the inf the cast made of it. Weights
    that are already NaN or ±inf are left to the library, which rejects them with its message."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(w, dtype=dtype)
    if w.dtype.kind in "fc":
        lost = np.isfinite(w) & ~np.isfinite(out)
        if np.any(lost):
            i = int(np.flatnonzero(lost)[0])
            raise _binding_error(
                NSM_ERR_INVALID_ARGUMENT,
                "weight[%d] = %s (%s) does not fit the working dtype %s (it would become %s); "
                "weights must be finite in the dtype the loss is computed in"
                % (i, w[i], w.dtype.name, dtype.name, out[i]))
    return out


def _grad_out_in(g, logits, shape, dtype):
    """(matrix, ld) for a caller's gradient buffer, checked against the rules in cross_entropy's
    docstring: an ndarray of the logits' shape and the working dtype, writeable, rows evenly
    strided with unit column stride (the layout the binding passes without a copy)."""
    if not isinstance(g, np.ndarray):
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "grad_out must be a numpy ndarray (it is written in place), got %s"
                             % type(g).__name__)
    if g.shape != shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "grad_out must have the logits' shape %s, got %s" % (shape, g.shape))
    if g.dtype != dtype:
        if isinstance(logits, np.ndarray) and np.may_share_memory(g, logits):
            raise _binding_error(
                NSM_ERR_INVALID_ARGUMENT,
                "grad_out is the logits array, but the logits (dtype %s) are computed in %s, so "
                "they are read from a converted copy and the gradient cannot be written over "
                "them in place; pass logits of dtype %s, or a separate grad_out of that dtype"
                % (g.dtype, dtype.name, dtype.name))
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "grad_out has dtype %s, but these logits are computed in %s; "
                             "grad_out must have the working dtype" % (g.dtype, dtype.name))
    if not g.flags.writeable:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "grad_out is read-only")
    g2 = g[np.newaxis, :] if g.ndim == 1 else g
    # no rows: nothing is written, whatever strides numpy gave the empty array
    ld = _row_stride(g2) if g2.size else max(g2.shape[-1], 1)
    if ld is None:
        raise _binding_error(NSM_ERR_INVALID_LEADING_DIM,
                             "grad_out (strides %s) must be aligned, with unit column stride and "
                             "rows evenly spaced at a positive distance >= the number of classes "
                             "(e.g. C-contiguous, or a column slice a[:, :C] of a wider array)"
                             % (g.strides,))
    return g2, ld


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, *, return_grad=False, grad_scale=1.0, grad_out=None):
    """Fused softmax cross-entropy (``torch.nn.functional.cross_entropy``), optionally with the
    gradient with respect to the logits.

    Args:
        logits: [N, C] (or [C], one row, as PyTorch); the class axis is the last. float32 and
            float64 are computed in their own precision (integers → float64, float16 → float32).
            Passed without a copy when rows are evenly strided with unit column stride.
        target: either
            * integer class indices (any integer dtype, converted to int64): [N] for [N, C]
              logits, a scalar for [C] logits. Each must be in [0, C) or equal ``ignore_index``;
              or
            * floating class probabilities ("soft targets") of the logits' shape, converted to
              the logits' working dtype. They need not sum to 1 (the gradient stays exact) and
              are not checked; a NaN target gives a NaN loss.
        weight: None or [C] per-class weights (converted to the working dtype). Any finite value
            is accepted, negative included (as PyTorch); NaN or ±inf raises, and so does a value
            that is finite in its own dtype but not in the working dtype (1e300 for float32).
        ignore_index: hard labels equal to it get loss 0 and a zero gradient row and do not count
            in the mean's divisor (default −100). Not used with soft targets.
        reduction: "none" (one loss per row), "sum", or "mean" (default). For hard labels the
            mean divides by Σ weight[target] over the rows that are not ignored (their count
            without weights), PyTorch's normalisation; NaN when that divisor is 0 (e.g. every row
            ignored, or N = 0). For soft targets the mean divides by N.
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·y + ε/C.
        return_grad: also return ∂(grad_scale · loss)/∂logits.
        grad_scale: the upstream gradient of the returned loss (PyTorch's ``grad_output`` for a
            scalar loss, or the same value for every row with reduction "none"); must be finite.
        grad_out: None, or an ndarray to write the gradient into (implies ``return_grad=True``;
            it is returned as the gradient). It must have the logits' shape and the working
            dtype, be writeable, and have the layout the binding passes without a copy: unit
            column stride and rows evenly spaced at a positive distance >= C (C-contiguous, or a
            column slice ``a[:, :C]`` of a wider array; elements between the rows are not
            touched). It may be the logits array itself (the logits are then overwritten by their
            gradient, exactly in place, with the same result bit for bit), and with soft targets
            it may be the target array itself. In place over the logits needs logits that are
            used without conversion: logits whose dtype differs from the working dtype (integers,
            float16, non-native byte order) are read from a copy, and grad_out=logits is then
            refused. Any partial overlap of grad_out with an input (e.g. the logits shifted by a
            column) is refused by the library with NSM_ERR_OVERLAP; nothing is written then.

    Returns:
        loss, or (loss, grad) with ``return_grad=True`` or ``grad_out``. ``loss`` is a numpy scalar of the working
        dtype for "sum" and "mean" (and for [C] logits), otherwise an [N] array. ``grad`` has the
        logits' shape and the working dtype: ``grad[r, i] = s·(o_i·Σ_j y_j − y_i)`` with y the
        weighted, smoothed target of row r and ``s = grad_scale`` ("none", "sum") or
        ``grad_scale / divisor`` ("mean").

    Numerics: the row loss is ``lse_r − z[r, t]`` with ``lse_r = m_r + log Σ_k exp(z[r, k] − m_r)``
    (max-shifted, so no finite logit overflows). float32 row losses are within 2e-6·(1 + |exact|)
    with unit weights (with weights, within 2e-6·Σ_j |y_j|·(1 + |lse − z_j|)), and gradients
    within 1e-6·|s|·Σ_j |y_j| absolute, y the weighted, smoothed target of the row; sum and mean
    are accumulated in float64 for both dtypes. Rows with all-−inf logits, +inf or NaN give a NaN
    loss and NaN gradient (as PyTorch), except rows that ask for nothing (below).

    Deliberate differences from PyTorch:
        * A row whose label equals ``ignore_index`` gets loss 0 and gradient 0 whatever its
          logits, even when they are all −inf, +inf or NaN (PyTorch gives a NaN gradient for an
          ignored all-−inf row).
        * With soft targets, a row whose weighted, smoothed targets are all zero (e.g. an
          all-zero target row with ``label_smoothing=0``) gets loss 0 and gradient 0 whatever
          its logits, NaN and infinities included.
        * With soft targets, a zero target on a −inf logit contributes 0 (as ``xlogy``), where
          PyTorch gives NaN.

    Raises:
        NativeSoftmaxError (a ValueError) with the library's status and message:
            NSM_ERR_LABEL_OUT_OF_RANGE for a label outside [0, C) that is not ignore_index;
            NSM_ERR_INVALID_ARGUMENT for label_smoothing outside [0, 1] or NaN, a non-finite
            weight or grad_scale; NSM_ERR_INVALID_SHAPE for C = 0; NSM_ERR_OVERLAP for a grad_out
            that partially overlaps an input. The binding itself raises NativeSoftmaxError
            (message prefixed "binding: ") for shapes that do not fit together (target, weight or
            grad_out of the wrong shape, logits not 1-D or 2-D), an unknown reduction, an
            ignore_index outside int64, a weight that is finite in its own dtype but overflows
            the working dtype (NSM_ERR_INVALID_ARGUMENT, e.g. 1e300 with float32 logits), a
            grad_out of the wrong dtype or read-only (NSM_ERR_INVALID_ARGUMENT) or of a layout
            that needs a copy (NSM_ERR_INVALID_LEADING_DIM).
        NativeSoftmaxTypeError (also a TypeError): unsupported dtypes (complex, bool targets...).

    Source: shared/seed/softmax-cross-entropy-gradient.md (∂E/∂z_i = o_i·Σ_j y*_j − y*_i, which is
    o_i − y*_i for targets that sum to 1); DESIGN.md §1; PyTorch's conventions for the options.
    """
    z = np.asarray(logits)
    t = np.asarray(target)
    dtype = _working_dtype(z.dtype)
    if z.ndim not in (1, 2):
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "logits must be [N, C] or [C], got shape %s" % (z.shape,))
    one_row = z.ndim == 1
    z2 = z[np.newaxis, :] if one_row else z
    rows, cols = z2.shape

    if t.size == 0 and t.dtype == np.float64 and t.shape == (rows,) and not one_row:
        t = t.astype(np.int64)  # an empty list: no labels, not probabilities
    if t.dtype.kind in "iu":
        soft = False
        want = () if one_row else (rows,)
        if t.shape != want:
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "class-index target must have shape %s for logits of shape %s, "
                                 "got %s" % (want, z.shape, t.shape))
        if t.dtype == np.uint64 and t.size and int(t.max()) > _INT64_MAX:
            raise _binding_error(NSM_ERR_LABEL_OUT_OF_RANGE,
                                 "label %d does not fit in int64" % int(t.max()))
        t2 = np.ascontiguousarray(t.reshape(rows), dtype=np.int64)
    elif t.dtype.kind == "f":
        soft = True
        if t.shape != z.shape:
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "probability target must have the logits' shape %s, got %s"
                                 % (z.shape, t.shape))
        t2, _, _, ld_t = _as_rows(t[np.newaxis, :] if one_row else t, dtype)
    else:
        raise NativeSoftmaxTypeError(
            NSM_ERR_INVALID_ARGUMENT,
            "binding: target must be integer class indices or floating probabilities, got dtype %s"
            % t.dtype)

    if weight is None:
        w = None
    else:
        w = np.asarray(weight)
        _working_dtype(w.dtype)  # rejects complex/object weights with a TypeError
        if w.shape != (cols,):
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "weight must have shape (%d,) (one per class), got %s"
                                 % (cols, w.shape))
        w = _weight_in(w, dtype)

    try:
        red = _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "reduction must be 'none', 'sum' or 'mean', got %r" % (reduction,))
    ignore_index = operator.index(ignore_index)
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "ignore_index %d does not fit in int64" % ignore_index)

    opts = _native.CrossEntropyOptions(
        struct_size=ctypes.sizeof(_native.CrossEntropyOptions),
        reduction=red,
        ignore_index=ignore_index,
        label_smoothing=float(label_smoothing),
        grad_scale=float(grad_scale),
    )
    zmat, _, _, ld_z = _as_rows(z2, dtype)
    loss = np.empty(rows if red == _native.NSM_REDUCTION_NONE else 1, dtype)
    if grad_out is not None:
        return_grad = True
        # When the logits were not copied and grad_out is the logits array, both pointers and
        # leading dimensions are equal: the header's exact in place. A partial overlap with an
        # input reaches the library, which answers NSM_ERR_OVERLAP.
        grad, ld_g = _grad_out_in(grad_out, logits, z.shape, dtype)
    elif return_grad:
        grad, ld_g = np.empty((rows, cols), dtype), max(cols, 1)
    else:
        grad, ld_g = None, max(cols, 1)
    grad_ptr = _ptr(grad) if grad is not None else None
    w_ptr = _ptr(w) if w is not None else None
    if soft:
        status = _fn("cross_entropy_soft", dtype)(rows, cols, _ptr(zmat), ld_z, _ptr(t2), ld_t,
                                                  w_ptr, ctypes.byref(opts), _ptr(loss),
                                                  grad_ptr, ld_g)
    else:
        status = _fn("cross_entropy", dtype)(rows, cols, _ptr(zmat), ld_z, _ptr(t2), w_ptr,
                                             ctypes.byref(opts), _ptr(loss), grad_ptr, ld_g)
    _native.check(status)

    if red != _native.NSM_REDUCTION_NONE or one_row:
        loss = loss[0]
    if grad_out is not None:
        return loss, grad_out
    if not return_grad:
        return loss
    return loss, grad.reshape(z.shape)


# ------------------------------------------------------------------------------------------------
# Library information
# ------------------------------------------------------------------------------------------------

def isa():
    """The instruction-set path the library uses: "avx512", "avx2", "sse4.2" or "neon" ("none"
    when no build of the library can run on this CPU). Chosen once by CPUID; the environment
    variable NATIVESOFTMAX_MAX_ISA caps it. Loads the library if needed (LibraryLoadError if it
    cannot be found or its version differs)."""
    return _native.text_of(_native.lib().nsm_isa)


def library_version():
    """The loaded library's version string, nsm_version_string() ("MAJOR.MINOR.PATCH"); equal to
    ``__version__`` whenever the library loads (a mismatch is refused at load time)."""
    return _native.text_of(_native.lib().nsm_version_string)


def library_path():
    """The path of the shared library that is (or will be) loaded: $NATIVESOFTMAX_LIBRARY, else
    <repo>/build/lib/libnativesoftmax.so relative to this package."""
    return str(_native.library_path())

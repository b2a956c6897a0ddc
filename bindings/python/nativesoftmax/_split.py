"""The vocabulary-split cross-entropy (docs/derivation.md §7, the header's
nsm_cross_entropy_partial_*, nsm_cross_entropy_merge and nsm_cross_entropy_finish_*).

Each process (or each block of columns) holds columns [first_col, first_col + cols) of [rows ×
vocab] logits. ``cross_entropy_partial`` gives each row's statistics over those columns as a
(rows, 7) float64 array (a torch tensor for tensor logits, so that torch.distributed can
all_gather it); ``cross_entropy_merge`` merges two such arrays (merge in a fixed order, e.g. rank
order, for the same bits everywhere); ``cross_entropy_finish`` gives the loss (the same on every
shard) and the shard's columns of the gradient from the merged statistics. The columns of the
statistics are STATS_FIELDS (``stats.view(STATS_DTYPE)`` names them).
"""
import operator

import numpy as np

from . import _native
from ._native import NSM_ERR_INVALID_ARGUMENT, NSM_ERR_INVALID_SHAPE
from ._ops import _REDUCTIONS, _address, _binding_error, _tensor_as_array, _torch_in, _weight_in

STATS_FIELDS = tuple(name for name, _ in _native.CrossEntropyStats._fields_)
STATS_DTYPE = np.dtype([(name, np.float64) for name in STATS_FIELDS])
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _call(name, *args):
    status = _native.functions()[name](*args)
    if status != _native.NSM_OK:
        _native.check(status)


def _logits_in(logits):
    z = np.asarray(logits)
    if z.ndim != 2:
        raise _binding_error(NSM_ERR_INVALID_SHAPE, "logits must be a [rows, cols] shard, got shape %s" % (z.shape,))
    if z.dtype not in _SUFFIX:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "the vocabulary-split cross-entropy computes in float32 or float64, got %s" % z.dtype)
    return _rows(z, "logits")


def _rows(a, name):
    """``a`` with unit column stride and evenly strided rows (a copy otherwise), and its leading
    dimension in elements."""
    item = a.dtype.itemsize
    if a.shape[1] > 1 and a.strides[1] != item or a.strides[0] % item or a.strides[0] < 0 or \
            (a.shape[0] > 1 and a.strides[0] < a.shape[1] * item):
        a = np.ascontiguousarray(a)
    ld = a.strides[0] // item if a.shape[0] > 1 else a.shape[1]
    return a, max(ld, a.shape[1])


def _direct(a):
    """True when the library can write ``a`` where it is: unit column stride and rows evenly
    strided forward, without overlapping each other."""
    item = a.dtype.itemsize
    return ((a.shape[1] <= 1 or a.strides[1] == item) and a.strides[0] % item == 0
            and (a.shape[0] <= 1 or a.strides[0] >= a.shape[1] * item))


def _leading_dimension(a):
    return max(a.strides[0] // a.dtype.itemsize if a.shape[0] > 1 else a.shape[1], a.shape[1])


def _column(value, name):
    """A column index or count as the C ABI's int64: an integer (not a float) within int64."""
    try:
        v = operator.index(value)
    except TypeError:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "%s must be an integer, got %r" % (name, value)) from None
    if not -2 ** 63 <= v < 2 ** 63:
        raise _binding_error(NSM_ERR_INVALID_SHAPE, "%s = %d is outside int64" % (name, v))
    return v


def _target_in(target, z, ld_z):
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        if t.shape != (z.shape[0],):
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "class-index target must have shape (%d,), got %s" % (z.shape[0], t.shape))
        return False, np.ascontiguousarray(t, dtype=np.int64), 0
    if t.shape != z.shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "soft target must have the shard's shape %s, got %s" % (z.shape, t.shape))
    t, ld = _rows(np.asarray(t, dtype=z.dtype), "target")
    return True, t, ld


def _stats_in(stats, rows, name):
    """A (rows, 7) float64 array (or structured STATS_DTYPE [rows], or a float64 tensor) as a
    contiguous (rows, 7) array sharing its memory where it can."""
    a = np.asarray(stats)
    if a.dtype == STATS_DTYPE:
        a = a.view(np.float64).reshape(-1, len(STATS_FIELDS))
    if a.dtype != np.float64 or a.shape != (rows, len(STATS_FIELDS)):
        raise _binding_error(NSM_ERR_INVALID_SHAPE, "%s must be a (%d, %d) float64 array, got %s %s"
                             % (name, rows, len(STATS_FIELDS), a.dtype, a.shape))
    return np.ascontiguousarray(a)


def _options(ignore_index, reduction, label_smoothing, grad_scale, grad_output_address=0):
    red = _REDUCTIONS.get(reduction)
    if red is None:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "reduction must be 'none', 'sum' or 'mean', got %r" % (reduction,))
    return _native.OPTIONS_FORMAT.pack(_native.OPTIONS_SIZE, red, int(ignore_index), float(label_smoothing),
                                       float(grad_scale), grad_output_address)


def _weight(weight, z):
    if weight is None:
        return None, 0
    w = _weight_in(np.asarray(weight), z.dtype)
    if w.shape != (z.shape[1],):
        raise _binding_error(NSM_ERR_INVALID_SHAPE, "weight must hold the shard's %d class weights, got shape %s"
                             % (z.shape[1], w.shape))
    return w, _address(w)


def cross_entropy_partial(logits, target, first_col, vocab, weight=None, ignore_index=-100, label_smoothing=0.0):
    """Each row's statistics over one shard: logits [rows, cols] are columns [first_col, first_col
    + cols) of a vocabulary of ``vocab`` classes; target holds class indices of the whole vocabulary
    ([rows] integers) or the shard's soft targets ([rows, cols] floats); weight the shard's class
    weights. Returns a (rows, 7) float64 array (a tensor when logits is a torch tensor)."""
    torch = _torch_in((logits, target, weight))
    if torch is not None:
        logits, target, weight = (_tensor_as_array(torch, a, n) for a, n in
                                  ((logits, "logits"), (target, "target"), (weight, "weight")))
    z, ld = _logits_in(logits)
    soft, t, ld_t = _target_in(target, z, ld)
    w, w_address = _weight(weight, z)
    stats = np.empty((z.shape[0], len(STATS_FIELDS)), np.float64)
    options = _options(ignore_index, "mean", label_smoothing, 1.0)
    suffix = _SUFFIX[z.dtype]
    shape = (z.shape[0], z.shape[1], _column(first_col, "first_col"), _column(vocab, "vocab"), _address(z), ld)
    if soft:
        _call("nsm_cross_entropy_partial_soft_" + suffix, *shape, _address(t), ld_t, w_address, options, _address(stats))
    else:
        _call("nsm_cross_entropy_partial_" + suffix, *shape, _address(t), w_address, options, _address(stats))
    return torch.from_numpy(stats) if torch is not None else stats


def cross_entropy_merge(a, b, out=None):
    """The statistics of two disjoint sets of columns merged, row by row (a (rows, 7) float64
    array, or a tensor when ``a`` is one). ``out`` (optional) may be exactly ``a`` or ``b``."""
    torch = _torch_in((a, b, out))
    result_tensor = out if out is not None else None
    if torch is not None:
        a, b = _tensor_as_array(torch, a, "a"), _tensor_as_array(torch, b, "b")
        out = _tensor_as_array(torch, out, "out") if out is not None else None
    a = np.asarray(a)
    rows = a.shape[0] if a.ndim >= 1 else -1
    sa, sb = _stats_in(a, rows, "a"), _stats_in(b, rows, "b")
    if out is None:
        merged = np.empty_like(sa)
    else:
        merged = np.asarray(out)
        if merged.dtype == STATS_DTYPE:
            merged = merged.view(np.float64).reshape(-1, len(STATS_FIELDS))
        if merged.shape != sa.shape or merged.dtype != np.float64 or not merged.flags.c_contiguous:
            raise _binding_error(NSM_ERR_INVALID_SHAPE, "out must be a contiguous (%d, %d) float64 array"
                                 % sa.shape)
        if not merged.flags.writeable:
            raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "out is read-only")
    _call("nsm_cross_entropy_merge", rows, _address(sa), _address(sb), _address(merged))
    if torch is not None:
        return result_tensor if result_tensor is not None else torch.from_numpy(merged)
    return out if out is not None else merged


def cross_entropy_finish(logits, target, stats, first_col, vocab, weight=None, ignore_index=-100, reduction="mean",
                         label_smoothing=0.0, grad_scale=1.0, grad_output=None, return_grad=True, grad_out=None):
    """(loss, grad) of one shard from the merged statistics of every row: the loss of the whole
    vocabulary (a scalar for "sum"/"mean", [rows] for "none"; the same on every shard) and the
    gradient's columns [first_col, first_col + cols) (None unless return_grad or grad_out).
    ``grad_out``: a writeable array of the logits' shape and dtype, of any layout (written
    directly when its rows are evenly strided forward with unit column stride and it shares no
    memory with the logits, else computed into a new array and copied into it); it may be the
    logits array itself (the gradient replaces them). first_col and vocab must be integers
    within int64. Arguments as cross_entropy_partial, plus the options of
    nativesoftmax.cross_entropy."""
    torch = _torch_in((logits, target, stats, weight, grad_output, grad_out))
    caller_grad_out = grad_out
    if torch is not None:
        logits, target, stats, weight, grad_output, grad_out = (
            _tensor_as_array(torch, a, n) for a, n in ((logits, "logits"), (target, "target"), (stats, "stats"),
                                                       (weight, "weight"), (grad_output, "grad_output"),
                                                       (grad_out, "grad_out")))
    z, ld = _logits_in(logits)
    rows, cols = z.shape
    soft, t, ld_t = _target_in(target, z, ld)
    w, w_address = _weight(weight, z)
    s = _stats_in(stats, rows, "stats")
    red = _REDUCTIONS.get(reduction)
    u_address = 0
    if grad_output is not None:
        u = np.ascontiguousarray(grad_output, dtype=z.dtype)
        if u.shape != (rows,):
            raise _binding_error(NSM_ERR_INVALID_SHAPE, "grad_output must have shape (%d,), got %s" % (rows, u.shape))
        u_address = _address(u)
    options = _options(ignore_index, reduction, label_smoothing, grad_scale, u_address)
    loss = np.empty(rows if red == _native.NSM_REDUCTION_NONE else 1, z.dtype)
    grad, ld_grad, copy_into = None, cols, None
    if grad_out is not None:
        if not isinstance(grad_out, np.ndarray) or grad_out.shape != z.shape or grad_out.dtype != z.dtype:
            raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "grad_out must be a %s array of shape %s" % (z.dtype, z.shape))
        if not grad_out.flags.writeable:
            raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "grad_out is read-only")
        if _address(grad_out) == _address(z) and grad_out.strides == z.strides:
            grad, ld_grad = z, ld  # exactly the logits the library reads: in place
        elif _direct(grad_out) and not np.may_share_memory(grad_out, z):
            grad, ld_grad = grad_out, _leading_dimension(grad_out)
        else:
            # Strides the library cannot take (negative, not unit along the columns), or memory
            # shared with a copy of the logits: computed into a new array, then copied into grad_out.
            grad, copy_into = np.empty_like(z, order="C"), grad_out
    elif return_grad:
        grad = np.empty_like(z, order="C")
    suffix = _SUFFIX[z.dtype]
    shape = (rows, cols, _column(first_col, "first_col"), _column(vocab, "vocab"), _address(z), ld)
    g_address = _address(grad) if grad is not None else None
    if soft:
        _call("nsm_cross_entropy_finish_soft_" + suffix, *shape, _address(t), ld_t, w_address, _address(s), options,
              _address(loss), g_address, ld_grad)
    else:
        _call("nsm_cross_entropy_finish_" + suffix, *shape, _address(t), w_address, _address(s), options,
              _address(loss), g_address, ld_grad)
    result = loss if red == _native.NSM_REDUCTION_NONE else loss[0]
    if copy_into is not None:
        copy_into[...] = grad
    if grad_out is not None:
        grad = caller_grad_out
    if torch is not None:
        result = torch.from_numpy(np.asarray(result))
        if grad is not None and grad_out is None:
            grad = torch.from_numpy(grad)
    return result, grad

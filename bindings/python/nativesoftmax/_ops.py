"""The public operations: one library call each; numpy arrays (or torch tensors) in, the same out.

Every operation has a fast path for its common case (a C-contiguous, aligned float32 or float64
ndarray, the last axis, no ``out``): its checks cannot fail for such input, so it goes straight
to the library through a function bound once, passing data addresses read from the arrays. Any
other input takes the general path, which gives the same result bit for bit (same library call,
same arguments) and does every conversion and check.
"""

import ctypes
import operator
import struct
import sys

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

_ndarray = np.ndarray
_empty = np.empty
_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)
# bfloat16, which numpy lacks: a torch bfloat16 tensor's memory seen as this 2-byte structured
# dtype (never converted by numpy, so it cannot be mistaken for integers or float16).
_BF16 = np.dtype([("bfloat16", "<u2")])
_SUFFIX = {_F32: "f32", _F64: "f64", _F16: "f16", _BF16: "bf16"}
# The 16-bit dtypes, computed in float32 by the library; their weight, upstream gradients and
# losses are float32.
_HALF = (_F16, _BF16)
_pack_options = _native.OPTIONS_FORMAT.pack
_OPTIONS_SIZE = _native.OPTIONS_SIZE


class _LastAxis(int):
    """The default ``axis``: -1, and distinguishable from an ``axis`` the caller passed (so that
    passing both ``axis`` and ``dim`` is an error)."""

    def __repr__(self):
        return "-1"


_LAST = _LastAxis(-1)


# ------------------------------------------------------------------------------------------------
# Data addresses
# ------------------------------------------------------------------------------------------------

_at = ctypes.c_void_p.from_address

# numpy's flags word: NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED (checked by _probe below).
_C_ALIGNED = 0x0001 | 0x0100


def _probe_data_offset():
    """The byte offset of the data pointer inside a numpy array object, or None.

    numpy's array object is the Python object header followed by the data pointer
    (PyArrayObject_fields.data, which compiled numpy extensions read directly, so its place is
    part of numpy's binary interface); on CPython ``id()`` is the object's address. Reading the
    pointer there costs far less than ``a.ctypes.data``, which builds a helper object per call.
    Both facts, and the meaning of the flags bits in _C_ALIGNED, are checked here on probe arrays;
    where any does not hold the fast paths stay off and every call uses ``a.ctypes.data``."""
    if sys.implementation.name != "cpython":
        return None
    offset = object.__basicsize__  # the object header; the data pointer follows it
    base = np.arange(24, dtype=np.float64)
    probes = [base, base[5:].reshape(1, 19), np.empty((3, 4), np.float32),
              np.asfortranarray(np.empty((3, 4))), base.view(np.uint8)[4:-4].view(np.float64)]
    for p in probes:
        if _at(id(p) + offset).value != p.ctypes.data:
            return None
        if bool(p.flags.num & _C_ALIGNED == _C_ALIGNED) != (p.flags.c_contiguous
                                                             and p.flags.aligned):
            return None
    return offset


_DATA = _probe_data_offset()

# Passed for an array with no data (numpy never gives one a NULL pointer, but the header asks for
# valid pointers even when rows == 0, so this guards it): nothing is read or written through it.
_EMPTY = np.zeros(1, np.float64)


def _address(a):
    """The address of ``a``'s first element, never 0."""
    address = a.ctypes.data if _DATA is None else _at(id(a) + _DATA).value
    return address if address else _EMPTY.ctypes.data


# ------------------------------------------------------------------------------------------------
# Library functions, bound once
# ------------------------------------------------------------------------------------------------

_OPS = ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "softmax_jacobian",
        "cross_entropy", "cross_entropy_soft")
_TABLES = {op: {} for op in _OPS}  # op → {dtype: address-typed function}; filled by _bind()

# The fast paths' tables, filled only where _DATA is known: the same functions, bound with every
# argument c_void_p (_native.word_functions(), where int64_t and pointers are passed alike: the
# sizes convert at half the cost), else the address-typed ones.
_SOFTMAX_FAST = {}
_LOG_SOFTMAX_FAST = {}
_SOFTMAX_BACKWARD_FAST = {}
_LOG_SOFTMAX_BACKWARD_FAST = {}
_CROSS_ENTROPY_FAST = {}  # dtype → (hard-label function, soft-target function)


def _bind():
    functions = _native.functions()  # loads the library (LibraryLoadError if it cannot)
    for op, table in _TABLES.items():
        for dtype, suffix in _SUFFIX.items():
            table[dtype] = functions["nsm_%s_%s" % (op, suffix)]
    if _DATA is not None:
        words = _native.word_functions()

        def fast_function(op, dtype):
            name = "nsm_%s_%s" % (op, _SUFFIX[dtype])
            return words[name] if name in words else functions[name]

        for fast, op in ((_SOFTMAX_FAST, "softmax"), (_LOG_SOFTMAX_FAST, "log_softmax"),
                         (_SOFTMAX_BACKWARD_FAST, "softmax_backward"),
                         (_LOG_SOFTMAX_BACKWARD_FAST, "log_softmax_backward")):
            fast.update((dtype, fast_function(op, dtype)) for dtype in _SUFFIX)
        for dtype in (_F32, _F64):  # the 16-bit dtypes' float32 loss takes the general path
            _CROSS_ENTROPY_FAST[dtype] = (fast_function("cross_entropy", dtype),
                                          fast_function("cross_entropy_soft", dtype))


def _fn(op, dtype):
    table = _TABLES[op]
    if dtype not in table:
        _bind()
    return table[dtype]


# ------------------------------------------------------------------------------------------------
# Helpers: dtype rule, axes, row layout
# ------------------------------------------------------------------------------------------------

def _binding_error(status, message):
    return NativeSoftmaxError(status, "binding: " + message)


def _working_dtype(*dtypes):
    """float32, float64 and float16 stay as they are (mixed → numpy's promotion; either byte
    order, converted to native; float16 goes to the library's 16-bit functions, which compute in
    float32); torch bfloat16 (_BF16) stays bfloat16 when every input is, else it is float32;
    integers, bool and long double are computed in float64 (as scipy.special.softmax does for
    integers); anything else (complex, object, strings, datetimes) raises NativeSoftmaxTypeError."""
    if any(d == _BF16 for d in dtypes):
        if all(d == _BF16 for d in dtypes):
            return _BF16
        dtypes = tuple(_F32 if d == _BF16 else d for d in dtypes)
    try:
        dt = np.result_type(*dtypes)
    except TypeError as exc:
        raise NativeSoftmaxTypeError(NSM_ERR_INVALID_ARGUMENT,
                                     "binding: no common dtype for %s: %s" % (dtypes, exc)) from exc
    if dt.kind == "f":
        dt = dt.newbyteorder("=")
        if dt == np.float16:
            return _F16
        if dt == np.float32:
            return _F32
        return _F64
    if dt.kind in "biu":
        return _F64
    raise NativeSoftmaxTypeError(
        NSM_ERR_INVALID_ARGUMENT,
        "binding: unsupported dtype %s (NativeSoftmax computes in float32 or float64; "
        "float16 and bfloat16 in 16 bits; integers and bool are converted to float64)" % dt)


def _result_dtype(working, *dtypes):
    """The dtype results are returned in: the working dtype (float16 and bfloat16 results are
    computed in float32 by the library and rounded once to the 16-bit type)."""
    return working


def _normalize_axis(axis, ndim):
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise _AxisError(axis, ndim)
    return axis % ndim


def _axis_argument(axis, dim):
    """``dim`` (PyTorch's name) or ``axis``; both given is a TypeError, as a repeated argument."""
    if dim is None:
        return axis
    if axis is not _LAST:
        raise TypeError("got both axis=%r and dim=%r: dim is PyTorch's name for axis, pass one of "
                        "them" % (axis, dim))
    return dim


def _axes(axis, ndim):
    """The softmax axes as a sorted tuple: ``None`` is every axis, a tuple its axes (scipy's
    convention), anything else one axis. Raises numpy's AxisError for an axis out of range and
    ValueError for a repeated one."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        axes = tuple(sorted(_normalize_axis(a, ndim) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError("axis %r names an axis twice" % (axis,))
        return axes
    return (_normalize_axis(axis, ndim),)


def _moved_shape(shape, axes):
    """``shape`` with ``axes`` moved last (their order kept)."""
    return (tuple(n for i, n in enumerate(shape) if i not in axes)
            + tuple(shape[i] for i in axes))


def _to_rows(a, axes):
    """``a`` with ``axes`` moved last and merged into one axis (of length the product of theirs):
    ``a`` itself when ``axes`` is the last axis alone, else a view where the layout allows and a
    copy where it does not."""
    n, k = a.ndim, len(axes)
    last = tuple(range(n - k, n))
    if axes != last:
        a = np.moveaxis(a, axes, last)
    if k != 1:
        cols = 1
        for i in range(n - k, n):
            cols *= a.shape[i]
        a = a.reshape(a.shape[:n - k] + (cols,))
    return a


def _from_rows(r, shape, axes):
    """Undoes :func:`_to_rows` for a C-contiguous ``r`` (of the moved shape, or [rows × cols]):
    a view of ``r`` with shape ``shape``."""
    n, k = len(shape), len(axes)
    moved = _moved_shape(shape, axes)
    if r.shape != moved:
        r = r.reshape(moved)
    last = tuple(range(n - k, n))
    return r if axes == last else np.moveaxis(r, last, axes)


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
        a = _bfloat16_from(a) if dtype == _BF16 and a.dtype != _BF16 else np.ascontiguousarray(a, dtype=dtype)
        ld = max(cols, 1)
    return a, rows, cols, ld


def _bfloat16_from(a):
    """A contiguous _BF16 copy of ``a``: each value rounded to the nearest bfloat16 through
    float32 (ties to even; NaN stays NaN)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))
    nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    rounded = np.where(nan, (bits >> np.uint32(16)) | np.uint32(0x40), rounded)
    return rounded.astype(np.uint16).view(_BF16)


def _check_out(out, name, shape, result_dtype):
    """Refuses an ``out`` / ``grad_out`` that is not a writeable ndarray of ``shape`` and
    ``result_dtype`` (NativeSoftmaxError, nothing written)."""
    if not isinstance(out, np.ndarray):
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s must be a numpy ndarray (it is written in place), got %s"
                             % (name, type(out).__name__))
    if out.shape != shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "%s must have the result's shape %s, got %s" % (name, shape,
                                                                            out.shape))
    if out.dtype != result_dtype:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s has dtype %s, but the result is %s; %s must have the result's "
                             "dtype" % (name, out.dtype, result_dtype.name, name))
    if not out.flags.writeable:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "%s is read-only" % name)


class _Destination:
    """Where the library writes a [rows × cols] result: straight into the caller's ``out`` where
    its layout allows (``matrix`` is then a view of it), else into a new contiguous matrix that
    ``finish`` copies into ``out`` (rounding to float16 where that is the result dtype) or
    returns in the caller's shape."""

    def __init__(self, out, shape, axes, rows_shape, dtype, result_dtype):
        self.out, self.shape, self.axes, self.result_dtype = out, shape, axes, result_dtype
        self.direct = False
        if out is not None and dtype == result_dtype:
            view = _to_rows(out, axes)
            if view.size == 0:  # nothing is written, whatever strides numpy gave the empty array
                self.matrix, self.ld, self.direct = view, max(view.shape[-1], 1), True
            elif np.may_share_memory(view, out):  # (a reshape that had to copy is not out)
                ld = _row_stride(view)
                if ld is not None:
                    self.matrix, self.ld, self.direct = view, ld, True
        if not self.direct:
            self.matrix = np.empty(rows_shape, dtype)
            self.ld = max(rows_shape[-1], 1)

    def finish(self):
        if self.direct:
            return self.out
        result = _from_rows(self.matrix, self.shape, self.axes)
        if self.out is not None:
            np.copyto(self.out, result, casting="same_kind")
            return self.out
        if self.result_dtype != self.matrix.dtype:
            result = result.astype(self.result_dtype)
        return result


# ------------------------------------------------------------------------------------------------
# torch tensors: lazily, only when the caller passes one (torch is never imported here)
# ------------------------------------------------------------------------------------------------

def _torch_in(arguments):
    """torch, when any of ``arguments`` is a torch tensor (torch is then already imported),
    else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    tensor = torch.Tensor
    for a in arguments:
        if isinstance(a, tensor):
            return torch
    return None


def _tensor_as_array(torch, t, name, bfloat16=False):
    """A CPU tensor as a numpy array sharing its memory (detached; bfloat16, which numpy lacks,
    seen as _BF16 when ``bfloat16`` (every tensor of the call is bfloat16), else as a float32
    copy). Other tensors pass through unchanged."""
    if not isinstance(t, torch.Tensor):
        return t
    if t.device.type != "cpu":
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s is a tensor on device %r; NativeSoftmax computes on the CPU "
                             "(move it with .cpu())" % (name, str(t.device)))
    if t.layout != torch.strided:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s is a %s tensor; NativeSoftmax takes dense (strided) tensors"
                             % (name, t.layout))
    t = t.detach()
    if t.dtype == torch.bfloat16:
        if bfloat16:
            return t.view(torch.int16).numpy().view(_BF16)
        t = t.float()
    if t.is_neg():
        t = t.resolve_neg()
    if t.is_conj():
        t = t.resolve_conj()
    return t.numpy()


def _tensor_out(torch, t, name, result_dtype, bfloat16):
    """(array to write, writeback) for a tensor ``out``: its numpy view, or for a bfloat16 result
    None and a function that copies the float32 result into it."""
    if not isinstance(t, torch.Tensor):
        return t, None
    if t.requires_grad:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s requires grad; results are written into it outside autograd, "
                             "so pass a tensor that does not" % name)
    want = torch.bfloat16 if bfloat16 else _torch_dtype(torch, result_dtype)
    if t.dtype != want:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "%s has dtype %s, but the result is %s; %s must have the result's "
                             "dtype" % (name, t.dtype, want, name))
    return _tensor_as_array(torch, t, name, bfloat16), None


def _torch_dtype(torch, dtype):
    return torch.from_numpy(np.empty(0, dtype)).dtype


def _is_bfloat16(torch, *tensors):
    """Every one of ``tensors`` is a bfloat16 tensor."""
    return all(isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16 for t in tensors)


def _as_tensor(torch, a, bfloat16):
    if a is None or isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if a.dtype == _BF16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    t = torch.from_numpy(a)
    return t.to(torch.bfloat16) if bfloat16 else t


# ------------------------------------------------------------------------------------------------
# Forward
# ------------------------------------------------------------------------------------------------

def _forward_arrays(op, x, axis, out):
    dtype = _working_dtype(x.dtype)
    result_dtype = _result_dtype(dtype, x.dtype)
    axes = _axes(axis, x.ndim)
    if out is not None:
        _check_out(out, "out", x.shape, result_dtype)
    mat, rows, cols, ld = _as_rows(_to_rows(x, axes), dtype)
    dest = _Destination(out, x.shape, axes, mat.shape, dtype, result_dtype)
    _native.check(_fn(op, dtype)(rows, cols, _address(mat), ld, _address(dest.matrix), dest.ld))
    return dest.finish()


def _forward(op, x, axis, dim, out):
    axis = _axis_argument(axis, dim)
    torch = _torch_in((x, out))
    if torch is None:
        return _forward_arrays(op, np.asarray(x), axis, out)
    bfloat16 = _is_bfloat16(torch, x)
    xa = np.asarray(_tensor_as_array(torch, x, "x", bfloat16))
    out_array, writeback = (None, None) if out is None else _tensor_out(
        torch, out, "out", _result_dtype(_working_dtype(xa.dtype), xa.dtype), bfloat16)
    result = _forward_arrays(op, xa, axis, out_array)
    if writeback is not None:
        return writeback(result)
    return out if out is not None else _as_tensor(torch, result, bfloat16)


def softmax(x, axis=_LAST, *, dim=None, out=None):
    """Softmax along ``axis``: ``o_j = exp(z_j − m) / Σ_k exp(z_k − m)``, ``m = max_k z_k``.

    Args:
        x: array of any rank >= 1 (anything ``numpy.asarray`` accepts, or a torch tensor).
            float32 and float64 are computed in their own precision (either byte order);
            float16 is computed in float32 and returned as float16; integers, bool and long
            double are computed and returned in float64 (integers as
            ``scipy.special.softmax``).
        axis: the axis along which the probabilities sum to 1: default the last (PyTorch's
            usual ``dim=-1``); a tuple of axes normalises over all of them together, as
            ``scipy.special.softmax`` (over the flattened selected axes); ``None`` over the
            whole array, as scipy's default (this function's default differs from scipy's).
        dim: PyTorch's name for ``axis``; passing both raises TypeError.
        out: None, or a writeable ndarray (a tensor, for tensor input) of ``x``'s shape and the
            result dtype to write the result into; it is returned. It may be ``x`` itself
            (computed in place). Any layout is accepted: the library writes into it directly
            when its rows are evenly strided with unit column stride, else the result is copied
            into it. Nothing is written when the call raises.

    Returns:
        ndarray (or tensor) of ``x``'s shape and the dtype above. ``x`` is not modified (unless
        it is ``out``).

    Layout: when ``axis`` is the last axis and the rows are evenly strided with unit column
    stride (a C-contiguous array, or e.g. a 2-D column slice ``a[:, :k]``), ``x`` is passed to the
    library without a copy; otherwise it is copied once into a contiguous buffer.

    Torch tensors: a tensor in gives a tensor out. A CPU tensor is read as a numpy array sharing
    its memory (no copy where the layout allows) and the result tensor shares the result array's
    memory; it does not track gradients (``nativesoftmax.torch`` has the autograd versions).
    bfloat16 tensors are computed in float32 and returned as bfloat16. A tensor on another
    device raises NativeSoftmaxError.

    Numerics: each row is shifted by its maximum before exponentiation, so no finite logit
    overflows (up to ±3.4e38 in float32, ±1.8e308 in float64). exp is the library's vectorised
    approximation (measured maximum error below 1.25 ulp). float32 results are within 1e-6
    relative of the exact value (z − m is computed exactly before exp, so this holds for the
    smallest probabilities too); results below the smallest normal number are stored as 0.
    −inf in a row with a finite maximum gives probability 0; a row that is all −inf, or contains
    +inf or NaN, gives NaN for the whole row (as PyTorch).

    Raises:
        NativeSoftmaxError: the softmax axis has length 0 (NSM_ERR_INVALID_SHAPE), an ``out`` of
            the wrong shape (NSM_ERR_INVALID_SHAPE), dtype or kind, or read-only
            (NSM_ERR_INVALID_ARGUMENT), an ``out`` that partially overlaps ``x`` where it reaches
            the library (NSM_ERR_OVERLAP), or any other status the library returns, with its
            nsm_last_error() message.
        NativeSoftmaxTypeError: an unsupported dtype (complex, object, ...); also a TypeError.
        numpy AxisError: ``axis`` is out of range (including any axis of a 0-d array).
        ValueError: a tuple ``axis`` names an axis twice.
        TypeError: both ``axis`` and ``dim``.
    """
    # The fast path (the module's docstring): inline, not a helper, because a Python call costs
    # ~3% of this one (callgrind); log_softmax repeats it line for line.
    if type(x) is _ndarray and dim is None and out is None and (axis is _LAST or
                                                                 type(axis) is int):
        dtype = x.dtype
        fn = _SOFTMAX_FAST.get(dtype)
        if fn is not None and x.flags.num & _C_ALIGNED == _C_ALIGNED:
            shape = x.shape
            if shape and (axis is _LAST or axis == -1 or axis == len(shape) - 1):
                cols = shape[-1]
                rows = x.size // cols if cols else 0
                if rows:
                    y = _empty(shape, dtype)
                    status = fn(rows, cols, _at(id(x) + _DATA), cols, _at(id(y) + _DATA), cols)
                    if status:
                        _native.check(status)
                    return y
    return _forward("softmax", x, axis, dim, out)


def log_softmax(x, axis=_LAST, *, dim=None, out=None):
    """Log-softmax along ``axis``: ``z_j − m − log Σ_k exp(z_k − m)``, ``m = max_k z_k``.

    Args, layout, torch tensors and errors: as ``softmax`` (a tuple ``axis`` normalises over
    the flattened selected axes).

    Returns:
        ndarray (or tensor) of ``x``'s shape and the dtype of ``softmax``'s rule.

    Numerics: computed directly, never as ``log(softmax(x))``, so it does not underflow to −inf
    for very unlikely classes. float32 results are within 2e-6·(1 + |exact|). −inf logits in a
    row with a finite maximum give −inf; all-−inf rows and rows with +inf or NaN give NaN rows.
    (A finite result beyond the dtype's range, e.g. −1e38 − 1e38 in float32, is −inf.)
    """
    if type(x) is _ndarray and dim is None and out is None and (axis is _LAST or
                                                                 type(axis) is int):
        # softmax's fast path, line for line, with _LOG_SOFTMAX_FAST
        dtype = x.dtype
        fn = _LOG_SOFTMAX_FAST.get(dtype)
        if fn is not None and x.flags.num & _C_ALIGNED == _C_ALIGNED:
            shape = x.shape
            if shape and (axis is _LAST or axis == -1 or axis == len(shape) - 1):
                cols = shape[-1]
                rows = x.size // cols if cols else 0
                if rows:
                    y = _empty(shape, dtype)
                    status = fn(rows, cols, _at(id(x) + _DATA), cols, _at(id(y) + _DATA), cols)
                    if status:
                        _native.check(status)
                    return y
    return _forward("log_softmax", x, axis, dim, out)


# ------------------------------------------------------------------------------------------------
# Backward
# ------------------------------------------------------------------------------------------------

def _backward_arrays(op, g, o, axis, out):
    dtype = _working_dtype(g.dtype, o.dtype)
    if g.shape != o.shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "grad_output has shape %s but output has shape %s; they must be equal"
                             % (g.shape, o.shape))
    result_dtype = _result_dtype(dtype, g.dtype, o.dtype)
    axes = _axes(axis, g.ndim)
    if out is not None:
        _check_out(out, "out", g.shape, result_dtype)
    gmat, rows, cols, ldg = _as_rows(_to_rows(g, axes), dtype)
    omat, _, _, ldo = _as_rows(_to_rows(o, axes), dtype)
    dest = _Destination(out, g.shape, axes, gmat.shape, dtype, result_dtype)
    _native.check(_fn(op, dtype)(rows, cols, _address(gmat), ldg, _address(omat), ldo,
                                 _address(dest.matrix), dest.ld))
    return dest.finish()


def _backward(op, grad_output, output, axis, dim, out):
    axis = _axis_argument(axis, dim)
    torch = _torch_in((grad_output, output, out))
    if torch is None:
        return _backward_arrays(op, np.asarray(grad_output), np.asarray(output), axis, out)
    bfloat16 = _is_bfloat16(torch, grad_output, output)
    g = np.asarray(_tensor_as_array(torch, grad_output, "grad_output", bfloat16))
    o = np.asarray(_tensor_as_array(torch, output, "output", bfloat16))
    out_array, writeback = (None, None) if out is None else _tensor_out(
        torch, out, "out", _result_dtype(_working_dtype(g.dtype, o.dtype), g.dtype, o.dtype),
        bfloat16)
    result = _backward_arrays(op, g, o, axis, out_array)
    if writeback is not None:
        return writeback(result)
    return out if out is not None else _as_tensor(torch, result, bfloat16)


def _backward_fast(table, g, o, axis):
    """The fast path of the backward passes, or None when the arguments are not its case."""
    dtype = g.dtype
    fn = table.get(dtype)
    if (fn is not None and o.dtype == dtype
            and g.flags.num & o.flags.num & _C_ALIGNED == _C_ALIGNED):
        shape = g.shape
        if shape and o.shape == shape and (axis is _LAST or axis == -1
                                           or axis == len(shape) - 1):
            cols = shape[-1]
            rows = g.size // cols if cols else 0
            if rows:
                y = _empty(shape, dtype)
                status = fn(rows, cols, _at(id(g) + _DATA), cols, _at(id(o) + _DATA), cols,
                            _at(id(y) + _DATA), cols)
                if status:
                    _native.check(status)
                return y
    return None


def softmax_backward(grad_output, output, axis=_LAST, *, dim=None, out=None):
    """Vector–Jacobian product of softmax: ``dz = o ⊙ (g − ⟨g, o⟩)`` along ``axis``.

    This is the gradient of a scalar L with respect to the logits z, given ``g = ∂L/∂o`` and the
    forward output ``o = softmax(z, axis)`` (PyTorch's ``_softmax_backward_data``): the product
    of g with the Jacobian ``J = diag(o) − o oᵀ``.

    Args:
        grad_output: g, the upstream gradient, same shape as ``output``.
        output: o, the probabilities returned by ``softmax(z, axis)``.
        axis: the softmax axis (or tuple of axes, or None) used in the forward pass (default:
            the last). ``dim``: PyTorch's name for it; passing both raises TypeError.
        out: as ``softmax``'s ``out``, of the common shape and result dtype; it may be
            ``grad_output`` or ``output`` itself.
        Both inputs are converted to a common working dtype as in ``softmax`` (float32 with
        float64 → float64; float16 with float16 → computed in float32, returned as float16);
        each is passed without a copy when its layout allows. Torch tensors: as ``softmax``.

    Returns:
        ndarray (or tensor) of the common shape and result dtype.

    Numerics: ⟨g, o⟩ is accumulated in the working precision with several partial sums. NaN or
    infinite inputs propagate by IEEE arithmetic.

    Raises:
        NativeSoftmaxError: shapes differ (NSM_ERR_INVALID_SHAPE, raised by the binding), the
            axis has length 0, a bad ``out`` (as ``softmax``), or any library status, with its
            message.
        NativeSoftmaxTypeError: an unsupported dtype. numpy AxisError: ``axis`` out of range.
    """
    if (type(grad_output) is _ndarray and type(output) is _ndarray and dim is None
            and out is None and (axis is _LAST or type(axis) is int)):
        y = _backward_fast(_SOFTMAX_BACKWARD_FAST, grad_output, output, axis)
        if y is not None:
            return y
    return _backward("softmax_backward", grad_output, output, axis, dim, out)


def log_softmax_backward(grad_output, output, axis=_LAST, *, dim=None, out=None):
    """Vector–Jacobian product of log-softmax: ``dz = g − exp(output) · Σ_j g_j`` along ``axis``.

    Given ``g = ∂L/∂(log o)`` and the forward output (the log-probabilities returned by
    ``log_softmax(z, axis)``, as PyTorch's ``_log_softmax_backward_data``), returns ∂L/∂z.

    Args, returns, raises: as ``softmax_backward`` (``output`` holds log-probabilities).

    Numerics: exp(output) uses the library's vectorised exp, whose measured maximum error is
    below 1.25 ulp (0.88 ulp float32 and float64 where the CPU has FMA); Σ g is accumulated
    in the working precision. A −inf log-probability contributes 0·Σg = 0 (exp(−inf) = 0).
    """
    if (type(grad_output) is _ndarray and type(output) is _ndarray and dim is None
            and out is None and (axis is _LAST or type(axis) is int)):
        y = _backward_fast(_LOG_SOFTMAX_BACKWARD_FAST, grad_output, output, axis)
        if y is not None:
            return y
    return _backward("log_softmax_backward", grad_output, output, axis, dim, out)


def _jacobian_arrays(z):
    dtype = _working_dtype(z.dtype)
    result_dtype = _result_dtype(dtype, z.dtype)
    if z.ndim != 1:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "softmax_jacobian takes one 1-D row of logits, got shape %s"
                             % (z.shape,))
    z = np.ascontiguousarray(z, dtype=dtype)
    cols = z.shape[0]
    jac = np.empty((cols, cols), dtype)
    _native.check(_fn("softmax_jacobian", dtype)(cols, _address(z), _address(jac), max(cols, 1)))
    return jac if result_dtype == dtype else jac.astype(result_dtype)


def softmax_jacobian(logits):
    """The softmax Jacobian of one row: ``J[i, j] = ∂o_i/∂z_j = o_i·(δ_ij − o_j)``.

    Args:
        logits: 1-D array (or tensor) of length C >= 1 (dtype rule as ``softmax``).

    Returns:
        [C × C] ndarray (a tensor for tensor input), ``diag(o) − o oᵀ`` with
        ``o = softmax(logits)``; symmetric, rows sum to 0.

    Numerics: o as in ``softmax`` (max-shifted). Meant for verification and small C: the result
    has C² elements.

    Raises:
        NativeSoftmaxError: ``logits`` is not 1-D (NSM_ERR_INVALID_SHAPE, raised by the binding)
            or is empty, or any library status, with its message.
        NativeSoftmaxTypeError: an unsupported dtype.
    """
    torch = _torch_in((logits,))
    if torch is None:
        return _jacobian_arrays(np.asarray(logits))
    bfloat16 = _is_bfloat16(torch, logits)
    return _as_tensor(torch, _jacobian_arrays(
        np.asarray(_tensor_as_array(torch, logits, "logits", bfloat16))), bfloat16)


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


def _grad_out_in(g, logits, shape, dtype, result_dtype):
    """A _Destination for a caller's gradient buffer, checked against the rules in
    cross_entropy's docstring."""
    if not isinstance(g, np.ndarray):
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "grad_out must be a numpy ndarray (it is written in place), got %s"
                             % type(g).__name__)
    if g.shape != shape:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "grad_out must have the logits' shape %s, got %s" % (shape, g.shape))
    if g.dtype != result_dtype:
        if isinstance(logits, np.ndarray) and np.may_share_memory(g, logits):
            raise _binding_error(
                NSM_ERR_INVALID_ARGUMENT,
                "grad_out is the logits array, but the logits (dtype %s) are computed in %s, so "
                "they are read from a converted copy and the gradient cannot be written over "
                "them in place; pass logits of dtype %s, or a separate grad_out of that dtype"
                % (g.dtype, dtype.name, dtype.name))
        if result_dtype != dtype:
            raise _binding_error(
                NSM_ERR_INVALID_ARGUMENT,
                "grad_out has dtype %s, but the gradient of these logits is %s (computed in %s); "
                "grad_out must have that dtype" % (g.dtype, result_dtype.name, dtype.name))
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "grad_out has dtype %s, but these logits are computed in %s; "
                             "grad_out must have the working dtype" % (g.dtype, dtype.name))
    if not g.flags.writeable:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT, "grad_out is read-only")
    if g.ndim == 1:
        g = g[np.newaxis, :]
    rows_shape = _moved_shape(g.shape, _CLASS_AXIS)
    rows_shape = (int(np.prod(rows_shape[:-1], dtype=np.int64)), rows_shape[-1])
    dest = _Destination(g, g.shape, _CLASS_AXIS, rows_shape, dtype, result_dtype)
    if not dest.direct and g.ndim == 2 and result_dtype == dtype:
        raise _binding_error(NSM_ERR_INVALID_LEADING_DIM,
                             "grad_out (strides %s) must be aligned, with unit column stride and "
                             "rows evenly spaced at a positive distance >= the number of classes "
                             "(e.g. C-contiguous, or a column slice a[:, :C] of a wider array)"
                             % (g.strides,))
    return dest


# The class axis of [N, C] and [N, C, d1, ...] logits (and of [C] logits seen as [1, C]).
_CLASS_AXIS = (1,)


def _grad_output_in(u, red, loss_shape, rows, dtype):
    """The per-row upstream gradients as a contiguous [rows] array of the working dtype (no copy
    when they already are one, so that an overlap with an output reaches the library). With
    reduction "none" they must have the loss's shape; with "sum" or "mean" they are passed as they
    are, and the library refuses them with its own message."""
    u = np.asarray(u)
    _working_dtype(u.dtype)  # rejects complex/object upstream gradients with a TypeError
    if red == _native.NSM_REDUCTION_NONE:
        if u.shape != loss_shape:
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "grad_output must have the shape of the per-row loss %s, got %s"
                                 % (loss_shape, u.shape))
        u = u.reshape(rows)
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(u.reshape(-1), dtype=dtype)


def _cross_entropy_arrays(logits, target, weight, ignore_index, reduction, label_smoothing,
                          return_grad, grad_scale, grad_out, grad_output=None):
    z = np.asarray(logits)
    t = np.asarray(target)
    dtype = _working_dtype(z.dtype)
    result_dtype = _result_dtype(dtype, z.dtype)
    scalar = _F32 if dtype in _HALF else dtype  # weight, grad_output and loss
    if z.ndim == 0:
        raise _binding_error(NSM_ERR_INVALID_SHAPE,
                             "logits must be [N, C] or [C], or [N, C, d1, ...] with the classes on "
                             "axis 1 (as PyTorch), got shape %s" % (z.shape,))
    one_row = z.ndim == 1
    # [N, C, d1, ...]: the classes moved last, every (n, d1, ...) a row
    zr = z[np.newaxis, :] if one_row else (np.moveaxis(z, 1, -1) if z.ndim >= 3 else z)
    cols = zr.shape[-1]
    rows = int(np.prod(zr.shape[:-1], dtype=np.int64))
    row_shape = zr.shape[:-1]  # the shape of a "none" loss before one_row is dropped

    if t.size == 0 and t.dtype == np.float64 and t.shape == (rows,) and z.ndim == 2:
        t = t.astype(np.int64)  # an empty list: no labels, not probabilities
    if t.dtype.kind in "iu":
        soft = False
        want = () if one_row else row_shape
        if t.shape != want:
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "class-index target must have shape %s for logits of shape %s, "
                                 "got %s" % (want, z.shape, t.shape))
        if t.dtype == np.uint64 and t.size and int(t.max()) > _INT64_MAX:
            raise _binding_error(NSM_ERR_LABEL_OUT_OF_RANGE,
                                 "label %d does not fit in int64" % int(t.max()))
        t2 = np.ascontiguousarray(t.reshape(rows), dtype=np.int64)
    elif t.dtype.kind == "f" or t.dtype == _BF16:
        soft = True
        if t.shape != z.shape:
            raise _binding_error(NSM_ERR_INVALID_SHAPE,
                                 "probability target must have the logits' shape %s, got %s"
                                 % (z.shape, t.shape))
        tr = t[np.newaxis, :] if one_row else (np.moveaxis(t, 1, -1) if z.ndim >= 3 else t)
        t2, _, _, ld_t = _as_rows(tr, dtype)
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
        w = _weight_in(w, scalar)

    try:
        red = _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "reduction must be 'none', 'sum' or 'mean', got %r" % (reduction,))
    ignore_index = operator.index(ignore_index)
    if not _INT64_MIN <= ignore_index <= _INT64_MAX:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "ignore_index %d does not fit in int64" % ignore_index)
    upstream = None
    if grad_output is not None:
        upstream = _grad_output_in(grad_output, red, () if one_row else row_shape, rows, scalar)
    options = _pack_options(_OPTIONS_SIZE, red, ignore_index, float(label_smoothing),
                            float(grad_scale), 0 if upstream is None else _address(upstream))
    zmat, _, _, ld_z = _as_rows(zr, dtype)
    loss = np.empty(rows if red == _native.NSM_REDUCTION_NONE else 1, scalar)
    if grad_out is not None:
        # When the logits were not copied and grad_out is the logits array, both pointers and
        # leading dimensions are equal: the header's exact in place. A partial overlap with an
        # input reaches the library, which answers NSM_ERR_OVERLAP.
        grad = _grad_out_in(grad_out, logits, z.shape, dtype, result_dtype)
        return_grad = True
    elif return_grad:
        grad = _Destination(None, (1,) + z.shape if one_row else z.shape, _CLASS_AXIS,
                            (rows, cols), dtype, result_dtype)
    else:
        grad = None
    grad_address = _address(grad.matrix) if grad is not None else None
    ld_g = grad.ld if grad is not None else max(cols, 1)
    w_address = _address(w) if w is not None else None
    if soft:
        status = _fn("cross_entropy_soft", dtype)(rows, cols, _address(zmat), ld_z,
                                                  _address(t2), ld_t, w_address, options,
                                                  _address(loss), grad_address, ld_g)
    else:
        status = _fn("cross_entropy", dtype)(rows, cols, _address(zmat), ld_z, _address(t2),
                                             w_address, options, _address(loss), grad_address,
                                             ld_g)
    _native.check(status)

    if result_dtype != dtype:
        loss = loss.astype(result_dtype)
    if red != _native.NSM_REDUCTION_NONE or one_row:
        loss = loss[0]
    elif z.ndim >= 3:
        loss = loss.reshape(row_shape)
    if not return_grad:
        return loss
    grad = grad.finish()
    if grad_out is not None:
        return loss, grad_out
    return loss, grad.reshape(z.shape)


# cross_entropy's defaults of the options, as objects: when the fast path is passed these very
# objects, it takes the options _pack_options made of them once, by reduction code, instead of
# packing them again (a call with the same values in other objects packs them).
_IGNORE_INDEX = -100
_LABEL_SMOOTHING = 0.0
_GRAD_SCALE = 1.0
_DEFAULT_OPTIONS = [None] * len(_REDUCTIONS)
for _red in _REDUCTIONS.values():
    _DEFAULT_OPTIONS[_red] = _pack_options(_OPTIONS_SIZE, _red, _IGNORE_INDEX, _LABEL_SMOOTHING,
                                           _GRAD_SCALE, 0)
del _red


def cross_entropy(logits, target, weight=None, ignore_index=_IGNORE_INDEX, reduction="mean",
                  label_smoothing=_LABEL_SMOOTHING, *, return_grad=False, grad_scale=_GRAD_SCALE,
                  grad_out=None, grad_output=None):
    """Fused softmax cross-entropy (``torch.nn.functional.cross_entropy``), optionally with the
    gradient with respect to the logits.

    Args:
        logits: [N, C], [C] (one row), or [N, C, d1, …] with the classes on axis 1, as PyTorch
            (every (n, d1, …) position is a row). float32 and float64 are computed in their own
            precision; float16 (and bfloat16 tensors) in float32, with the gradient returned in
            the logits' dtype and the loss as float32; integers in float64. Passed without a copy when rows are evenly strided with unit
            column stride ([N, C] and [C] logits).
        target: either
            * integer class indices (any integer dtype, converted to int64): [N] for [N, C]
              logits, a scalar for [C] logits, [N, d1, …] for [N, C, d1, …] logits. Each must be
              in [0, C) or equal ``ignore_index``; or
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
            ignored, or N = 0). For soft targets the mean divides by the number of rows.
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·y + ε/C.
        return_grad: also return ∂(grad_scale · loss)/∂logits (with ``grad_output``,
            ∂(grad_scale · Σ_r grad_output[r]·loss[r])/∂logits).
        grad_scale: the upstream gradient of the returned loss (PyTorch's ``grad_output`` for a
            scalar loss, or the same value for every row with reduction "none"); must be finite.
        grad_output: None, or with reduction "none" one upstream gradient per row, of the loss's
            shape ([N], [N, d1, …], or a scalar for [C] logits), converted to the working dtype:
            row r's gradient is multiplied by ``grad_output[r] * grad_scale`` (the backward of
            PyTorch's ``reduction="none"``). Values are not checked: NaN and ±inf make that row's
            gradient non-finite, except an ignored row (or an all-zero soft-target row), which
            stays 0. The loss does not depend on it. With "sum" or "mean" it is refused
            (NSM_ERR_INVALID_ARGUMENT: pass the scalar upstream gradient as ``grad_scale``).
        grad_out: None, or an ndarray to write the gradient into (implies ``return_grad=True``;
            it is returned as the gradient). It must have the logits' shape and the gradient's
            dtype, and be writeable. For [N, C] and [C] logits of float32 or float64 it must have
            the layout the binding passes without a copy: unit column stride and rows evenly
            spaced at a positive distance >= C (C-contiguous, or a column slice ``a[:, :C]`` of a
            wider array; elements between the rows are not touched). It may be the logits array
            itself (the logits are then overwritten by their gradient, exactly in place, with the
            same result bit for bit), and with soft targets it may be the target array itself.
            In place over the logits needs logits that are used without conversion: logits whose
            dtype differs from the working dtype (integers, non-native byte order) are read from
            a copy, and grad_out=logits is then refused. For [N, C, d1, …] or float16 logits any
            layout is accepted (the gradient is copied into grad_out when the library cannot
            write it there directly). Any partial overlap of grad_out with an input (e.g. the
            logits shifted by a column) that reaches the library is refused with NSM_ERR_OVERLAP;
            nothing is written then.

    Returns:
        loss, or (loss, grad) with ``return_grad=True`` or ``grad_out``. ``loss`` is a numpy scalar
        for "sum" and "mean" (and for [C] logits), otherwise an array of the target's shape
        ([N], or [N, d1, …]). ``grad`` has the logits' shape: ``grad[r, i] = s·(o_i·Σ_j y_j − y_i)``
        with y the weighted, smoothed target of row r and ``s = grad_scale`` ("none", "sum") or
        ``grad_scale / divisor`` ("mean"), times ``grad_output[r]`` when given. ``grad`` has the
        dtype rule of ``softmax``, and so has ``loss``, except that it is float32 for float16 and
        bfloat16 logits. Torch tensor
        logits give torch tensors (a 0-d tensor for a scalar loss); target and weight may be
        tensors too.

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
            weight or grad_scale, a grad_output with reduction "sum" or "mean";
            NSM_ERR_INVALID_SHAPE for C = 0; NSM_ERR_OVERLAP for a grad_out that partially
            overlaps an input, or that overlaps grad_output. The binding itself raises NativeSoftmaxError
            (message prefixed "binding: ") for shapes that do not fit together (target, weight or
            grad_out of the wrong shape, 0-d logits), an unknown reduction, an ignore_index
            outside int64, a grad_output whose shape is not the per-row loss's
            (NSM_ERR_INVALID_SHAPE), a weight that is finite in its own dtype but overflows the working
            dtype (NSM_ERR_INVALID_ARGUMENT, e.g. 1e300 with float32 logits), a grad_out of the
            wrong dtype or read-only (NSM_ERR_INVALID_ARGUMENT) or of a layout that needs a copy
            (NSM_ERR_INVALID_LEADING_DIM), a tensor on another device.
        NativeSoftmaxTypeError (also a TypeError): unsupported dtypes (complex, bool targets...).
    """
    # The fast path: ndarrays of the working dtype, C-contiguous, [N, C] logits, no grad_out and
    # no grad_output.
    if (type(logits) is _ndarray and type(target) is _ndarray and grad_out is None
            and grad_output is None and type(reduction) is str):
        dtype = logits.dtype
        fns = _CROSS_ENTROPY_FAST.get(dtype)
        red = _REDUCTIONS.get(reduction)
        shape = logits.shape
        if (fns is not None and red is not None and len(shape) == 2
                and logits.flags.num & target.flags.num & _C_ALIGNED == _C_ALIGNED):
            rows, cols = shape
            target_dtype = target.dtype
            hard = target_dtype == _I64  # first: equal dtypes compare in half the time of unequal
            if (rows and cols and (hard or target_dtype == dtype)
                    and target.shape == ((rows,) if hard else shape)
                    and (weight is None or (type(weight) is _ndarray and weight.dtype == dtype
                                            and weight.shape == (cols,)
                                            and weight.flags.num & _C_ALIGNED == _C_ALIGNED))):
                if (ignore_index is _IGNORE_INDEX and label_smoothing is _LABEL_SMOOTHING
                        and grad_scale is _GRAD_SCALE):
                    options = _DEFAULT_OPTIONS[red]  # packed from these very objects
                else:
                    try:
                        # float() as the general path converts (a float subclass's __float__
                        # included); what it refuses, the general path refuses with its message.
                        options = _pack_options(_OPTIONS_SIZE, red, ignore_index,
                                                float(label_smoothing), float(grad_scale), 0)
                    except (struct.error, TypeError, OverflowError, ValueError):
                        options = None  # the general path converts, or says what is wrong
                if options is not None:
                    loss = _empty(rows if red == 0 else 1, dtype)
                    grad = _empty(shape, dtype) if return_grad else None
                    w = None if weight is None else _at(id(weight) + _DATA)
                    g = None if grad is None else _at(id(grad) + _DATA)
                    if hard:
                        status = fns[0](rows, cols, _at(id(logits) + _DATA), cols,
                                        _at(id(target) + _DATA), w, options,
                                        _at(id(loss) + _DATA), g, cols)
                    else:
                        status = fns[1](rows, cols, _at(id(logits) + _DATA), cols,
                                        _at(id(target) + _DATA), cols, w, options,
                                        _at(id(loss) + _DATA), g, cols)
                    if status:
                        _native.check(status)
                    if red:
                        loss = loss[0]
                    return (loss, grad) if return_grad else loss

    torch = _torch_in((logits, target, weight, grad_out, grad_output))
    if torch is None:
        return _cross_entropy_arrays(logits, target, weight, ignore_index, reduction,
                                     label_smoothing, return_grad, grad_scale, grad_out,
                                     grad_output)
    bfloat16 = _is_bfloat16(torch, logits)
    z = np.asarray(_tensor_as_array(torch, logits, "logits", bfloat16))
    t = _tensor_as_array(torch, target, "target", bfloat16)
    w = _tensor_as_array(torch, weight, "weight")
    u = _tensor_as_array(torch, grad_output, "grad_output")
    g, writeback = None, None
    if grad_out is not None:
        dtype = _working_dtype(z.dtype)
        g, writeback = _tensor_out(torch, grad_out, "grad_out", _result_dtype(dtype, z.dtype),
                                   bfloat16)
        if g is None:
            return_grad = True
    result = _cross_entropy_arrays(z, t, w, ignore_index, reduction, label_smoothing,
                                   return_grad, grad_scale, g, u)
    if not (return_grad or g is not None):
        return _as_tensor(torch, result, False)
    loss, grad = result
    loss = _as_tensor(torch, loss, False)  # float32 for the 16-bit dtypes
    if writeback is not None:
        return loss, writeback(grad)
    if grad_out is not None:
        return loss, grad_out
    return loss, _as_tensor(torch, grad, bfloat16)


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
    """The shared library in use. It is looked for, in this order: $NATIVESOFTMAX_LIBRARY (a file,
    or a folder holding libnativesoftmax.so; when set, nothing else is tried), the package's own
    folder (an installed wheel), the repository's build/lib (when the package is the one in a
    checkout), then the system loader path (LD_LIBRARY_PATH, the loader's cache). Once loaded,
    the file that was loaded; before, the file the lookup finds (without loading it), or
    "libnativesoftmax.so" when the system loader will be asked."""
    return _native.library_path()


def get_num_threads():
    """How many threads a call may use, the calling thread included: 1 to 1024
    (``nsm_get_num_threads``, as ``torch.get_num_threads``). By default the environment variable
    NATIVESOFTMAX_NUM_THREADS when it is a whole number in [1, 1024] in decimal digits alone,
    else the number of CPUs
    this process may run on. Results are the same bits for every thread count."""
    return int(_native.lib().nsm_get_num_threads())


def set_num_threads(num_threads):
    """Sets how many threads a call may use, the calling thread included, for the whole process
    (``nsm_set_num_threads``, as ``torch.set_num_threads``); 0 restores the default.

    Work too small to gain from a thread stays on the calling thread, and a call made while
    another thread's call is using the library's workers runs on its own thread alone. In a
    process forked after the workers started (multiprocessing, DataLoader workers), calls run on
    the calling thread.

    Raises:
        NativeSoftmaxError: ``num_threads`` is below 0 or above 1024 (NSM_ERR_INVALID_ARGUMENT;
            the setting is unchanged).
        TypeError: ``num_threads`` is not an integer.
    """
    n = operator.index(num_threads)
    if not -2 ** 31 <= n < 2 ** 31:
        raise _binding_error(NSM_ERR_INVALID_ARGUMENT,
                             "num_threads must be in [1, 1024], or 0 for the default; got %d" % n)
    _native.check(_native.lib().nsm_set_num_threads(n))

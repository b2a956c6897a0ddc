"""rows == 0 with NULL pointers, as an empty tensor gives them (torch.empty(0, C).data_ptr() is 0):
the library accepts them, writes nothing, and still stores a reduced loss (NaN for the mean, 0
for the sum); cols is still checked. Through the C ABI directly, and through the binding."""

import ctypes
import math

import numpy as np
import pytest

import nativesoftmax as nsm
from nativesoftmax import _native

DTYPES = [(np.float32, "f32", ctypes.c_float), (np.float64, "f64", ctypes.c_double)]
IDS = ["float32", "float64"]


def _options(reduction):
    opts = _native.CrossEntropyOptions()
    opts.struct_size = ctypes.sizeof(opts)
    opts.reduction = reduction
    opts.ignore_index = -100
    opts.label_smoothing = 0.0
    opts.grad_scale = 1.0
    return opts


@pytest.mark.parametrize("dtype,suffix,ctype", DTYPES, ids=IDS)
def test_the_abi_accepts_null_pointers_without_rows(dtype, suffix, ctype):
    lib = _native.lib()
    cols = 5
    for name in ("softmax", "log_softmax"):
        status = getattr(lib, "nsm_%s_%s" % (name, suffix))(0, cols, None, cols, None, cols)
        assert status == _native.NSM_OK, (name, _native.text_of(lib.nsm_last_error))
    for name in ("softmax_backward", "log_softmax_backward"):
        status = getattr(lib, "nsm_%s_%s" % (name, suffix))(0, cols, None, cols, None, cols, None, cols)
        assert status == _native.NSM_OK, (name, _native.text_of(lib.nsm_last_error))
    for reduction, expected in ((_native.NSM_REDUCTION_MEAN, math.nan), (_native.NSM_REDUCTION_SUM, 0.0)):
        opts = _options(reduction)
        for soft in (False, True):
            loss = ctype(-7.0)
            if soft:
                status = getattr(lib, "nsm_cross_entropy_soft_%s" % suffix)(
                    0, cols, None, cols, None, cols, None, ctypes.byref(opts), ctypes.byref(loss), None, cols)
            else:
                status = getattr(lib, "nsm_cross_entropy_%s" % suffix)(
                    0, cols, None, cols, None, None, ctypes.byref(opts), ctypes.byref(loss), None, cols)
            assert status == _native.NSM_OK, _native.text_of(lib.nsm_last_error)
            assert (math.isnan(loss.value) if math.isnan(expected) else loss.value == expected), (soft, reduction, loss.value)
    # cols is still checked.
    status = getattr(lib, "nsm_softmax_%s" % suffix)(0, 0, None, 1, None, 1)
    assert status == _native.NSM_ERR_INVALID_SHAPE


@pytest.mark.parametrize("dtype,suffix,ctype", DTYPES, ids=IDS)
def test_the_binding_passes_empty_arrays(dtype, suffix, ctype):
    z = np.empty((0, 4), dtype)
    assert nsm.softmax(z).shape == (0, 4)
    assert nsm.log_softmax_backward(z, z).shape == (0, 4)
    assert math.isnan(nsm.cross_entropy(z, np.empty(0, np.int64)))
    assert nsm.cross_entropy(z, np.empty((0, 4), dtype), reduction="sum") == 0.0

"""NativeSoftmax for Python: softmax, log-softmax, their backward passes (vector–Jacobian
products), the softmax Jacobian and the fused softmax cross-entropy with its gradient, computed by
the vectorised native library libnativesoftmax.so through ctypes (no compiled extension).

Names and defaults follow ``torch.nn.functional`` (``dim=``, ``cross_entropy(logits, target,
weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0)`` with [N, C] or
[N, C, d1, …] logits) and ``scipy.special`` (``axis=``, an int, a tuple of axes, or None for the
whole array; the default here is the last axis, where scipy's is None). Arrays are numpy arrays
(float32 and float64 computed in their own precision, float16 in float32 and returned as
float16, integers in float64), passed to the library without copies when their rows are evenly
strided; torch tensors in give torch tensors out (torch is imported only by the caller; the
autograd versions are in ``nativesoftmax.torch``).

The library is looked for in this order: $NATIVESOFTMAX_LIBRARY (a file, or a folder holding
libnativesoftmax.so), the package's own folder (an installed wheel carries it there), the
repository's build/lib (for the package in a checkout), the system loader path. It is loaded on
first use, and a library whose NSM_VERSION_NUMBER differs from the header this binding was
written for (HEADER_VERSION_NUMBER) is refused with LibraryLoadError. Failed calls raise
NativeSoftmaxError (a ValueError) with the library's status and message; when the system refuses
the memory a call needs, NativeSoftmaxMemoryError (also a MemoryError).

``python -m nativesoftmax`` prints the version, the instruction-set path, the thread count and
the library path, and checks the results against a float64 numpy reference.
"""

from ._native import (
    HEADER_VERSION_NUMBER,
    HEADER_VERSION_STRING,
    LibraryLoadError,
    NativeSoftmaxError,
    NativeSoftmaxMemoryError,
    NativeSoftmaxTypeError,
)
from ._ops import (
    cross_entropy,
    isa,
    library_path,
    library_version,
    log_softmax,
    log_softmax_backward,
    get_num_threads,
    set_num_threads,
    softmax,
    softmax_backward,
    softmax_jacobian,
)

# The vocabulary-split cross-entropy: partial statistics per shard of columns, merge, finish.
from ._split import (
    STATS_DTYPE,
    STATS_FIELDS,
    cross_entropy_finish,
    cross_entropy_merge,
    cross_entropy_partial,
)

__version__ = HEADER_VERSION_STRING

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "softmax_jacobian",
    "cross_entropy",
    "cross_entropy_partial",
    "cross_entropy_merge",
    "cross_entropy_finish",
    "STATS_FIELDS",
    "STATS_DTYPE",
    "isa",
    "library_version",
    "library_path",
    "get_num_threads",
    "set_num_threads",
    "NativeSoftmaxError",
    "NativeSoftmaxMemoryError",
    "NativeSoftmaxTypeError",
    "LibraryLoadError",
    "HEADER_VERSION_NUMBER",
    "__version__",
]

"""NativeSoftmax for Python: softmax, log-softmax, their backward passes (vector–Jacobian
products), the softmax Jacobian and the fused softmax cross-entropy with its gradient, computed by
the vectorised native library libnativesoftmax.so through ctypes (no compiled extension). Names and
defaults follow ``torch.nn.functional`` (``cross_entropy(logits, target, weight=None,
ignore_index=-100, reduction="mean", label_smoothing=0.0)``) and ``scipy.special`` (an ``axis`` argument; its default here is the last axis, where scipy's is
``None``, the whole array, which ``axis=None`` gives);
arrays are numpy arrays of float32 or float64, passed to the library without copies when their
rows are evenly strided. The library is found through the environment variable
NATIVESOFTMAX_LIBRARY, else at build/lib/libnativesoftmax.so in the repository that holds this
package; it is loaded on first use, and a library whose NSM_VERSION_NUMBER differs from the header
this binding was written for (HEADER_VERSION_NUMBER) is refused. Failed calls raise NativeSoftmaxError (a
ValueError) with the library's status and message. The mathematics, including the cross-entropy
gradient ∂E/∂z_i = o_i·Σ_j y_j − y_i, is derived in shared/seed/softmax-cross-entropy-gradient.md.
"""

from ._native import (
    HEADER_VERSION_NUMBER,
    HEADER_VERSION_STRING,
    LibraryLoadError,
    NativeSoftmaxError,
    NativeSoftmaxTypeError,
)
from ._ops import (
    cross_entropy,
    isa,
    library_path,
    library_version,
    log_softmax,
    log_softmax_backward,
    softmax,
    softmax_backward,
    softmax_jacobian,
)

__version__ = HEADER_VERSION_STRING

__all__ = [
    "softmax",
    "log_softmax",
    "softmax_backward",
    "log_softmax_backward",
    "softmax_jacobian",
    "cross_entropy",
    "isa",
    "library_version",
    "library_path",
    "NativeSoftmaxError",
    "NativeSoftmaxTypeError",
    "LibraryLoadError",
    "HEADER_VERSION_NUMBER",
    "__version__",
]

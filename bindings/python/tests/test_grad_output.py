"""cross_entropy(..., reduction="none", grad_output=...): one upstream gradient per row, applied by
the library (nsm_cross_entropy_options.grad_output): row r's gradient is
grad_output[r]·grad_scale·∂loss_r/∂z_r, against the float64 reference; the loss does not change;
the shapes and errors; and nativesoftmax.torch's backward, which passes the upstream gradient to
the library instead of scaling the gradient in torch.
"""

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref
from nativesoftmax import _native

DTYPES = [np.float32, np.float64]
IDS = ["float32", "float64"]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _problem(rng, dtype, soft, rows=9, cols=7):
    z = rng.uniform(-20, 20, size=(rows, cols)).astype(dtype)
    if soft:
        t = rng.uniform(0, 1, size=(rows, cols)).astype(dtype)
        t[4] = 0.0  # a row that asks for nothing
    else:
        t = rng.integers(0, cols, size=rows)
        t[[1, 5]] = -100
    return z, t


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("weighted,eps,grad_scale", [(False, 0.0, 1.0), (True, 0.2, -0.5)],
                         ids=["plain", "weights-smoothing-scale"])
def test_per_row_gradient_matches_the_reference(dtype, soft, weighted, eps, grad_scale):
    rng = np.random.default_rng(900 + 2 * soft + (dtype == np.float32) + 4 * weighted)
    z, t = _problem(rng, dtype, soft)
    rows, cols = z.shape
    w = rng.uniform(0.5, 2.0, size=cols).astype(dtype) if weighted else None
    upstream = rng.uniform(-3, 3, size=rows).astype(dtype)
    upstream[0] = 0.0
    options = dict(weight=w, reduction="none", label_smoothing=eps, grad_scale=grad_scale)
    loss, grad = nsm.cross_entropy(z, t, return_grad=True, grad_output=upstream, **options)
    plain_loss, _ = nsm.cross_entropy(z, t, return_grad=True, **options)
    assert _same(loss, plain_loss), "the loss changed with grad_output"
    _, rgrad, info = ref.cross_entropy(z, t, w, reduction="none", label_smoothing=eps,
                                       grad_scale=grad_scale, soft=soft)
    expected = upstream.astype(np.float64)[:, None] * rgrad  # grad_r = grad_output[r]·∂(s·loss_r)/∂z_r
    unit = 1e-6 if dtype == np.float32 else 1e-12
    tolerance = unit * np.abs(grad_scale * upstream.astype(np.float64))[:, None] * \
        np.sum(np.abs(info["y"]), axis=1, keepdims=True) + 1e-300
    assert grad.dtype == dtype
    bad = np.abs(grad - expected) > tolerance
    assert not np.any(bad), "grad differs from grad_output[r]·reference at %s" % (np.argwhere(bad)[:5],)
    assert np.all(grad[0] == 0), "a zero upstream gradient must give a zero row"


def test_shapes_follow_the_loss():
    """[N, C, d1] logits take a [N, d1] grad_output (the loss's shape); [C] logits a scalar."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2, 5, 3))
    t = rng.integers(0, 5, size=(2, 3))
    upstream = rng.normal(size=(2, 3))
    loss, grad = nsm.cross_entropy(z, t, reduction="none", return_grad=True, grad_output=upstream)
    _, plain = nsm.cross_entropy(z, t, reduction="none", return_grad=True)
    assert loss.shape == (2, 3) and grad.shape == z.shape
    np.testing.assert_allclose(grad, plain * upstream[:, None, :], rtol=1e-14, atol=1e-300)
    loss1, grad1 = nsm.cross_entropy(z[0, :, 0], t[0, 0], reduction="none", return_grad=True,
                                     grad_output=np.float64(-2.0))
    _, plain1 = nsm.cross_entropy(z[0, :, 0], t[0, 0], reduction="none", return_grad=True)
    assert np.ndim(loss1) == 0
    np.testing.assert_allclose(grad1, -2.0 * plain1, rtol=1e-15)


def test_non_finite_upstream_gradients_stay_in_their_row():
    z = np.linspace(-3, 3, 4 * 6).reshape(4, 6)
    t = np.array([1, 2, -100, 5])
    upstream = np.array([0.5, np.nan, np.nan, np.inf])
    _, grad = nsm.cross_entropy(z, t, reduction="none", return_grad=True, grad_output=upstream)
    _, half = nsm.cross_entropy(z, t, reduction="none", return_grad=True, grad_scale=0.5)
    assert _same(grad[0], half[0])
    assert np.all(np.isnan(grad[1]))
    assert np.all(grad[2] == 0), "an ignored row stays 0 whatever its upstream gradient"
    assert not np.any(np.isfinite(grad[3]))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_grad_output_with_a_reduced_loss_is_refused_by_the_library(reduction):
    z = np.zeros((3, 4))
    with pytest.raises(nsm.NativeSoftmaxError) as e:
        nsm.cross_entropy(z, np.array([0, 1, 2]), reduction=reduction, return_grad=True,
                          grad_output=np.ones(3))
    assert e.value.status == _native.NSM_ERR_INVALID_ARGUMENT
    assert "grad_output" in e.value.message and not e.value.message.startswith("binding")


def test_grad_output_of_another_shape_is_refused():
    with pytest.raises(nsm.NativeSoftmaxError) as e:
        nsm.cross_entropy(np.zeros((3, 4)), np.array([0, 1, 2]), reduction="none",
                          return_grad=True, grad_output=np.ones(4))
    assert e.value.status == _native.NSM_ERR_INVALID_SHAPE


def test_grad_output_overlapping_the_gradient_is_refused():
    z = np.linspace(-1, 1, 12).reshape(3, 4)
    g = np.zeros((3, 4))
    before = g.copy()
    with pytest.raises(nsm.NativeSoftmaxError) as e:
        nsm.cross_entropy(z, np.array([0, 1, 2]), reduction="none", grad_out=g,
                          grad_output=g.reshape(-1)[:3])
    assert e.value.status == _native.NSM_ERR_OVERLAP
    assert _same(g, before), "a refused call wrote the gradient"


# ---- nativesoftmax.torch: the upstream gradient goes to the library -----------------------------

@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_torch_backward_is_one_library_call_with_the_upstream_gradient(reduction, soft):
    """The autograd gradient is bit for bit the library's gradient computed with the upstream
    gradient (grad_output per row for "none", grad_scale otherwise): nothing is scaled in torch."""
    torch = pytest.importorskip("torch")
    import nativesoftmax.torch as nt
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 5, generator=g).requires_grad_(True)
    t = torch.rand(6, 5, generator=g) if soft else torch.tensor([0, 4, -100, 2, 1, 3])
    w = torch.linspace(0.5, 2.0, 5)
    loss = nt.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=0.1)
    upstream = torch.randn(loss.shape, generator=g) * 3
    loss.backward(upstream)
    options = dict(weight=w, reduction=reduction, label_smoothing=0.1, return_grad=True)
    if reduction == "none":
        _, want = nsm.cross_entropy(x.detach(), t, grad_output=upstream, **options)
    else:
        _, want = nsm.cross_entropy(x.detach(), t, grad_scale=float(upstream), **options)
    assert torch.equal(x.grad, want)
    theirs = x.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(theirs, t, weight=w, reduction=reduction,
                                      label_smoothing=0.1).backward(upstream)
    torch.testing.assert_close(x.grad, theirs.grad, rtol=1e-5, atol=1e-6)


def test_torch_per_row_upstream_with_nan_and_an_ignored_row_matches_torch():
    torch = pytest.importorskip("torch")
    import nativesoftmax.torch as nt
    x = torch.linspace(-2, 2, 4 * 3, dtype=torch.float64).reshape(4, 3).requires_grad_(True)
    t = torch.tensor([0, -100, 2, 1])
    upstream = torch.tensor([1.5, float("nan"), float("nan"), 0.0], dtype=torch.float64)
    nt.cross_entropy(x, t, reduction="none").backward(upstream)
    theirs = x.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(theirs, t, reduction="none").backward(upstream)
    torch.testing.assert_close(x.grad, theirs.grad, equal_nan=True)
    assert torch.all(x.grad[1] == 0) and torch.all(torch.isnan(x.grad[2]))


def test_a_version_1_options_struct_is_still_accepted():
    """A caller built against version 1 passes 32 bytes (no grad_output): the same results as
    the version-2 struct with grad_output NULL."""
    import ctypes
    import struct

    z = np.linspace(-2, 2, 12).reshape(3, 4)
    t = np.array([0, 3, 1], dtype=np.int64)
    version1 = struct.pack("@IiqddP", 32, _native.NSM_REDUCTION_NONE, -100, 0.1, 0.5, 0)[:32]
    buffer = ctypes.create_string_buffer(version1, 32)
    loss, grad = np.empty(3), np.empty((3, 4))
    fn = _native.functions()["nsm_cross_entropy_f64"]
    status = fn(3, 4, z.ctypes.data, 4, t.ctypes.data, None, ctypes.addressof(buffer),
                loss.ctypes.data, grad.ctypes.data, 4)
    assert status == _native.NSM_OK, _native.lib().nsm_last_error()
    want_loss, want_grad = nsm.cross_entropy(z, t, reduction="none", label_smoothing=0.1,
                                             grad_scale=0.5, return_grad=True)
    assert _same(loss, want_loss) and _same(grad, want_grad)

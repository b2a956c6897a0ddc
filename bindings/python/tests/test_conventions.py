"""PyTorch's and scipy's calling conventions: dim= for axis=, out=, a tuple of axes, float16 in and
out, torch tensors in and out, and cross_entropy over [N, C, d1, …] logits."""

import subprocess
import sys

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref
from nativesoftmax import _native

FORWARD = ["softmax", "log_softmax"]
BACKWARD = ["softmax_backward", "log_softmax_backward"]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _raises(status_name, fn, *args, **kwargs):
    with pytest.raises(nsm.NativeSoftmaxError) as info:
        fn(*args, **kwargs)
    assert info.value.status_name == status_name, str(info.value)
    return info.value


def _ref_along(op, z, axes):
    """The float64 reference of op over the flattened ``axes`` of z."""
    axes = tuple(sorted(a % z.ndim for a in axes))
    rest = [i for i in range(z.ndim) if i not in axes]
    moved = np.transpose(z, rest + list(axes))
    lead = moved.shape[:len(rest)]
    flat = moved.reshape(lead + (-1,))
    out = getattr(ref, op)(flat).reshape(moved.shape)
    return np.transpose(out, np.argsort(rest + list(axes)))


# ------------------------------------------------------------------------------------------------
# dim=
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", FORWARD + BACKWARD)
def test_dim_is_axis(op):
    rng = np.random.default_rng(1100)
    z = rng.uniform(-5, 5, size=(3, 4, 5))
    args = (z,) if op in FORWARD else (rng.standard_normal(z.shape), nsm.softmax(z, axis=1))
    fn = getattr(nsm, op)
    for dim in (0, 1, -1, (0, 2)):
        assert _same(fn(*args, dim=dim), fn(*args, axis=dim)), (op, dim)
    with pytest.raises(TypeError, match="both axis=.* and dim="):
        fn(*args, axis=1, dim=1)
    with pytest.raises(TypeError, match="both axis="):
        fn(*args, axis=-1, dim=0)  # -1 passed explicitly is still "given"


# ------------------------------------------------------------------------------------------------
# out=
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: d.__name__)
@pytest.mark.parametrize("op", FORWARD + BACKWARD)
def test_out_gets_the_result_in_every_layout(op, dtype):
    rng = np.random.default_rng(1110)
    z = rng.uniform(-5, 5, size=(4, 6)).astype(dtype)
    args = (z,) if op in FORWARD else (rng.standard_normal(z.shape).astype(dtype),
                                       nsm.softmax(z).astype(dtype))
    fn = getattr(nsm, op)
    for axis in (-1, 0):
        want = fn(*args, axis=axis)
        wide = np.full((4, 9), 7.0, dtype)
        layouts = {"C": np.empty((4, 6), dtype), "F": np.empty((4, 6), dtype, order="F"),
                   "column slice": wide[:, 2:8], "reversed rows": np.empty((4, 6), dtype)[::-1]}
        for name, out in layouts.items():
            got = fn(*args, axis=axis, out=out)
            assert got is out, name
            assert _same(np.ascontiguousarray(out), want), "%s %s axis=%d out %s" % (
                op, dtype.__name__, axis, name)
        assert np.all(wide[:, :2] == 7) and np.all(wide[:, 8:] == 7), "wrote beside out"


def test_out_written_directly_where_the_layout_allows():
    z = np.random.default_rng(1111).standard_normal((3, 5))
    wide = np.zeros((3, 8))
    out = wide[:, 1:6]
    assert nsm._ops._Destination(out, out.shape, (1,), (3, 5), out.dtype, out.dtype).direct
    assert not nsm._ops._Destination(out, out.shape, (0,), (5, 3), out.dtype, out.dtype).direct
    nsm.softmax(z, out=out)
    np.testing.assert_array_equal(out, nsm.softmax(z))
    assert np.all(wide[:, :1] == 0) and np.all(wide[:, 6:] == 0)


@pytest.mark.parametrize("op", FORWARD)
def test_out_may_be_the_input(op):
    rng = np.random.default_rng(1112)
    for z in (rng.standard_normal((4, 7)), np.asfortranarray(rng.standard_normal((4, 7))),
              rng.standard_normal((4, 7)).astype(np.float16)):
        want = getattr(nsm, op)(z)
        assert getattr(nsm, op)(z, out=z) is z
        assert _same(z, want), (op, z.dtype, z.flags.f_contiguous)
    g, o = rng.standard_normal((3, 5)), nsm.softmax(rng.standard_normal((3, 5)))
    want = nsm.softmax_backward(g, o)
    assert nsm.softmax_backward(g, o, out=o) is o and _same(o, want)


def test_bad_out_is_refused_and_nothing_is_written():
    z = np.random.default_rng(1113).standard_normal((3, 4))
    for out, status in ((np.zeros((4, 3)), "NSM_ERR_INVALID_SHAPE"),
                        (np.zeros(12), "NSM_ERR_INVALID_SHAPE"),
                        (np.zeros((3, 4), np.float32), "NSM_ERR_INVALID_ARGUMENT"),
                        (np.zeros((3, 4), np.int64), "NSM_ERR_INVALID_ARGUMENT"),
                        ([[0.0] * 4] * 3, "NSM_ERR_INVALID_ARGUMENT")):
        exc = _raises(status, nsm.softmax, z, out=out)
        assert exc.message.startswith("binding: out"), exc.message
        assert np.all(np.asarray(out) == 0)
        _raises(status, nsm.log_softmax_backward, z, z, out=out)
    ro = np.zeros((3, 4))
    ro.flags.writeable = False
    assert "read-only" in _raises("NSM_ERR_INVALID_ARGUMENT", nsm.log_softmax, z, out=ro).message
    # float16 in: the result is float16, so out must be too
    _raises("NSM_ERR_INVALID_ARGUMENT", nsm.softmax, z.astype(np.float16),
            out=np.zeros((3, 4), np.float32))
    # a library failure (no classes) writes nothing either
    out = np.full((3, 0), 5.0)
    _raises("NSM_ERR_INVALID_SHAPE", nsm.softmax, np.zeros((3, 0)), out=out)



def test_out_partially_overlapping_the_input_is_refused():
    buf = np.random.default_rng(1114).standard_normal((4, 8))
    before = buf.copy()
    exc = _raises("NSM_ERR_OVERLAP", nsm.softmax, buf[:, :6], out=buf[:, 1:7])
    assert exc.message == _native.text_of(_native.lib().nsm_last_error)
    assert _same(buf, before), "written on failure"


# ------------------------------------------------------------------------------------------------
# A tuple of axes (scipy)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op", FORWARD)
def test_tuple_axis_normalises_over_the_flattened_axes(op, dtype):
    rng = np.random.default_rng(1120)
    z = rng.uniform(-20, 20, size=(3, 4, 5, 2)).astype(dtype)
    tol = {"softmax": (1e-6, 1e-37), "log_softmax": (2e-6, 2e-6)}[op] if dtype == np.float32 \
        else (1e-12, 1e-12)
    for axes in ((0, 2), (1, 2, 3), (-1, 0), (3, 1), (0, 1, 2, 3), (2,), ()):
        got = getattr(nsm, op)(z, axis=axes)
        assert got.shape == z.shape and got.dtype == dtype
        ref.assert_close(got, _ref_along(op, z, axes), *tol, "%s axis=%s" % (op, axes))
    assert _same(getattr(nsm, op)(z, axis=(0, 1, 2, 3)), getattr(nsm, op)(z, axis=None))
    assert _same(getattr(nsm, op)(z, axis=(2,)), getattr(nsm, op)(z, axis=2))
    with pytest.raises(ValueError, match="twice"):
        getattr(nsm, op)(z, axis=(1, -3))
    with pytest.raises(IndexError):  # numpy's AxisError
        getattr(nsm, op)(z, axis=(0, 4))


def test_tuple_axis_agrees_with_scipy():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(1121)
    z = rng.uniform(-10, 10, size=(2, 3, 4))
    for axes in ((0, 1), (0, 2), (1, 2), (0, 1, 2)):
        ref.assert_close(nsm.softmax(z, axis=axes), special.softmax(z, axis=axes), 1e-12, 1e-300,
                         "scipy softmax axis=%s" % (axes,))
        ref.assert_close(nsm.log_softmax(z, axis=axes), special.log_softmax(z, axis=axes),
                         1e-12, 1e-12, "scipy log_softmax axis=%s" % (axes,))


def test_tuple_axis_backward_and_out():
    rng = np.random.default_rng(1122)
    z = rng.standard_normal((3, 4, 5))
    g = rng.standard_normal(z.shape)
    o = nsm.softmax(z, axis=(0, 2))
    got = nsm.softmax_backward(g, o, axis=(0, 2))
    # the VJP over the flattened axes: o ⊙ (g − Σ g·o) with the sum over axes 0 and 2
    want = o * (g - np.sum(g * o, axis=(0, 2), keepdims=True))
    ref.assert_close(got, want, 1e-12, 1e-12, "softmax_backward axis=(0, 2)")
    out = np.empty_like(z)
    assert nsm.softmax(z, axis=(0, 2), out=out) is out and _same(out, o)


# ------------------------------------------------------------------------------------------------
# float16
# ------------------------------------------------------------------------------------------------

def _float16(a):
    """float32 results as the library's float16 functions store them: rounded once to nearest
    even, and 0 (of the same sign) below the smallest normal float16, 2^-14."""
    h = np.asarray(a).astype(np.float16)
    return np.where(np.abs(h) < np.float16(2.0 ** -14), np.copysign(np.float16(0), h), h).astype(np.float16)


def test_float16_in_gives_float16_out_computed_in_float32():
    rng = np.random.default_rng(1130)
    z16 = rng.uniform(-8, 8, size=(5, 11)).astype(np.float16)
    z32 = z16.astype(np.float32)
    for op in FORWARD:
        got = getattr(nsm, op)(z16)
        assert got.dtype == np.float16
        assert _same(got, _float16(getattr(nsm, op)(z32))), op
    g16 = rng.standard_normal(z16.shape).astype(np.float16)
    o16 = nsm.softmax(z16)
    got = nsm.softmax_backward(g16, o16)
    assert got.dtype == np.float16
    assert _same(got, _float16(nsm.softmax_backward(g16.astype(np.float32), o16.astype(np.float32))))
    assert nsm.softmax_backward(g16, o16.astype(np.float32)).dtype == np.float32
    assert nsm.softmax_jacobian(z16[0]).dtype == np.float16
    t = np.array([0, 3, 10, 2, -100])
    loss, grad = nsm.cross_entropy(z16, t, return_grad=True, label_smoothing=0.1)
    loss32, grad32 = nsm.cross_entropy(z32, t, return_grad=True, label_smoothing=0.1)
    # the loss stays float32 (the float16 functions' loss is float32), the gradient is float16
    assert loss.dtype == np.float32 and grad.dtype == np.float16
    assert _same(loss, loss32) and _same(grad, _float16(grad32))
    losses = nsm.cross_entropy(z16, t, reduction="none")
    assert losses.dtype == np.float32 and losses.shape == (5,)


def test_float16_grad_out_and_in_place_over_float16_logits():
    rng = np.random.default_rng(1131)
    z = rng.uniform(-8, 8, size=(4, 6)).astype(np.float16)
    t = np.array([0, 1, 5, 2])
    want_loss, want_grad = nsm.cross_entropy(z, t, return_grad=True)
    g = np.empty((4, 6), np.float16)
    loss, grad = nsm.cross_entropy(z, t, grad_out=g)
    assert grad is g and _same(loss, want_loss) and _same(g, want_grad)
    # float16 goes to the library as it is, so a grad_out it cannot write directly is refused as
    # a float32 one is
    _raises("NSM_ERR_INVALID_LEADING_DIM", nsm.cross_entropy, z, t, grad_out=np.empty((4, 6), np.float16, order="F"))
    loss, grad = nsm.cross_entropy(z, t, grad_out=z)
    assert grad is z and _same(z, want_grad)
    exc = _raises("NSM_ERR_INVALID_ARGUMENT", nsm.cross_entropy, z, t,
                  grad_out=np.empty((4, 6), np.float32))
    assert "float16" in exc.message and "float32" in exc.message, exc.message


# ------------------------------------------------------------------------------------------------
# cross_entropy over [N, C, d1, …] (PyTorch's layout), with numpy
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_cross_entropy_class_axis_1(soft):
    rng = np.random.default_rng(1140 + soft)
    n, c, d1, d2 = 3, 5, 4, 2
    z = rng.uniform(-6, 6, size=(n, c, d1, d2))
    if soft:
        t = rng.dirichlet(np.ones(c), size=(n, d1, d2)).transpose(0, 3, 1, 2)
        t_rows = np.moveaxis(t, 1, -1).reshape(-1, c)
    else:
        t = rng.integers(0, c, size=(n, d1, d2))
        t[0, 1, 1] = -100
        t_rows = t.reshape(-1)
    z_rows = np.moveaxis(z, 1, -1).reshape(-1, c)
    w = rng.uniform(0.5, 2, size=c)
    for reduction in ("none", "sum", "mean"):
        loss, grad = nsm.cross_entropy(z, t, weight=w, reduction=reduction, label_smoothing=0.1,
                                       return_grad=True, grad_scale=0.5)
        rloss, rgrad, _ = ref.cross_entropy(z_rows, t_rows, weight=w, reduction=reduction,
                                            label_smoothing=0.1, grad_scale=0.5, soft=soft)
        if reduction == "none":
            assert loss.shape == (n, d1, d2)
            rloss = np.reshape(rloss, (n, d1, d2))
        else:
            assert np.ndim(loss) == 0
        ref.assert_close(loss, rloss, 1e-12, 1e-12, "loss %s" % reduction)
        assert grad.shape == z.shape
        rgrad = np.moveaxis(rgrad.reshape(n, d1, d2, c), -1, 1)
        ref.assert_close(grad, rgrad, 1e-12, 1e-12, "grad %s" % reduction)
        g = np.empty_like(z)
        loss2, grad2 = nsm.cross_entropy(z, t, weight=w, reduction=reduction,
                                         label_smoothing=0.1, grad_scale=0.5, grad_out=g)
        assert grad2 is g and _same(g, np.ascontiguousarray(grad)) and _same(loss2, loss)
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, z,
            np.zeros((n, c, d1), np.float64 if soft else np.int64))
    _raises("NSM_ERR_INVALID_SHAPE", nsm.cross_entropy, np.float64(1.0), np.int64(0))


# ------------------------------------------------------------------------------------------------
# torch tensors
# ------------------------------------------------------------------------------------------------

def test_importing_the_package_does_not_import_torch():
    code = ("import sys, nativesoftmax as n\n"
            "n.softmax([1.0, 2.0]); n.cross_entropy([[1.0, 2.0]], [1])\n"
            "print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def _env():
    import os
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_native.PACKAGE_DIR.parent)
    return env


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_tensors_in_give_tensors_out(torch, dtype):
    tdtype = getattr(torch, dtype)
    rng = np.random.default_rng(1150)
    base = torch.from_numpy(rng.uniform(-5, 5, size=(4, 7))).to(tdtype)
    x = base.clone().requires_grad_(True)
    exact = np.float32 if dtype in ("float16", "bfloat16") else getattr(np, dtype)
    for op in FORWARD:
        got = getattr(nsm, op)(x, dim=0)
        assert isinstance(got, torch.Tensor) and got.dtype == tdtype and not got.requires_grad
        want = getattr(nsm, op)(base.to(torch.float64).numpy().astype(exact), axis=0)
        np.testing.assert_array_equal(got.to(torch.float64).numpy(),
                                      torch.from_numpy(want).to(tdtype).to(torch.float64).numpy())
        g = torch.ones_like(base)
        back = getattr(nsm, op + "_backward")(g, got, dim=0)
        assert isinstance(back, torch.Tensor) and back.dtype == tdtype
    t = torch.tensor([0, 6, 2, -100])
    loss, grad = nsm.cross_entropy(x, t, return_grad=True)
    loss_dtype = torch.float32 if dtype in ("float16", "bfloat16") else tdtype  # 16-bit: float32 loss
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == loss_dtype
    assert isinstance(grad, torch.Tensor) and grad.shape == x.shape and grad.dtype == tdtype
    assert isinstance(nsm.softmax_jacobian(x[0]), torch.Tensor)


def test_tensors_share_memory_with_the_arrays(torch):
    x = torch.randn(3, 5, dtype=torch.float64)
    want = nsm.softmax(x.numpy())
    out = torch.empty(3, 5, dtype=torch.float64)
    assert nsm.softmax(x, out=out) is out
    np.testing.assert_array_equal(out.numpy(), want)
    assert nsm.softmax(x, out=x) is x  # in place: x's own memory, written by the library
    np.testing.assert_array_equal(x.numpy(), want)
    # the result wraps the numpy result without a copy
    y = nsm.log_softmax(x)
    y_np = y.numpy()
    y_np[0, 0] = 123.0
    assert y[0, 0].item() == 123.0
    # bfloat16 out: computed in float32, rounded into it
    xb = torch.randn(2, 6).to(torch.bfloat16)
    outb = torch.empty(2, 6, dtype=torch.bfloat16)
    assert nsm.softmax(xb, out=outb) is outb
    assert torch.equal(outb, nsm.softmax(xb))
    wrong = torch.zeros(1, 6, dtype=torch.bfloat16)  # broadcastable, but not the result's shape
    with pytest.raises(nsm.NativeSoftmaxError, match="shape"):
        nsm.softmax(xb, out=wrong)
    assert torch.equal(wrong, torch.zeros(1, 6, dtype=torch.bfloat16))
    with pytest.raises(nsm.NativeSoftmaxError, match="requires grad"):
        nsm.softmax(x, out=torch.empty(3, 5, dtype=torch.float64, requires_grad=True))
    with pytest.raises(nsm.NativeSoftmaxError, match="dtype"):
        nsm.softmax(x, out=torch.empty(3, 5, dtype=torch.float32))


def test_tensor_on_another_device_is_refused(torch):
    x = torch.empty(2, 3, device="meta")
    exc = _raises("NSM_ERR_INVALID_ARGUMENT", nsm.softmax, x)
    assert "meta" in exc.message and "cpu" in exc.message


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_cross_entropy_on_torch_layouts_matches_torch(torch, soft):
    F = torch.nn.functional
    rng = np.random.default_rng(1160 + soft)
    for shape in ((6, 4), (4,), (3, 4, 5), (2, 4, 3, 2)):
        z = torch.from_numpy(rng.uniform(-5, 5, size=shape))
        tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
        if soft:
            p = rng.dirichlet(np.ones(4), size=tshape)  # classes last
            t = torch.from_numpy(np.moveaxis(p, -1, 1) if len(shape) > 1 else p)
        else:
            t = torch.from_numpy(rng.integers(0, 4, size=tshape))
        w = torch.from_numpy(rng.uniform(0.5, 2, size=4))
        for reduction in ("none", "sum", "mean"):
            zt = z.clone().requires_grad_(True)
            want = F.cross_entropy(zt, t, weight=w, reduction=reduction, label_smoothing=0.2)
            want.backward(torch.full_like(want, 1.5))
            loss, grad = nsm.cross_entropy(z, t, weight=w, reduction=reduction,
                                           label_smoothing=0.2, return_grad=True, grad_scale=1.5)
            what = "shape %s reduction %s" % (shape, reduction)
            assert isinstance(loss, torch.Tensor) and loss.shape == want.shape, what
            ref.assert_close(loss.numpy(), want.detach().numpy(), 1e-12, 1e-12, "loss " + what)
            ref.assert_close(grad.numpy(), zt.grad.numpy(), 1e-12, 1e-12, "grad " + what)

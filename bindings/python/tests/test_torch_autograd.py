"""nativesoftmax.torch: the autograd Functions and CrossEntropyLoss against PyTorch's own, and
torch.autograd.gradcheck in float64. Skipped where torch cannot be imported. build.sh also runs
this file against the installed wheel, from another directory."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import nativesoftmax.torch as nt  # noqa: E402

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def _logits(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * 8 - 4).to(dtype)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 7), -1), ((3, 7), 0), ((2, 3, 4), 1)])
def test_softmax_gradcheck(op, shape, dim):
    x = _logits(shape, seed=len(shape) + dim).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: getattr(nt, op)(t, dim=dim), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_matches_torch_forward_and_backward(op, dtype):
    for shape, dim in (((4, 9), -1), ((3, 5, 6), 1)):
        x = _logits(shape, dtype, seed=7).requires_grad_(True)
        xt = x.detach().clone().requires_grad_(True)
        y, yt = getattr(nt, op)(x, dim=dim), getattr(torch, op)(xt, dim=dim)
        assert y.dtype == dtype and y.requires_grad
        torch.testing.assert_close(y, yt, **TOL[dtype])
        upstream = _logits(shape, dtype, seed=8)
        y.backward(upstream)
        yt.backward(upstream)
        torch.testing.assert_close(x.grad, xt.grad, **TOL[dtype])
        # an expanded upstream gradient (stride 0), as .sum() gives
        x.grad = None
        xt.grad = None
        getattr(nt, op)(x, dim=dim).sum().backward()
        getattr(torch, op)(xt, dim=dim).sum().backward()
        torch.testing.assert_close(x.grad, xt.grad, **TOL[dtype])


def _targets(shape, soft, seed):
    """Targets for logits of ``shape`` (classes on axis 1, or axis 0 for one row)."""
    g = torch.Generator().manual_seed(seed)
    classes = shape[1] if len(shape) > 1 else shape[0]
    if soft:
        p = torch.rand(shape, generator=g, dtype=torch.float64)
        return p / p.sum(dim=1 if len(shape) > 1 else 0, keepdim=True)
    rows = shape[:1] + shape[2:] if len(shape) > 1 else ()
    t = torch.randint(0, classes, rows, generator=g)
    if t.dim() and t.numel() > 1:
        t.view(-1)[1] = -100
    return t


CE_SHAPES = [(6, 5), (5,), (3, 4, 2), (2, 3, 2, 2)]


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
def test_cross_entropy_gradcheck(shape, reduction, soft):
    classes = shape[1] if len(shape) > 1 else shape[0]
    x = _logits(shape, seed=11).requires_grad_(True)
    t = _targets(shape, soft, seed=12)
    w = torch.linspace(0.5, 2.0, classes, dtype=torch.float64)
    for weight, eps in ((None, 0.0), (w, 0.2)):
        fn = lambda z: nt.cross_entropy(z, t, weight=weight, reduction=reduction,  # noqa: E731
                                        label_smoothing=eps)
        assert torch.autograd.gradcheck(fn, (x,)), (shape, reduction, soft, eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
def test_cross_entropy_matches_torch(shape, soft, dtype):
    classes = shape[1] if len(shape) > 1 else shape[0]
    t = _targets(shape, soft, seed=21)
    if soft:
        t = t.to(dtype)
    w = torch.linspace(0.5, 2.0, classes, dtype=dtype)
    for reduction in ("none", "sum", "mean"):
        x = _logits(shape, dtype, seed=22).requires_grad_(True)
        xt = x.detach().clone().requires_grad_(True)
        loss = nt.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=0.1)
        want = F.cross_entropy(xt, t, weight=w, reduction=reduction, label_smoothing=0.1)
        assert loss.shape == want.shape and loss.dtype == dtype
        torch.testing.assert_close(loss, want, **TOL[dtype])
        upstream = torch.rand(loss.shape, dtype=dtype) + 0.5
        loss.backward(upstream)
        want.backward(upstream)
        torch.testing.assert_close(x.grad, xt.grad, **TOL[dtype])


def test_cross_entropy_loss_module():
    w = torch.tensor([1.0, 2.0, 0.5, 1.5])
    ours = nt.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.05)
    theirs = torch.nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.05)
    assert "weight" in dict(ours.named_buffers())
    ours, theirs = ours.double(), theirs.double()
    assert ours.weight.dtype == torch.float64
    x = _logits((8, 4), seed=31).requires_grad_(True)
    xt = x.detach().clone().requires_grad_(True)
    t = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    loss, want = ours(x, t), theirs(xt, t)
    torch.testing.assert_close(loss, want, **TOL[torch.float64])
    loss.backward()
    want.backward()
    torch.testing.assert_close(x.grad, xt.grad, **TOL[torch.float64])
    assert "reduction='mean'" in repr(ours)


def test_training_step_matches_torch():
    """One step of a small MLP: the same parameter gradients through either loss."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    x = torch.randn(10, 6)
    t = torch.randint(0, 3, (10,))
    grads = []
    for loss_fn in (nt.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()):
        model.zero_grad()
        loss_fn(model(x), t).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_no_gradient_for_target_or_weight():
    x = _logits((3, 4), seed=41).requires_grad_(True)
    p = _targets((3, 4), True, seed=42).requires_grad_(True)
    with pytest.raises(RuntimeError, match="no gradient with respect to target"):
        nt.cross_entropy(x, p)
    w = torch.ones(4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="no gradient with respect to weight"):
        nt.cross_entropy(x, torch.tensor([0, 1, 2]), weight=w)


def test_inference_without_grad_computes_only_the_loss():
    x = _logits((3, 4), seed=51)
    with torch.no_grad():
        loss = nt.cross_entropy(x.requires_grad_(True), torch.tensor([0, 1, 2]))
    assert not loss.requires_grad
    torch.testing.assert_close(loss, F.cross_entropy(x.detach(), torch.tensor([0, 1, 2])))


def test_second_derivative_is_refused():
    x = _logits((2, 3), seed=61).requires_grad_(True)
    y = nt.softmax(x)
    (g,) = torch.autograd.grad(y[:, 0].sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_half_precision_tensors():
    for dtype in (torch.float16, torch.bfloat16):
        x = _logits((4, 6), seed=71).to(dtype).requires_grad_(True)
        y = nt.log_softmax(x)
        assert y.dtype == dtype
        y.sum().backward()
        assert x.grad.dtype == dtype
        # computed in float32, rounded once to the tensor's dtype (8 or 11 significant bits)
        want = torch.log_softmax(x.detach().float(), -1)
        tol = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
        torch.testing.assert_close(y.detach().float(), want, rtol=tol, atol=tol)


def test_half_precision_cross_entropy_loss_is_float32():
    target = torch.tensor([0, 5, 2, 3])
    for dtype in (torch.float16, torch.bfloat16):
        x = _logits((4, 6), seed=72).to(dtype).requires_grad_(True)
        loss = nt.cross_entropy(x, target)
        assert loss.dtype == torch.float32
        loss.backward()
        # the loss of the 16-bit values, computed in float32 (the header's bound: 2e-6·(1 + |loss|));
        # the gradient rounded to the dtype
        xf = x.detach().float().requires_grad_(True)
        want = torch.nn.functional.cross_entropy(xf, target)
        want.backward()
        torch.testing.assert_close(loss.detach(), want.detach(), rtol=2e-6, atol=2e-6)
        tol = 2.0 ** -8 if dtype == torch.bfloat16 else 2.0 ** -11
        torch.testing.assert_close(x.grad.float(), xf.grad, rtol=tol, atol=tol)

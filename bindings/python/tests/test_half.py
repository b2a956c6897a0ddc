"""bfloat16 and float16 through the binding: numpy float16 and torch bfloat16/float16 go to the
library's _f16/_bf16 functions as they are and come back in their dtype (cross-entropy losses in
float32). Every op is compared with PyTorch's float64 result on the same 16-bit inputs: each
16-bit output within the float32 bound of its op plus one ulp of its type, and never subnormal
(flushed below the type's smallest normal number). The comparison runs in this process on the
dispatched path, and in a subprocess for every x86-64 path this CPU has (NATIVESOFTMAX_MAX_ISA).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import nativesoftmax as nsm

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))

# (torch dtype, mantissa bits, smallest normal exponent)
TYPES = {"bfloat16": (torch.bfloat16, 7, -126), "float16": (torch.float16, 10, -14)}
LENGTHS = (1, 3, 4, 8, 9, 16, 17, 33, 100, 1000, 8195)


def ulp(x, bits, emin):
    e = np.floor(np.log2(np.maximum(np.abs(x), 2.0 ** emin)))
    return 2.0 ** (e - bits)


def assert_half(got, exact, tol, name, what):
    """got: a 16-bit tensor; exact: float64 tensor; tol: the float32 bound (array or scalar)."""
    dtype, bits, emin = TYPES[name]
    assert got.dtype == dtype, (what, got.dtype)
    g = got.double().numpy()
    e = exact.double().numpy()
    rounded = exact.to(dtype).double().numpy()  # PyTorch's float64 result rounded to the type
    tol = np.broadcast_to(np.asarray(tol, np.float64), e.shape)
    nan = np.isnan(e)
    assert np.array_equal(np.isnan(g), nan), "%s: NaN where the reference has none, or the reverse" % what
    tiny = 2.0 ** emin
    assert not np.any((g != 0) & (np.abs(g) < tiny)), "%s: a subnormal output" % what
    inf = np.isinf(rounded) & ~nan
    assert np.array_equal(g[inf], rounded[inf]), "%s: infinities differ" % what
    finite = ~nan & ~inf
    bound = tol + ulp(e, bits, emin)
    ok = (np.abs(g - rounded) <= bound) | ((g == 0) & (np.abs(e) <= tiny + bound))
    bad = finite & ~ok
    assert not bad.any(), "%s: %d outputs off, first at %s: got %r, exact %r" % (
        what, bad.sum(), np.argwhere(bad)[0], g[bad][0], e[bad][0])


def make(name, rows, cols, seed, low=-8.0, high=8.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, cols, generator=g, dtype=torch.float64) * (high - low) + low).to(TYPES[name][0])


def check_all(name):
    dtype = TYPES[name][0]
    for cols in LENGTHS:
        rows = 3
        z = make(name, rows, cols, cols)
        z64 = z.double()
        for op, ref, tol in ((nsm.softmax, torch.softmax, lambda e: 1e-6 * e.abs().numpy()),
                             (nsm.log_softmax, torch.log_softmax, lambda e: 2e-6 * (1 + e.abs().numpy()))):
            exact = ref(z64, -1)
            assert_half(op(z), exact, tol(exact), name, "%s %s cols=%d" % (op.__name__, name, cols))
        # backward passes: the upstream gradient and the forward output, both 16-bit
        g = make(name, rows, cols, cols + 1, -2, 2)
        o = torch.softmax(make(name, rows, cols, cols + 2, -4, 4).double(), -1).to(dtype)
        g64, o64 = g.double(), o.double()
        exact = o64 * (g64 - (g64 * o64).sum(-1, keepdim=True))
        tol = 1e-6 * o64.abs() * (g64.abs() + (g64 * o64).abs().sum(-1, keepdim=True))
        assert_half(nsm.softmax_backward(g, o), exact, tol.numpy(), name, "softmax_backward %s cols=%d" % (name, cols))
        lo = torch.log_softmax(make(name, rows, cols, cols + 3, -4, 4).double(), -1).to(dtype)
        lo64 = lo.double()
        exact = g64 - lo64.exp() * g64.sum(-1, keepdim=True)
        tol = 1e-6 * (g64.abs() + lo64.exp() * g64.abs().sum(-1, keepdim=True))
        assert_half(nsm.log_softmax_backward(g, lo), exact, tol.numpy(), name, "log_softmax_backward %s cols=%d" % (name, cols))
        if cols <= 100:
            p = torch.softmax(z64[0], -1)
            exact = torch.diag(p) - torch.outer(p, p)
            tol = 2e-6 * p[:, None] * (torch.eye(cols, dtype=torch.float64) + p[None, :])
            assert_half(nsm.softmax_jacobian(z[0]), exact, tol.numpy(), name, "softmax_jacobian %s cols=%d" % (name, cols))
        # cross-entropy, hard labels (one ignored) and soft targets; float32 loss, 16-bit gradient
        labels = torch.randint(0, cols, (rows,), generator=torch.Generator().manual_seed(cols))
        labels[1] = -100
        zg = z64.clone().requires_grad_(True)
        loss64 = torch.nn.functional.cross_entropy(zg, labels, reduction="sum")
        loss64.backward()
        loss, grad = nsm.cross_entropy(z, labels, reduction="sum", return_grad=True)
        assert loss.dtype == torch.float32
        assert abs(float(loss) - float(loss64)) <= 2e-6 * (rows + abs(float(loss64))), (name, cols, float(loss), float(loss64))
        assert_half(grad, zg.grad, 1e-6, name, "cross_entropy grad %s cols=%d" % (name, cols))
        p = torch.softmax(make(name, rows, cols, cols + 4, -3, 3).double(), -1).to(dtype)
        zg = z64.clone().requires_grad_(True)
        loss64 = torch.nn.functional.cross_entropy(zg, p.double(), reduction="mean")
        loss64.backward()
        loss, grad = nsm.cross_entropy(z, p, reduction="mean", return_grad=True)
        assert loss.dtype == torch.float32
        assert abs(float(loss) - float(loss64)) <= 2e-6 * (1 + abs(float(loss64))) * cols, (name, cols)
        assert_half(grad, zg.grad, 1e-6, name, "cross_entropy_soft grad %s cols=%d" % (name, cols))


@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_op_against_torch_float64(name):
    check_all(name)


@pytest.mark.parametrize("isa", ["avx512", "avx2", "sse4.2"])
def test_every_op_on_every_x86_path(isa):
    """check_all in a subprocess capped to ``isa``; skipped where the CPU lacks it."""
    if os.uname().machine != "x86_64":
        pytest.skip("x86-64 paths")
    code = ("import sys; sys.path[:0] = [%r, %r]; import nativesoftmax as nsm, test_half\n"
            "if nsm.isa() != %r: sys.exit(77)\n"
            "test_half.check_all('bfloat16'); test_half.check_all('float16')" % (os.path.dirname(HERE), HERE, isa))
    env = dict(os.environ, NATIVESOFTMAX_MAX_ISA=isa)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if run.returncode == 77:
        pytest.skip("this CPU has no %s path" % isa)
    assert run.returncode == 0, run.stdout + run.stderr


def test_numpy_float16_goes_straight_to_the_f16_function():
    """The result is float16, and a float16 ``out`` is written directly (no float32 copy): the
    flush rule, which a float32 round trip would not apply, shows it is the 16-bit function."""
    z = np.array([[0.0, -10.0, 1.0]], np.float16)  # softmax of −10 here is 1.7e-5 < 2^−14
    out = np.full_like(z, np.nan)
    result = nsm.softmax(z, out=out)
    assert result is out and out.dtype == np.float16
    assert out[0, 1] == 0 and not np.signbit(out[0, 1])
    exact = torch.softmax(torch.from_numpy(z).double(), -1).numpy()
    assert abs(float(out[0, 0]) - exact[0, 0]) <= 2.0 ** -11


def test_torch_bfloat16_out_is_written_in_place():
    z = make("bfloat16", 4, 50, 9)
    out = torch.empty(4, 50, dtype=torch.bfloat16)
    assert nsm.softmax(z, out=out) is out
    assert_half(out, torch.softmax(z.double(), -1), 1e-6, "bfloat16", "softmax out=")
    # a non-contiguous bfloat16 input (every other column) is copied once and still right
    wide = make("bfloat16", 4, 100, 10)
    view = wide[:, ::2]
    assert_half(nsm.log_softmax(view), torch.log_softmax(view.double(), -1), 2e-6 * 12, "bfloat16", "strided")


def test_bad_input_writes_nothing():
    z = make("bfloat16", 3, 5, 11)
    grad = torch.full((3, 5), 7.0, dtype=torch.bfloat16)
    with pytest.raises(nsm.NativeSoftmaxError):
        nsm.cross_entropy(z, torch.tensor([0, 5, 1]), reduction="none", grad_out=grad)
    assert bool((grad == 7.0).all())
    h = np.full((3, 5), 3.0, np.float16)
    with pytest.raises(nsm.NativeSoftmaxError):
        nsm.softmax(h, out=h[:, :4])
    assert (h == 3.0).all()

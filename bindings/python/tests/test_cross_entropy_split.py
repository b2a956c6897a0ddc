"""The vocabulary-split cross-entropy (nsm.cross_entropy_partial / _merge / _finish; the header's
nsm_cross_entropy_partial_*, _merge, _finish_*; docs/derivation.md §7): random splits of the
columns (empty and single-column shards included) merged in random tree shapes, against the
float64 reference (reference.py) and the unsplit nsm.cross_entropy; the same split and order give
the same bits at 1, 2 and 7 threads; a dominant class keeps its tiny loss; bad input is refused
with nothing written; examples/vocab_parallel.py runs two gloo processes and checks itself."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nativesoftmax as nsm
import reference as ref

ROOT = Path(__file__).resolve().parents[3]
UNIT = {np.float32: 1e-6, np.float64: 1e-12}


def _split(rng, vocab, shards):
    """Random sorted boundaries: repeats give empty shards, neighbours single-column ones."""
    inner = np.sort(rng.integers(0, vocab + 1, shards - 1))
    return [0, *inner.tolist(), vocab]


def _merge_tree(rng, parts):
    """Merge neighbours in a random order until one is left (every tree shape is reachable);
    returns the merged statistics and the order used."""
    parts, order = list(parts), []
    while len(parts) > 1:
        i = int(rng.integers(0, len(parts) - 1))
        order.append(i)
        parts[i:i + 2] = [nsm.cross_entropy_merge(parts[i], parts[i + 1])]
    return parts[0], order


class _Order:
    """Stands for the generator in _merge_tree and replays a recorded merge order."""

    def __init__(self, order):
        self._order = list(order)

    def integers(self, lo, hi):
        return self._order.pop(0)


def _run(z, target, bounds, rng, **options):
    """Partial per shard, merged in a random tree, finished per shard: (loss of shard 0, every
    shard's loss, the concatenated gradient, the merge order, the shard statistics)."""
    vocab = z.shape[1]
    weight = options.pop("weight", None)
    reduction = options.pop("reduction", "mean")
    grad_output = options.pop("grad_output", None)
    grad_scale = options.pop("grad_scale", 1.0)
    soft = np.asarray(target).dtype.kind == "f"
    shards = list(zip(bounds[:-1], bounds[1:]))

    def cut(a, lo, hi):
        return np.ascontiguousarray(a[:, lo:hi])

    parts = [nsm.cross_entropy_partial(cut(z, lo, hi), cut(target, lo, hi) if soft else target, lo, vocab,
                                       weight=None if weight is None else weight[lo:hi], **options)
             for lo, hi in shards]
    merged, order = _merge_tree(rng, parts)
    losses, grads = [], []
    for lo, hi in shards:
        loss, grad = nsm.cross_entropy_finish(cut(z, lo, hi), cut(target, lo, hi) if soft else target, merged, lo, vocab,
                                              weight=None if weight is None else weight[lo:hi], reduction=reduction,
                                              grad_scale=grad_scale, grad_output=grad_output, **options)
        losses.append(np.asarray(loss))
        grads.append(grad)
    return losses[0], losses, np.concatenate(grads, axis=1), order, parts


CASES = [(dtype, soft, reduction, eps, weighted)
         for dtype in (np.float32, np.float64) for soft in (False, True)
         for reduction in ("none", "sum", "mean") for eps in (0.0, 0.2) for weighted in (False, True)]


@pytest.mark.parametrize("dtype,soft,reduction,eps,weighted", CASES)
def test_random_splits_match_the_reference_and_the_unsplit_call(dtype, soft, reduction, eps, weighted):
    rng = np.random.default_rng([int(soft), int(eps * 10), int(weighted), len(reduction)])
    for vocab in (1, 2, 5, 33, 300):
        rows = 6
        z = rng.uniform(-6, 6, (rows, vocab)).astype(dtype)
        z[1, vocab // 2] = 20 if dtype == np.float32 else 40  # a dominant class
        if soft:
            target = rng.uniform(0, 1, (rows, vocab)).astype(dtype) * (rng.uniform(size=(rows, vocab)) > 0.3)
            target[2] = 0  # a row that asks for nothing
        else:
            target = rng.integers(0, vocab, rows)
            target[3] = -100
        weight = rng.uniform(0.25, 2, vocab).astype(dtype) if weighted else None
        grad_output = rng.uniform(-2, 2, rows).astype(dtype) if reduction == "none" else None
        expected, expected_grad, info = ref.cross_entropy(z, target, weight=weight, reduction=reduction,
                                                         label_smoothing=eps, soft=soft)
        if grad_output is not None:
            expected_grad = expected_grad * grad_output.astype(np.float64)[:, None]
        unsplit, unsplit_grad = nsm.cross_entropy(z, target, weight=weight, reduction=reduction, label_smoothing=eps,
                                                  return_grad=True, grad_output=grad_output)
        y = info["y"]
        lse = np.log(np.sum(np.exp(z.astype(np.float64) - z.max(1, keepdims=True)), 1)) + z.max(1)
        size = np.sum(np.abs(y) * (1 + np.abs(lse[:, None] - z)), 1)
        row_tol = 2 * UNIT[dtype] * size
        tol = row_tol if reduction == "none" else np.sum(row_tol) / (1 if reduction == "sum" else abs(
            rows if soft else float(np.sum((weight if weighted else np.ones(vocab))[target[target != -100]]))))
        s = np.abs(info["s"]) * (np.abs(grad_output) if grad_output is not None else 1.0)
        grad_tol = 1 * UNIT[dtype] * (s * np.sum(np.abs(y), 1))[:, None] + (1e-37 if dtype == np.float32 else 1e-300)
        for shards in (1, 2, 3, 5):
            bounds = _split(rng, vocab, shards)
            what = "%s %s %s eps %g weighted %s vocab %d split %s" % (
                np.dtype(dtype).name, "soft" if soft else "hard", reduction, eps, weighted, vocab, bounds)
            loss, losses, grad, order, parts = _run(z, target, bounds, rng, weight=weight, reduction=reduction,
                                                    label_smoothing=eps, grad_output=grad_output)
            ref.assert_close(loss, expected, 0, tol, what + " loss vs reference")
            ref.assert_close(loss, unsplit, 0, 2 * tol, what + " loss vs unsplit")
            ref.assert_close(grad, expected_grad, 0, grad_tol, what + " grad vs reference")
            ref.assert_close(grad, unsplit_grad, 0, 2 * grad_tol, what + " grad vs unsplit")
            for other in losses[1:]:
                assert other.tobytes() == losses[0].tobytes(), what + ": shards' losses differ"
            # The same split merged in the same order again: the same bits, loss and gradient.
            loss2, _, grad2, _, _ = _run(z, target, bounds, _Order(order), weight=weight, reduction=reduction,
                                         label_smoothing=eps, grad_output=grad_output)
            assert loss2.tobytes() == loss.tobytes() and grad2.tobytes() == grad.tobytes(), what + ": other bits"


def test_same_split_same_order_same_bits_at_1_2_7_threads():
    rng = np.random.default_rng(5)
    z = rng.normal(0, 4, (200, 3001)).astype(np.float32)
    t = rng.integers(0, 3001, 200)
    bounds = [0, 1000, 1001, 1001, 3001]
    before = nsm.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 7):
            nsm.set_num_threads(threads)
            loss, _, grad, _, parts = _run(z, t, bounds, np.random.default_rng(1), label_smoothing=0.1)
            results.append((np.asarray(loss).tobytes(), grad.tobytes(), b"".join(p.tobytes() for p in parts)))
    finally:
        nsm.set_num_threads(before)
    assert results[0] == results[1] == results[2]


def test_dominant_class_split_in_two_keeps_its_tiny_loss():
    z = np.array([[20.0, 0.0]], np.float32)
    a = nsm.cross_entropy_partial(z[:, :1].copy(), np.array([0]), 0, 2)
    b = nsm.cross_entropy_partial(z[:, 1:].copy(), np.array([0]), 1, 2)
    for merged in (nsm.cross_entropy_merge(a, b), nsm.cross_entropy_merge(b, a)):
        loss, grad = nsm.cross_entropy_finish(z[:, :1].copy(), np.array([0]), merged, 0, 2)
        exact = np.log1p(np.exp(-20.0))
        assert abs(float(loss) - exact) <= 4 * np.spacing(np.float32(exact)), float(loss)
        assert abs(float(grad[0, 0]) + exact) <= 4 * np.spacing(np.float32(exact)), float(grad[0, 0])


def test_empty_shard_is_the_identity_and_merges_exactly():
    z = np.random.default_rng(2).normal(size=(4, 9))
    t = np.array([0, 3, 8, -100])
    s = nsm.cross_entropy_partial(z, t, 0, 9, label_smoothing=0.25)
    empty = nsm.cross_entropy_partial(np.empty((4, 0)), t, 9, 9, label_smoothing=0.25)
    identity = np.array([-np.inf, 0, 0, 0, 0, 0, 0])
    assert np.array_equal(empty, np.tile(identity, (4, 1)))
    assert np.array_equal(s[3], identity)  # an ignored row: the identity too
    assert nsm.cross_entropy_merge(s, empty).tobytes() == s.tobytes()
    assert nsm.cross_entropy_merge(empty, s).tobytes() == s.tobytes()
    assert s.view(nsm.STATS_DTYPE)["count_at_max"].shape == (4, 1)
    assert nsm.STATS_DTYPE.itemsize == 56


def test_bad_input_is_refused_and_nothing_is_written():
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(nsm.NativeSoftmaxError) as error:
        nsm.cross_entropy_partial(z, np.array([0, 9]), 0, 9)
    assert error.value.status_name == "NSM_ERR_LABEL_OUT_OF_RANGE" and "vocab" in error.value.message
    with pytest.raises(nsm.NativeSoftmaxError) as error:
        nsm.cross_entropy_partial(z, np.array([0, 1]), 7, 9)
    assert error.value.status_name == "NSM_ERR_INVALID_SHAPE" and "first_col" in error.value.message
    s = nsm.cross_entropy_partial(z, np.array([0, 1]), 0, 9)
    out = np.full_like(s, 7.0)
    with pytest.raises(nsm.NativeSoftmaxError):
        nsm.cross_entropy_merge(s, s[:1], out=out)
    assert np.all(out == 7.0)
    grad = np.full_like(z, 7.0)
    with pytest.raises(nsm.NativeSoftmaxError) as error:
        nsm.cross_entropy_finish(z, np.array([0, 1]), s, 0, 9, label_smoothing=2.0, grad_out=grad)
    assert error.value.status_name == "NSM_ERR_INVALID_ARGUMENT"
    assert np.all(grad == 7.0)


def test_torch_tensors_in_give_tensors_out():
    torch = pytest.importorskip("torch")
    z = torch.randn(3, 10, dtype=torch.float64)
    t = torch.tensor([1, 9, 4])
    a = nsm.cross_entropy_partial(z[:, :4], t, 0, 10)
    b = nsm.cross_entropy_partial(z[:, 4:], t, 4, 10)
    assert isinstance(a, torch.Tensor) and a.dtype == torch.float64 and tuple(a.shape) == (3, 7)
    merged = nsm.cross_entropy_merge(a, b)
    loss_a, grad_a = nsm.cross_entropy_finish(z[:, :4], t, merged, 0, 10)
    loss_b, grad_b = nsm.cross_entropy_finish(z[:, 4:], t, merged, 4, 10)
    expected = torch.nn.functional.cross_entropy(z, t)
    assert isinstance(loss_a, torch.Tensor) and torch.equal(loss_a, loss_b)
    assert abs(float(loss_a) - float(expected)) < 1e-12
    zz = z.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(zz, t).backward()
    assert torch.allclose(torch.cat([grad_a, grad_b], 1), zz.grad, atol=1e-13, rtol=0)


def test_vocab_parallel_example_runs_two_gloo_processes():
    pytest.importorskip("torch.distributed")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python"))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "vocab_parallel.py")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vocab_parallel: OK" in done.stdout


# ---- grad_out and out layouts (found by an adversarial review: each test failed before) --------

def _shard(rows=4, vocab=12, seed=3):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, vocab))
    t = rng.integers(0, vocab, rows)
    return z, t, nsm.cross_entropy_partial(z, t, 0, vocab)


def test_grad_out_with_a_negative_row_stride_gets_the_gradient_and_nothing_outside_it():
    z, t, s = _shard()
    rows, vocab = z.shape
    _, want = nsm.cross_entropy_finish(z, t, s, 0, vocab)
    base = np.full((2 * rows, vocab), 7.0)
    out = base[:rows][::-1]
    nsm.cross_entropy_finish(z, t, s, 0, vocab, grad_out=out)
    np.testing.assert_array_equal(out, want)
    assert (base[rows:] == 7.0).all()


def test_grad_out_beside_the_logits_in_one_buffer_leaves_the_logits_alone():
    rng = np.random.default_rng(5)
    buf = rng.standard_normal((4, 24))
    z, out = buf[:, :12], buf[:, 12:]
    before = z.copy()
    t = rng.integers(0, 12, 4)
    s = nsm.cross_entropy_partial(z, t, 0, 12)
    _, want = nsm.cross_entropy_finish(before, t, s, 0, 12)
    nsm.cross_entropy_finish(z, t, s, 0, 12, grad_out=out)
    np.testing.assert_array_equal(z, before)
    np.testing.assert_array_equal(out, want)


def test_grad_out_that_is_strided_logits_is_overwritten_by_the_gradient():
    rng = np.random.default_rng(6)
    big = rng.standard_normal((4, 24))
    z = big[:, ::2]
    t = rng.integers(0, 12, 4)
    s = nsm.cross_entropy_partial(z, t, 0, 12)
    _, want = nsm.cross_entropy_finish(z.copy(), t, s, 0, 12)
    _, got = nsm.cross_entropy_finish(z, t, s, 0, 12, grad_out=z)
    assert got is z
    np.testing.assert_array_equal(z, want)


def test_read_only_outputs_are_refused_unwritten():
    z, t, s = _shard()
    ro = np.zeros_like(z)
    ro.flags.writeable = False
    with pytest.raises(nsm.NativeSoftmaxError, match="read-only"):
        nsm.cross_entropy_finish(z, t, s, 0, z.shape[1], grad_out=ro)
    assert (ro == 0).all()
    ro_stats = np.zeros_like(s)
    ro_stats.flags.writeable = False
    with pytest.raises(nsm.NativeSoftmaxError, match="read-only"):
        nsm.cross_entropy_merge(s, s, out=ro_stats)
    assert (ro_stats == 0).all()


@pytest.mark.parametrize("first_col, error", [(2 ** 64, "outside int64"), (0.5, "integer"), (-2 ** 63 - 1, "outside int64")])
def test_column_arguments_must_be_int64_integers(first_col, error):
    z, t, _ = _shard()
    with pytest.raises(nsm.NativeSoftmaxError, match=error):
        nsm.cross_entropy_partial(z, t, first_col, z.shape[1])
    with pytest.raises(nsm.NativeSoftmaxError, match=error):
        nsm.cross_entropy_partial(z, t, 0, first_col)

"""Threads through the Python face: get/set_num_threads, the same bits at 1, 2 and 7 threads, and
a child process forked after a threaded call (multiprocessing's "fork", as DataLoader workers)
that still computes, and computes the same bits."""

import hashlib
import multiprocessing

import numpy as np
import pytest

import nativesoftmax as nsm


@pytest.fixture
def restore_threads():
    yield
    nsm.set_num_threads(0)


def _inputs(rows, cols, dtype):
    rng = np.random.default_rng(rows * 7919 + cols)
    z = rng.uniform(-30, 30, size=(rows, cols)).astype(dtype)
    labels = rng.integers(0, cols, size=rows)
    weight = rng.uniform(0.5, 2, size=cols).astype(dtype)
    return z, labels, weight


def _everything(z, labels, weight):
    p = nsm.softmax(z)
    y = nsm.log_softmax(z)
    g = np.cos(z)
    out = [p, y, nsm.softmax_backward(g, p), nsm.log_softmax_backward(g, y)]
    for reduction in ("none", "sum", "mean"):
        loss, grad = nsm.cross_entropy(z, labels, weight=weight, reduction=reduction,
                                       label_smoothing=0.05, return_grad=True)
        out += [np.asarray(loss), grad]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,cols", [(3001, 10), (517, 999), (1, 300007)])
def test_same_bits_at_one_two_and_seven_threads(rows, cols, dtype, restore_threads):
    z, labels, weight = _inputs(rows, cols, dtype)
    results = []
    for threads in (1, 2, 7):
        nsm.set_num_threads(threads)
        assert nsm.get_num_threads() == threads
        results.append(_everything(z, labels, weight))
    for threads, other in zip((2, 7), results[1:]):
        for i, (a, b) in enumerate(zip(results[0], other)):
            assert a.tobytes() == b.tobytes(), "output %d differs between 1 and %d threads" % (i, threads)


def test_setting_is_validated(restore_threads):
    nsm.set_num_threads(3)
    for bad in (-1, 1025, 2 ** 40):
        with pytest.raises(nsm.NativeSoftmaxError) as info:
            nsm.set_num_threads(bad)
        assert "num_threads" in str(info.value)
    with pytest.raises(TypeError):
        nsm.set_num_threads(2.5)
    assert nsm.get_num_threads() == 3
    nsm.set_num_threads(0)
    assert 1 <= nsm.get_num_threads() <= 1024


def _child(z, queue):
    # A digest, not the 4 MB result: a child exits only once its queue is drained.
    queue.put(hashlib.sha256(nsm.softmax(z).tobytes()).hexdigest())


def test_a_forked_child_computes_after_a_threaded_call(restore_threads):
    nsm.set_num_threads(4)
    z, _, _ = _inputs(2048, 500, np.float32)
    parent = hashlib.sha256(nsm.softmax(z).tobytes()).hexdigest()  # the workers have run
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(z, queue))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the forked child hung"
    assert child.exitcode == 0
    assert queue.get(timeout=5) == parent

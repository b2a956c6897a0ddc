"""Threads through the Python face: get/set_num_threads, the same bits at 1, 2 and 7 threads, and
a child process forked after a threaded call (multiprocessing's "fork", as DataLoader workers)
that still computes, and computes the same bits, and a child forked while another thread computes
that still collects."""

import hashlib
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

import nativesoftmax as nsm
from nativesoftmax import _native


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


def _collects_in_child(z, digest):
    """In a forked child: many failing calls (each allocates its message, so the runtime
    collects), then a call that must give the parent's bits."""
    signal.alarm(60)
    softmax_f32 = _native.lib().nsm_softmax_f32
    for _ in range(300000):
        if softmax_f32(1, 0, None, 1, None, 1) != _native.NSM_ERR_INVALID_SHAPE:
            return 3
    return 0 if hashlib.sha256(nsm.softmax(z).tobytes()).hexdigest() == digest else 4


def test_a_child_forked_while_another_thread_computes_can_collect(restore_threads):
    # fork() waits until no thread is inside the library (the header's fork rule); a child forked
    # while another thread was inside a call used to abort at its first garbage collection.
    nsm.set_num_threads(2)
    z, _, _ = _inputs(256, 32000, np.float32)
    digest = hashlib.sha256(nsm.softmax(z).tobytes()).hexdigest()
    stop = threading.Event()

    def compute():
        while not stop.is_set():
            nsm.softmax(z)

    worker = threading.Thread(target=compute)
    worker.start()
    statuses = []
    try:
        for k in range(6):
            time.sleep(0.002 + 0.003 * k)
            pid = os.fork()
            if pid == 0:
                code = 5
                try:
                    code = _collects_in_child(z, digest)
                finally:
                    os._exit(code)
            statuses.append(os.waitpid(pid, 0)[1])
    finally:
        stop.set()
        worker.join()
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), \
        [os.WTERMSIG(s) if os.WIFSIGNALED(s) else os.WEXITSTATUS(s) for s in statuses]

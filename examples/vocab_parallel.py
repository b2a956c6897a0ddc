"""Vocabulary-parallel cross-entropy with torch.distributed (gloo) on this machine.

Two processes each hold half of a 32000-class vocabulary: the columns of the logits (and of the
class weights) that are theirs. Each computes its partial statistics (nativesoftmax
cross_entropy_partial), all-gathers every rank's statistics, merges them in rank order
(cross_entropy_merge), and finishes its own loss and gradient columns (cross_entropy_finish).
Rank 0 then gathers the gradient halves and checks that the loss and the concatenated gradient
match the single-process nativesoftmax.cross_entropy on the whole logits, and that every rank got
the same loss, bit for bit. Exits non-zero on a mismatch.

    /usr/bin/python3 examples/vocab_parallel.py        (PYTHONPATH=bindings/python in a checkout)
"""
import os
import socket
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bindings" / "python"))
import nativesoftmax as nsm  # noqa: E402

WORLD = 2
ROWS, VOCAB = 64, 32000
OPTIONS = dict(ignore_index=-100, label_smoothing=0.1)


def problem():
    """The same logits, labels and weights on every process (a fixed seed)."""
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(ROWS, VOCAB, generator=g, dtype=torch.float32) * 4
    labels = torch.randint(0, VOCAB, (ROWS,), generator=g)
    labels[3] = -100  # an ignored row
    weight = torch.rand(VOCAB, generator=g, dtype=torch.float32) + 0.5
    return logits, labels, weight


def worker(rank, port, failures):
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank, world_size=WORLD)
    try:
        logits, labels, weight = problem()
        per = VOCAB // WORLD
        first = rank * per
        mine = logits[:, first:first + per].contiguous()  # all this rank holds of the logits
        my_weight = weight[first:first + per].contiguous()

        stats = nsm.cross_entropy_partial(mine, labels, first, VOCAB, weight=my_weight, **OPTIONS)
        gathered = [torch.empty_like(stats) for _ in range(WORLD)]
        dist.all_gather(gathered, stats)
        merged = gathered[0]
        for other in gathered[1:]:  # rank order: the same bits on every rank
            merged = nsm.cross_entropy_merge(merged, other)
        loss, grad = nsm.cross_entropy_finish(mine, labels, merged, first, VOCAB, weight=my_weight,
                                              reduction="mean", **OPTIONS)

        losses = [torch.empty(1, dtype=torch.float32) for _ in range(WORLD)]
        dist.all_gather(losses, loss.reshape(1).float())
        grads = [torch.empty_like(grad) for _ in range(WORLD)]
        dist.all_gather(grads, grad)
        if rank == 0:
            whole_loss, whole_grad = nsm.cross_entropy(logits, labels, weight=weight, reduction="mean",
                                                       return_grad=True, **OPTIONS)
            split_grad = torch.cat(grads, dim=1)
            same = all(torch.equal(losses[0], other) for other in losses[1:])
            loss_ok = abs(float(loss) - float(whole_loss)) <= 4e-6 * (1 + abs(float(whole_loss)))
            grad_err = float((split_grad - torch.as_tensor(whole_grad)).abs().max())
            # The gradient's bound: 1e-6·|s|·Σ|y| per element, s = 1/Σw_t (the mean), doubled for
            # the two computations compared.
            scale = 1.0 / float(weight[labels[labels != -100]].sum())
            grad_ok = grad_err <= 4e-6 * scale * float(weight.max())
            print("vocab_parallel: %d ranks, %d rows x %d classes: loss %.9g (single process %.9g), "
                  "max |grad difference| %.3g, same loss on every rank: %s"
                  % (WORLD, ROWS, VOCAB, float(loss), float(whole_loss), grad_err, same))
            if not (same and loss_ok and grad_ok):
                failures.put("mismatch")
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    os.environ.setdefault("NATIVESOFTMAX_NUM_THREADS", "1")
    ctx = mp.get_context("spawn")
    failures = ctx.SimpleQueue()
    mp.start_processes(worker, args=(free_port(), failures), nprocs=WORLD, start_method="spawn", join=True)
    if not failures.empty():
        print("vocab_parallel: FAILED: the split result differs from the single-process one", file=sys.stderr)
        return 1
    print("vocab_parallel: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

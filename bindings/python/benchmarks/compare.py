#!/usr/bin/python3
"""NativeSoftmax from Python beside the alternatives a Python user would pick, side by side in one
process on the same inputs: PyTorch (torch.softmax, torch.log_softmax, F.cross_entropy with its
backward through autograd, with class labels and with class probabilities) and scipy.special
(softmax, log_softmax).

    /usr/bin/python3 bindings/python/benchmarks/compare.py --threads N [--shapes 1x10,4096x1000]
        [--rounds 5] [--min-time 0.03] [--tolerance 1e-3] [--libraries nativesoftmax,torch,scipy]
        [--out results.jsonl]

Every call is made as a user makes it: each returns new arrays (nsm.softmax(z) and
torch.softmax(t, -1) alike), cross-entropy returns the mean loss and the gradient of the logits
(nsm.cross_entropy(..., return_grad=True); for torch, a leaf tensor whose .grad is reset to None
before F.cross_entropy(x, target).backward()).

One process measures one thread count: NativeSoftmax reads NATIVESOFTMAX_NUM_THREADS at its first
call, so the caller sets it (tools/benchmarks/run_benchmarks.py runs one process per count);
--threads is passed to torch.set_num_threads and recorded. scipy is single-threaded.

Every result is checked against a float64 numpy reference before it is timed; one off by more than
--tolerance is recorded with "correct": false and marked WRONG in the table. Timing: each round
runs every contender once, in turn (round-robin), for at least --min-time seconds, with the
garbage collector off; the per-call time of every round is written out. Nothing asserts on time.
"""
import argparse
import gc
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nativesoftmax as nsm  # noqa: E402

DEFAULT_SHAPES = "1x10,65536x10,4096x1000,256x32000,64x128256,16x262144"
LIBRARIES = ("nativesoftmax", "torch", "scipy")
OURS = "NativeSoftmax (Python)"


def parse_shapes(text):
    shapes = []
    for item in text.split(","):
        rows, sep, cols = item.strip().partition("x")
        if not sep or not rows.isdigit() or not cols.isdigit() or int(rows) < 1 or int(cols) < 1:
            raise argparse.ArgumentTypeError("bad shape %r (expected ROWSxCOLS, both at least 1)" % item)
        shapes.append((int(rows), int(cols)))
    return shapes


class Reference:
    """The float64 values of every output, from the same float32 logits."""

    def __init__(self, z, target):
        z64 = z.astype(np.float64)
        m = z64.max(axis=1, keepdims=True)
        self.log_probabilities = (z64 - m) - np.log(np.exp(z64 - m).sum(axis=1, keepdims=True))
        self.probabilities = np.exp(self.log_probabilities)
        rows = z.shape[0]
        self.loss = -self.log_probabilities[np.arange(rows), target].mean()
        self.rows, self.target = rows, target

    def softmax_error(self, o):
        """max |o − p| / max(p, FLT_MIN): relative, as the header's softmax accuracy."""
        p = self.probabilities
        return _worst(np.abs(np.asarray(o, np.float64) - p) / np.maximum(p, np.finfo(np.float32).tiny))

    def log_softmax_error(self, o):
        """max |o − log p| / (1 + |log p|), as the header's log_softmax accuracy."""
        lp = self.log_probabilities
        return _worst(np.abs(np.asarray(o, np.float64) - lp) / (1 + np.abs(lp)))

    def cross_entropy_error(self, loss, grad):
        """The worse of the mean loss's error relative to 1 + |loss| and the gradient's absolute
        error in units of its scale 1/rows (the header's gradient bound is 1e-6 in those units)."""
        g = self.probabilities.copy()
        g[np.arange(self.rows), self.target] -= 1
        grad_error = _worst(np.abs(np.asarray(grad, np.float64) * self.rows - g))
        loss_error = abs(float(loss) - self.loss) / (1 + abs(self.loss))
        return max(grad_error, loss_error if np.isfinite(loss_error) else np.inf)

    def soft_cross_entropy_error(self, probabilities, loss, grad):
        """As cross_entropy_error, for soft targets (class probabilities y, float32): the mean loss
        Σ_j y_j·(−log p_j) and the gradient p·Σy − y, in units of 1/rows."""
        y = probabilities.astype(np.float64)
        expected_loss = -(y * self.log_probabilities).sum(axis=1).mean()
        g = self.probabilities * y.sum(axis=1, keepdims=True) - y
        grad_error = _worst(np.abs(np.asarray(grad, np.float64) * self.rows - g))
        loss_error = abs(float(loss) - expected_loss) / (1 + abs(expected_loss))
        return max(grad_error, loss_error if np.isfinite(loss_error) else np.inf)


def soft_targets(rows, cols):
    """Class probabilities for soft-target cross-entropy: uniform draws normalised per row, from a
    generator of their own (so the logits and labels of every shape stay those of earlier runs)."""
    y = np.random.default_rng(rows * 1_000_003 + cols).random((rows, cols))
    return (y / y.sum(axis=1, keepdims=True)).astype(np.float32)


def _worst(errors):
    return np.inf if np.isnan(errors).any() else float(errors.max())


HALF_DTYPES = {"softmax_bf16": "bfloat16", "softmax_f16": "float16"}
# Half precision is measured on the memory-bound shapes only: rows of at least this many classes.
HALF_MIN_COLS = 32000


def half_softmax_error(z16, p_bits, min_exponent):
    """The error function of a 16-bit softmax: max |o − p| over the bound the header gives a
    16-bit output, one ulp of its type (2^−p_bits relative) or, below the type's smallest normal
    number (where outputs are flushed to 0), that number; p from the same 16-bit logits in
    float64. At most 1 is correct (compare.py flags more than 1 as wrong)."""
    z64 = z16.astype(np.float64)
    m = z64.max(axis=1, keepdims=True)
    e = np.exp(z64 - m)
    p = e / e.sum(axis=1, keepdims=True)
    bound = np.maximum(p * 2.0 ** -p_bits, 2.0 ** min_exponent) + 1e-6 * p

    def error(o):
        return _worst(np.abs(np.asarray(o, np.float64) - p) / bound)
    return error


def half_contenders(z, libraries):
    """NativeSoftmax's bfloat16 (from a torch tensor, zero-copy) and float16 (a numpy array)
    softmax on the same logits rounded to the type: (library, op, call, error, tolerance)."""
    out = []
    if "nativesoftmax" not in libraries or z.shape[1] < HALF_MIN_COLS:
        return out
    z16 = z.astype(np.float16)
    out.append((OURS, "softmax_f16", lambda: nsm.softmax(z16), half_softmax_error(z16, 10, -14)))
    if "torch" in libraries:
        import torch
        zb = torch.from_numpy(z).to(torch.bfloat16)
        out.append((OURS, "softmax_bf16", lambda: nsm.softmax(zb),
                    lambda r, e=half_softmax_error(zb.float().numpy(), 7, -126): e(r.float().numpy())))
    return out


def contenders(z, target, reference, libraries, threads):
    """(library, op, call, error) tuples; error(result) is the result's max error."""
    out = []
    probabilities = soft_targets(*z.shape)
    if "nativesoftmax" in libraries:
        out += [
            (OURS, "softmax", lambda: nsm.softmax(z), reference.softmax_error),
            (OURS, "log_softmax", lambda: nsm.log_softmax(z), reference.log_softmax_error),
            (OURS, "cross_entropy", lambda: nsm.cross_entropy(z, target, return_grad=True),
             lambda r: reference.cross_entropy_error(*r)),
            (OURS, "cross_entropy_soft", lambda: nsm.cross_entropy(z, probabilities, return_grad=True),
             lambda r: reference.soft_cross_entropy_error(probabilities, *r)),
        ]
    if "torch" in libraries:
        import torch

        torch.set_num_threads(threads)
        zt, tt = torch.from_numpy(z), torch.from_numpy(target)
        leaf = zt.clone().requires_grad_(True)

        def torch_cross_entropy(targets=tt):
            leaf.grad = None
            loss = torch.nn.functional.cross_entropy(leaf, targets)
            loss.backward()
            return loss, leaf.grad

        pt = torch.from_numpy(probabilities)

        out += [
            ("PyTorch", "softmax", lambda: torch.softmax(zt, -1), lambda r: reference.softmax_error(r.numpy())),
            ("PyTorch", "log_softmax", lambda: torch.log_softmax(zt, -1),
             lambda r: reference.log_softmax_error(r.numpy())),
            ("PyTorch", "cross_entropy", torch_cross_entropy,
             lambda r: reference.cross_entropy_error(r[0].item(), r[1].numpy())),
            ("PyTorch", "cross_entropy_soft", lambda: torch_cross_entropy(pt),
             lambda r: reference.soft_cross_entropy_error(probabilities, r[0].item(), r[1].numpy())),
        ]
    if "scipy" in libraries:
        import scipy.special

        out += [
            ("scipy", "softmax", lambda: scipy.special.softmax(z, axis=-1), reference.softmax_error),
            ("scipy", "log_softmax", lambda: scipy.special.log_softmax(z, axis=-1), reference.log_softmax_error),
        ]
    return out


def seconds_of(calls, fn):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def measure(entries, rounds, min_time):
    """entries: dicts with "call"; adds "calls_per_round" and "seconds_per_call"."""
    for e in entries:
        e["call"]()
        once = seconds_of(1, e["call"])
        e["calls_per_round"] = max(1, int(np.ceil(min_time / max(once, 1e-9))))
        e["seconds_per_call"] = []
    gc.disable()
    try:
        for r in range(rounds):
            for k in range(len(entries)):
                e = entries[(k + r) % len(entries)]
                e["seconds_per_call"].append(seconds_of(e["calls_per_round"], e["call"]) / e["calls_per_round"])
    finally:
        gc.enable()


def library_versions(libraries):
    versions = {"nativesoftmax": nsm.library_version(), "numpy": np.__version__,
                "python": sys.version.split()[0]}
    if "torch" in libraries:
        import torch
        versions["torch"] = torch.__version__
        backend = [line for line in torch.__config__.parallel_info().splitlines() if "parallel backend" in line]
        versions["torch_parallel_backend"] = backend[0].split(":", 1)[1].strip() if backend else ""
    if "scipy" in libraries:
        import scipy
        versions["scipy"] = scipy.__version__
    return versions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shapes", type=parse_shapes, default=parse_shapes(DEFAULT_SHAPES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.03)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--libraries", default=",".join(LIBRARIES),
                        help="comma-separated subset of " + ",".join(LIBRARIES))
    parser.add_argument("--out", help="append JSON lines here")
    args = parser.parse_args(argv)
    libraries = [name for name in args.libraries.split(",") if name]
    unknown = set(libraries) - set(LIBRARIES)
    if unknown or args.threads < 1 or args.rounds < 1:
        parser.error("unknown libraries %s, or --threads/--rounds below 1" % sorted(unknown))

    out = open(args.out, "a") if args.out else None
    meta = {"type": "meta", "producer": "python", "threads": args.threads, "isa": nsm.isa(),
            "library_path": str(nsm.library_path()),
            "NATIVESOFTMAX_NUM_THREADS": os.environ.get("NATIVESOFTMAX_NUM_THREADS", ""),
            "versions": library_versions(libraries)}
    if "torch" in libraries:
        import torch
        torch.set_num_threads(args.threads)
        meta["torch_threads"] = torch.get_num_threads()
    if out:
        out.write(json.dumps(meta) + "\n")
    print("nativesoftmax %s (%s) from Python; float32, %d thread(s); median per call over %d rounds; "
          "ratio = time / NativeSoftmax's; error vs float64" % (nsm.__version__, nsm.isa(), args.threads, args.rounds))

    rng = np.random.default_rng(20261129)
    wrong_ours = 0
    for rows, cols in args.shapes:
        z = rng.uniform(-10, 10, size=(rows, cols)).astype(np.float32)
        target = rng.integers(0, cols, size=rows).astype(np.int64)
        reference = Reference(z, target)
        entries = []
        for library, op, call, error in contenders(z, target, reference, libraries, args.threads):
            max_error = error(call())
            entries.append({"library": library, "op": op, "call": call, "max_error": max_error,
                            "correct": bool(max_error <= args.tolerance)})
        for library, op, call, error in half_contenders(z, libraries):
            max_error = error(call())  # in units of the 16-bit output's bound: at most 1
            entries.append({"library": library, "op": op, "call": call, "max_error": max_error,
                            "correct": bool(max_error <= 1.0)})
        measure(entries, args.rounds, args.min_time)
        ours = {e["op"]: np.median(e["seconds_per_call"]) for e in entries if e["library"] == OURS}
        for e in entries:
            t = float(np.median(e["seconds_per_call"]))
            if not e["correct"] and e["library"] == OURS:
                wrong_ours += 1
            ratio = "%.2fx" % (t / ours[e["op"]]) if e["op"] in ours else ""
            print("%7dx%-7d %-18s %-23s %11.1f us %8.3f ns/elem %7s   error %.1e%s"
                  % (rows, cols, e["op"], e["library"], t * 1e6, t * 1e9 / (rows * cols), ratio,
                     e["max_error"], "" if e["correct"] else "  WRONG"))
            if out:
                record = {"type": "result", "producer": "python", "library": e["library"], "op": e["op"],
                          "dtype": HALF_DTYPES.get(e["op"], "float32"), "rows": rows, "cols": cols,
                          "threads": args.threads,
                          "max_error": e["max_error"], "correct": e["correct"],
                          "calls_per_round": e["calls_per_round"], "seconds_per_call": e["seconds_per_call"]}
                out.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        if out:
            out.flush()
    if out:
        out.close()
    if wrong_ours:
        print("NativeSoftmax gave %d result(s) outside the tolerance %g" % (wrong_ours, args.tolerance),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Side-by-side timings, in one run, of NativeSoftmax and the alternatives a Python user would
pick: PyTorch (torch.softmax / F.cross_entropy with autograd) and scipy.special.softmax.

    /usr/bin/python3 bindings/python/benchmarks/compare.py [--repeat N]

Shapes are the ones the .NET benchmarks use (rows x classes, float32). Prints the median time
per call and the ratio to NativeSoftmax; nothing here asserts on time.
"""
import argparse
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nativesoftmax as nsm  # noqa: E402

SHAPES = [(256, 10), (64, 1000), (8, 32000), (2, 128256), (4096, 1000)]


def median_seconds(fn, repeat):
    number = max(1, int(0.02 / max(min(timeit.repeat(fn, number=1, repeat=3)), 1e-7)))
    return float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


def candidates(z, labels):
    out = {"nativesoftmax": (lambda: nsm.softmax(z),
                             lambda: nsm.cross_entropy(z, labels, return_grad=True))}
    try:
        import scipy.special
        out["scipy"] = (lambda: scipy.special.softmax(z, axis=-1), None)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(1)
        zt, lt = torch.from_numpy(z), torch.from_numpy(labels)

        def torch_ce():
            x = zt.clone().requires_grad_(True)
            torch.nn.functional.cross_entropy(x, lt).backward()
            return x.grad

        out["torch (1 thread)"] = (lambda: torch.softmax(zt, dim=-1), torch_ce)
    except ImportError:
        pass
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(20261129)
    print("nativesoftmax %s on %s; float32; median of %d; ratio = time / nativesoftmax's"
          % (nsm.__version__, nsm.isa(), args.repeat))
    print("%-12s %-18s %14s %8s %18s %8s" % ("shape", "library", "softmax", "ratio", "cross_entropy+grad", "ratio"))
    for rows, cols in SHAPES:
        z = rng.uniform(-10, 10, size=(rows, cols)).astype(np.float32)
        labels = rng.integers(0, cols, size=rows).astype(np.int64)
        base = None
        for name, (softmax, ce) in candidates(z, labels).items():
            t_sm = median_seconds(softmax, args.repeat)
            t_ce = median_seconds(ce, args.repeat) if ce else float("nan")
            if base is None:
                base = (t_sm, t_ce)
            print("%-12s %-18s %11.1f us %7.2fx %15.1f us %7.2fx"
                  % ("%dx%d" % (rows, cols), name, t_sm * 1e6, t_sm / base[0], t_ce * 1e6, t_ce / base[1]))


if __name__ == "__main__":
    main()

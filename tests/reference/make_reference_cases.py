#!/usr/bin/python3
"""Writes cases.txt: reference values from PyTorch in float64, read by all three test suites.

The same cases are checked from C# (src/Managed/NativeSoftmax.Tests), the C harness
(native/tests) and pytest (bindings/python/tests), so the three front ends are held to one set of
numbers that NativeSoftmax did not compute itself. Regenerate with

    /usr/bin/python3 tests/reference/make_reference_cases.py > tests/reference/cases.txt

Format, one record per case, whitespace-separated, values printed with 17 significant digits:

    case NAME OP ROWS COLS REDUCTION IGNORE_INDEX LABEL_SMOOTHING HAS_WEIGHT
    logits  ROWS*COLS values
    target  ROWS labels (OP = cross_entropy) or ROWS*COLS values (cross_entropy_soft); absent otherwise
    weight  COLS values, present when HAS_WEIGHT = 1
    output  the forward result: probabilities, log-probabilities, or the loss (ROWS values for
            reduction none, else 1)
    grad    ROWS*COLS values: ∂(Σ output·upstream)/∂logits for softmax/log_softmax with the
            upstream gradient given on the line "upstream"; ∂loss/∂logits for the losses
    end

OP is softmax, log_softmax, cross_entropy or cross_entropy_soft; REDUCTION 0 none, 1 sum, 2 mean.
"""
import sys

import torch
import torch.nn.functional as F

REDUCTIONS = ["none", "sum", "mean"]


def emit(out, key, tensor):
    values = tensor.reshape(-1).tolist()
    out.write(key + " " + " ".join(repr(int(v)) if isinstance(v, int) else f"{v:.17g}" for v in values) + "\n")


def logits_for(generator, rows, cols, scale, special):
    z = (torch.rand(rows, cols, generator=generator, dtype=torch.float64) * 2 - 1) * scale
    if special == "neg_inf" and cols > 1:
        z[:, 0] = float("-inf")
    return z


def main(out):
    g = torch.Generator().manual_seed(20261129)
    out.write("# NativeSoftmax shared reference cases: PyTorch %s, float64. See make_reference_cases.py.\n"
              % torch.__version__)
    shapes = [(1, 1), (3, 1), (2, 5), (4, 17), (3, 33), (2, 100)]
    for rows, cols in shapes:
        for scale, special in [(5.0, ""), (100.0, ""), (3.0, "neg_inf")]:
            z = logits_for(g, rows, cols, scale, special)
            upstream = torch.randn(rows, cols, generator=g, dtype=torch.float64)
            for op, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
                x = z.clone().requires_grad_(True)
                y = fn(x, dim=1)
                (y * upstream).sum().backward()
                out.write(f"case {op}_{rows}x{cols}_s{scale:g}{special} {op} {rows} {cols} 0 -100 0 0\n")
                emit(out, "logits", z)
                emit(out, "upstream", upstream)
                emit(out, "output", y.detach())
                emit(out, "grad", x.grad)
                out.write("end\n")

    for rows, cols in shapes[1:]:
        for reduction in range(3):
            for smoothing in [0.0, 0.2]:
                for has_weight in [0, 1]:
                    for soft in [False, True]:
                        z = logits_for(g, rows, cols, 8.0, "")
                        weight = torch.rand(cols, generator=g, dtype=torch.float64) + 0.25 if has_weight else None
                        if soft:
                            # Targets that do not sum to 1, to exercise the general o·Σy − y.
                            target = torch.rand(rows, cols, generator=g, dtype=torch.float64) * 1.5
                            ignore = -100
                        else:
                            target = torch.randint(0, cols, (rows,), generator=g)
                            ignore = int(target[0]) if rows > 2 else -100  # ignore one class when there is room
                        x = z.clone().requires_grad_(True)
                        loss = F.cross_entropy(x, target, weight=weight, ignore_index=ignore,
                                               reduction=REDUCTIONS[reduction], label_smoothing=smoothing)
                        loss.sum().backward()
                        op = "cross_entropy_soft" if soft else "cross_entropy"
                        name = f"{op}_{rows}x{cols}_{REDUCTIONS[reduction]}_ls{smoothing:g}_w{has_weight}"
                        out.write(f"case {name} {op} {rows} {cols} {reduction} {ignore} {smoothing:.17g} {has_weight}\n")
                        emit(out, "logits", z)
                        emit(out, "target", target)
                        if weight is not None:
                            emit(out, "weight", weight)
                        emit(out, "output", loss.detach())
                        emit(out, "grad", x.grad)
                        out.write("end\n")


if __name__ == "__main__":
    main(sys.stdout)

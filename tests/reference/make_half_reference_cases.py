#!/usr/bin/python3
"""Writes half_cases.txt: PyTorch's float64 results for inputs that are bfloat16 or float16 values.

The C harness (native/tests/test_half.c) checks every nsm_<op>_bf16 / _f16 function against these
cases on every variant it runs, the arm64 one under qemu included, where PyTorch itself cannot
run; pytest compares with PyTorch directly on the x86 paths (bindings/python/tests/test_half.py).
Regenerate with

    /usr/bin/python3 tests/reference/make_half_reference_cases.py > tests/reference/half_cases.txt

Every input is exactly a value of the case's type (rounded here from float64, to nearest, ties to
even), so the 16-bit function sees the same numbers PyTorch computed from. Format, one record per
case, whitespace-separated, values with 17 significant digits:

    case NAME OP TYPE ROWS COLS            TYPE is bf16 or f16
    KEY values                             one line per key, in the order below
    end

    softmax, log_softmax       logits [rows × cols]; output [rows × cols]
    softmax_backward,          grad_output [rows × cols]; output [rows × cols] (the forward result
    log_softmax_backward         rounded to TYPE: an input here); grad [rows × cols]
    softmax_jacobian           logits [cols] (rows = 1); probabilities [cols]; jacobian [cols × cols]
    cross_entropy              logits; target [rows] class indices; loss [rows] (reduction none);
                                 grad [rows × cols] (of the sum of the row losses)
    cross_entropy_soft         logits; target [rows × cols] (values of TYPE); loss [rows]; grad
"""
import math
import sys

import torch
import torch.nn.functional as F

FORMATS = {"bf16": (7, -126, 2.0 ** 127 * (2 - 2.0 ** -7)), "f16": (10, -14, 65504.0)}


def round_to(kind, x):
    """x rounded to the nearest value of the 16-bit type, ties to even (its subnormals kept)."""
    if x == 0 or math.isinf(x) or math.isnan(x):
        return x
    mantissa_bits, min_exponent, largest = FORMATS[kind]
    exponent = max(math.frexp(abs(x))[1] - 1, min_exponent)
    quantum = 2.0 ** (exponent - mantissa_bits)
    r = round(abs(x) / quantum) * quantum  # x / quantum is exact; round() ties to even
    return math.copysign(math.inf if r > largest else r, x)


def rounded(kind, t):
    return torch.tensor([round_to(kind, v) for v in t.reshape(-1).tolist()],
                        dtype=torch.float64).reshape(t.shape)


def emit(out, key, tensor):
    values = tensor.reshape(-1).tolist()
    out.write(key + " " + " ".join(repr(int(v)) if isinstance(v, int) else f"{v:.17g}"
                                   for v in values) + "\n")


def main(out):
    g = torch.Generator().manual_seed(20261130)
    out.write("# NativeSoftmax half-precision reference cases: PyTorch %s, float64 results for "
              "16-bit inputs. See make_half_reference_cases.py.\n" % torch.__version__)
    shapes = [(1, 1), (3, 2), (2, 7), (4, 17), (3, 33), (2, 100)]
    for kind in FORMATS:
        for rows, cols in shapes:
            for scale in (4.0, 30.0):
                name = f"{kind}_{rows}x{cols}_s{scale:g}"
                z = rounded(kind, (torch.rand(rows, cols, generator=g, dtype=torch.float64) * 2 - 1) * scale)
                upstream = rounded(kind, torch.randn(rows, cols, generator=g, dtype=torch.float64))
                for op, forward, backward in (
                        ("softmax", F.softmax, torch._softmax_backward_data),
                        ("log_softmax", F.log_softmax, torch._log_softmax_backward_data)):
                    y = forward(z, dim=1)
                    out.write(f"case {op}_{name} {op} {kind} {rows} {cols}\n")
                    emit(out, "logits", z)
                    emit(out, "output", y)
                    out.write("end\n")
                    y16 = rounded(kind, y)
                    out.write(f"case {op}_backward_{name} {op}_backward {kind} {rows} {cols}\n")
                    emit(out, "grad_output", upstream)
                    emit(out, "output", y16)
                    emit(out, "grad", backward(upstream, y16, 1, torch.float64))
                    out.write("end\n")
                row = z[0]
                out.write(f"case softmax_jacobian_{kind}_{cols}_s{scale:g} softmax_jacobian {kind} 1 {cols}\n")
                emit(out, "logits", row)
                emit(out, "probabilities", F.softmax(row, dim=0))
                emit(out, "jacobian", torch.autograd.functional.jacobian(lambda x: F.softmax(x, dim=0), row))
                out.write("end\n")
                for soft in (False, True):
                    if soft:
                        target = rounded(kind, torch.rand(rows, cols, generator=g, dtype=torch.float64))
                    else:
                        target = torch.randint(0, cols, (rows,), generator=g)
                    x = z.clone().requires_grad_(True)
                    loss = F.cross_entropy(x, target, reduction="none")
                    loss.sum().backward()
                    op = "cross_entropy_soft" if soft else "cross_entropy"
                    out.write(f"case {op}_{name} {op} {kind} {rows} {cols}\n")
                    emit(out, "logits", z)
                    emit(out, "target", target)
                    emit(out, "loss", loss.detach())
                    emit(out, "grad", x.grad)
                    out.write("end\n")


if __name__ == "__main__":
    main(sys.stdout)

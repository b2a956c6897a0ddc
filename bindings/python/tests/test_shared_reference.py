"""The PyTorch reference cases in tests/reference/cases.txt, checked through the Python binding
(and so through the C ABI); the C# suite and the C harness check the same file."""

import os

import numpy as np
import pytest

import nativesoftmax as nsm

CASES_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests", "reference", "cases.txt")
REDUCTIONS = ["none", "sum", "mean"]


def load_cases():
    cases, current = [], None
    with open(CASES_PATH) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if fields[0] == "case":
                name, op, rows, cols, reduction, ignore, smoothing, has_weight = fields[1:9]
                current = dict(name=name, op=op, rows=int(rows), cols=int(cols), reduction=REDUCTIONS[int(reduction)],
                               ignore_index=int(ignore), label_smoothing=float(smoothing), values={})
            elif fields[0] == "end":
                cases.append(current)
            else:
                current["values"][fields[0]] = np.array([float(v) for v in fields[1:]])
    return cases


CASES = load_cases()


def test_every_operation_is_covered():
    assert {c["op"] for c in CASES} == {"softmax", "log_softmax", "cross_entropy", "cross_entropy_soft"}
    assert len(CASES) >= 100


def run_case(case, dtype):
    rows, cols, v = case["rows"], case["cols"], case["values"]
    z = v["logits"].reshape(rows, cols).astype(dtype)
    if case["op"] in ("softmax", "log_softmax"):
        forward = nsm.softmax if case["op"] == "softmax" else nsm.log_softmax
        backward = nsm.softmax_backward if case["op"] == "softmax" else nsm.log_softmax_backward
        out = forward(z, axis=-1)
        grad = backward(v["upstream"].reshape(rows, cols).astype(dtype), out, axis=-1)
        return out, grad
    if case["op"] == "cross_entropy":
        target = v["target"].astype(np.int64)
    else:
        target = v["target"].reshape(rows, cols).astype(dtype)
    weight = v["weight"].astype(dtype) if "weight" in v else None
    return nsm.cross_entropy(z, target, weight=weight, ignore_index=case["ignore_index"],
                             reduction=case["reduction"], label_smoothing=case["label_smoothing"],
                             return_grad=True)


@pytest.mark.parametrize("dtype,rtol,atol", [(np.float64, 1e-12, 1e-12), (np.float32, 1e-5, 1e-6)],
                         ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_pytorch(case, dtype, rtol, atol):
    out, grad = run_case(case, dtype)
    for what, got, want in [("output", out, case["values"]["output"]), ("grad", grad, case["values"]["grad"])]:
        got = np.asarray(got, dtype=np.float64).reshape(-1)
        assert got.shape == want.shape, f"{case['name']} {what}: shape {got.shape}, reference {want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{case['name']} {np.dtype(dtype).name} {what}")

"""PyTorch autograd for NativeSoftmax: ``softmax``, ``log_softmax`` and ``cross_entropy`` as
``torch.autograd.Function``s, and ``CrossEntropyLoss`` as an ``nn.Module``, named and defaulted as
in ``torch.nn.functional`` and ``torch.nn``. Importing this module imports torch.

Tensors must be on the CPU. Forward and backward passes run in the library (float32 and float64
in their own precision, float16 and bfloat16 in float32 and returned in their own dtype, except
``cross_entropy``'s loss, which is float32 for them). They
are differentiable once (``torch.autograd.gradcheck`` passes in float64); a second derivative
raises RuntimeError.
"""

import math

import torch
from torch.autograd.function import once_differentiable

from . import _ops

__all__ = ["softmax", "log_softmax", "cross_entropy", "CrossEntropyLoss"]


class _RowToRow(torch.autograd.Function):
    """y = forward(x) along ``dim``, with backward(grad, y): softmax and log_softmax (their
    backward passes take the forward output, as PyTorch's do)."""

    @staticmethod
    def forward(ctx, x, dim, forward, backward):
        y = forward(x, dim=dim)
        ctx.save_for_backward(y)
        ctx.dim, ctx.backward_of = dim, backward
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return ctx.backward_of(grad, y, dim=ctx.dim), None, None, None


class _CrossEntropy(torch.autograd.Function):
    """Forward computes the loss alone; backward asks the library for the gradient with the
    upstream gradient applied: per row (``grad_output``) for reduction "none", as ``grad_scale``
    for "sum" and "mean"."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction, label_smoothing):
        for name, tensor, needs in (("target", target, ctx.needs_input_grad[1]),
                                    ("weight", weight, ctx.needs_input_grad[2])):
            if needs:
                raise RuntimeError("nativesoftmax.torch.cross_entropy has no gradient with "
                                   "respect to %s; pass %s.detach()" % (name, name))
        ctx.options = dict(ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(logits, target, weight)
        return _ops.cross_entropy(logits, target, weight, **ctx.options)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        logits, target, weight = ctx.saved_tensors
        if ctx.options["reduction"] == "none":
            _, grad = _ops.cross_entropy(logits, target, weight, return_grad=True,
                                         grad_output=grad_loss, **ctx.options)
        else:
            scale = float(grad_loss)
            if math.isfinite(scale):
                _, grad = _ops.cross_entropy(logits, target, weight, return_grad=True,
                                             grad_scale=scale, **ctx.options)
            else:  # the library takes a finite grad_scale; torch's product propagates inf and NaN
                _, grad = _ops.cross_entropy(logits, target, weight, return_grad=True,
                                             **ctx.options)
                grad = grad * grad_loss
        return grad, None, None, None, None, None


def softmax(input, dim=-1):
    """``torch.softmax(input, dim)`` computed by NativeSoftmax, differentiable with autograd.

    Args:
        input: a CPU tensor of any floating dtype, any rank >= 1.
        dim: the axis whose entries sum to 1 (default the last), or a tuple of axes
            (normalised together).

    Returns:
        A tensor of ``input``'s shape and dtype. Numerics and edge cases as
        ``nativesoftmax.softmax``.
    """
    return _RowToRow.apply(input, dim, _ops.softmax, _ops.softmax_backward)


def log_softmax(input, dim=-1):
    """``torch.log_softmax(input, dim)`` computed by NativeSoftmax, differentiable with autograd.
    Arguments and result as ``softmax``; numerics as ``nativesoftmax.log_softmax``."""
    return _RowToRow.apply(input, dim, _ops.log_softmax, _ops.log_softmax_backward)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """``torch.nn.functional.cross_entropy`` computed by NativeSoftmax, differentiable with
    autograd with respect to ``input``.

    Args:
        input: logits, a CPU tensor [N, C], [C] or [N, C, d1, …] (classes on axis 1).
        target: class indices ([N], a scalar, or [N, d1, …]; an integer tensor) or class
            probabilities of ``input``'s shape. It gets no gradient: a target that requires one
            raises RuntimeError, and so does a weight that does.
        weight, ignore_index, reduction, label_smoothing: as PyTorch's (see
            ``nativesoftmax.cross_entropy`` for the rules and the few documented differences).

    Returns:
        The loss: a 0-d tensor for "mean" and "sum", else one value per row (the target's shape).
    """
    return _CrossEntropy.apply(input, target, weight, ignore_index, reduction, label_smoothing)


class CrossEntropyLoss(torch.nn.Module):
    """``torch.nn.CrossEntropyLoss`` computed by NativeSoftmax: ``loss = CrossEntropyLoss(...)``,
    then ``loss(input, target)`` is ``cross_entropy(input, target, ...)`` with the options given
    here. ``weight`` is a buffer, so it follows the module's ``.to()``, ``.double()``, ...."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self):
        return "ignore_index=%d, reduction=%r, label_smoothing=%g" % (
            self.ignore_index, self.reduction, self.label_smoothing)

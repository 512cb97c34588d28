"""Act II loss: ``BCEWithLogitsLoss``, binary cross-entropy computed from logits.

For a logit ``x`` and a target ``t`` in [0, 1] the loss of one element is

    -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = softplus(x) - t x,

with ``softplus(x) = log(1 + exp(x))``. Written that way, ``exp(x)`` overflows for
``x > 88`` in float32 and ``log sigmoid(x)`` is ``log 0`` for ``x < -104``. The stable form
used here splits ``softplus`` as ``max(x, 0) + log(1 + exp(-|x|))``, where ``exp`` only ever
sees non-positive numbers, and writes ``max(x, 0)`` as ``(x + |x|) / 2``: composed from
tt-core's ``abs`` (whose slope at 0 is 0), that gives the exact gradient
``sigmoid(x) - t`` everywhere, including ``x = 0`` where ``max`` and ``|x|`` both have a kink.
The loss is composed of tt-core primitives, so autograd differentiates it with no rule of
its own.
"""

from __future__ import annotations

from tt_core import Module, ShapeError, Tensor

REDUCTIONS = ("mean", "sum", "none")


def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)`` against ``target``, finite for any logit.

    Args:
        input: logits, any shape, floating point.
        target: probabilities in [0, 1] (a Tensor or anything ``Tensor()`` accepts, e.g. 0/1
            labels), the same shape as ``input``; cast to ``input``'s dtype.
        reduction: ``"mean"`` (the average over all elements), ``"sum"`` or ``"none"`` (one
            loss per element, shaped like ``input``).

    Returns:
        A 0-d Tensor (``"mean"``, ``"sum"``) or a Tensor shaped like ``input`` (``"none"``),
        of ``input``'s dtype.

    Raises:
        ValueError: an unknown ``reduction``.
        ShapeError: ``input`` and ``target`` have different shapes.
    """
    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else Tensor(target)
    if target.dtype != input.dtype:
        target = target.astype(input.dtype)
    if target.shape != input.shape:
        raise ShapeError(
            f"BCEWithLogitsLoss: logits of shape {input.shape} and targets of shape {target.shape} differ; "
            "give one target per logit (for (N, 1) logits and (N,) targets, reshape the targets to (N, 1))"
        )
    magnitude = input.abs()
    # softplus(x) - t x  =  (x + |x|)/2 + log(1 + exp(-|x|)) - t x
    loss = input * (0.5 - target) + 0.5 * magnitude + (1 + (-magnitude).exp()).log()
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits, as a module (see :func:`binary_cross_entropy_with_logits`).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Raises:
        ValueError: an unknown ``reduction``.

    Shape:
        ``input`` logits and ``target`` alike, any shape; the output is 0-d, or shaped like
        ``input`` for ``reduction="none"``.

    Examples:
        >>> from tt_core import tensor
        >>> loss = BCEWithLogitsLoss()(tensor([0.0, 0.0]), tensor([1.0, 0.0]))
        >>> round(loss.item(), 4)  # log 2
        0.6931
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

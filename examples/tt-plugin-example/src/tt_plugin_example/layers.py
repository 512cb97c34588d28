"""The Swish activation (Ramachandran, Zoph and Le, 2017), built from tt-core primitives."""

from __future__ import annotations

from tt_core import Module, Tensor
from tt_core import functional as F


class Swish(Module):
    """``x * sigmoid(beta * x)``: smooth, unbounded above, with a small dip below zero.

    Composed of tt-core primitives (mul, sigmoid), so autograd needs no rule of its own.

    Args:
        beta: sharpness; ``beta=1`` is SiLU, large ``beta`` approaches ReLU.

    Shape:
        any shape -> the same shape.

    Examples:
        >>> from tt_core import tensor
        >>> round(Swish()(tensor([0.0, 1.0])).numpy()[1].item(), 4)
        0.7311
    """

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"Swish needs beta > 0, got {beta}")
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return x * F.sigmoid(x * self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"

"""Act I layers: ``Linear`` and the activations ``ReLU`` and ``Sigmoid``.

Each one is a :class:`tt_core.Module` with the contract of the component it stands in for
(``layer:Linear``, ``activation:ReLU``, ``activation:Sigmoid``): the same constructor
arguments, parameter names and shapes, initialisation distribution and forward values, so a
model built with them trains and loads checkpoints exactly as one built with tt-core's.
"""

from __future__ import annotations

import math

import numpy as np
from tt_core import Module, Parameter, ShapeError, Tensor, apply
from tt_core.rng import generator


def _positive_int(name: str, value) -> int:
    """``value`` as an int, or a ValueError naming the argument when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Linear needs {name} to be a positive integer, got {value!r}")
    return int(value)


class Linear(Module):
    """An affine map ``y = x @ weight.T + bias``.

    Parameters (float32):
        ``weight`` of shape (out_features, in_features) and ``bias`` of shape (out_features,)
        (absent when ``bias=False``), each drawn uniformly from ``[-k, k]`` with
        ``k = 1 / sqrt(in_features)``, from tt-core's global generator (so
        ``tt_core.manual_seed`` makes the draw repeatable).

    Args:
        in_features: size of each input sample (a positive integer).
        out_features: size of each output sample (a positive integer).
        bias: whether to learn an additive bias (default True).

    Raises:
        ValueError: a size that is not a positive integer.

    Shape:
        input (*, in_features) -> output (*, out_features); a 1-D input (in_features,) gives
        (out_features,).

    Examples:
        >>> from tt_core import ones
        >>> layer = Linear(4, 3)
        >>> [(name, p.shape) for name, p in layer.named_parameters()]
        [('weight', (3, 4)), ('bias', (3,))]
        >>> layer(ones(2, 4)).shape
        (2, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _positive_int("in_features", in_features)
        self.out_features = _positive_int("out_features", out_features)
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), dtype=np.float32))
        self.bias = Parameter(np.zeros(self.out_features, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights (and bias) uniformly from ``[-1/sqrt(in_features), 1/sqrt(in_features)]``."""
        limit = 1.0 / math.sqrt(self.in_features)
        rng = generator()
        self.weight.data = rng.uniform(-limit, limit, size=self.weight.shape).astype(np.float32)
        if self.bias is not None:
            self.bias.data = rng.uniform(-limit, limit, size=self.bias.shape).astype(np.float32)

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias`` for ``x`` of shape (*, in_features).

        Raises:
            ShapeError: the last axis of ``x`` is not ``in_features`` long.
        """
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}) needs inputs whose last axis has "
                f"{self.in_features} features, got shape {x.shape}"
            )
        out = x @ self.weight.T
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """``max(x, 0)`` element-wise, through tt-core's ``relu`` kernel.

    The backward pass is the gradient rule registered for ``relu`` (this package's
    :func:`tt_learner_example.grad_rules.relu_grad` when it is the chosen provider).

    Shape:
        any shape -> the same shape and dtype.
    """

    def forward(self, x: Tensor) -> Tensor:
        return apply("relu", x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` element-wise, through tt-core's ``sigmoid`` kernel.

    The kernel takes ``exp`` of ``-|x|`` only, so it never overflows: large negative inputs
    give values near 0 (not ``nan``), large positive ones values near 1. The backward pass is
    the gradient rule registered for ``sigmoid`` (this package's
    :func:`tt_learner_example.grad_rules.sigmoid_grad` when it is the chosen provider).

    Shape:
        any shape -> the same shape and dtype (integer inputs give float32).
    """

    def forward(self, x: Tensor) -> Tensor:
        return apply("sigmoid", x)

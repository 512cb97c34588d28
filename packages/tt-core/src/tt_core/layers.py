"""Layers of Act I: ``Linear``, the activations and ``Dropout``."""

from __future__ import annotations

import math

import numpy as np

from . import functional as F
from .errors import ArgumentError
from .module import Module, Parameter
from .rng import generator
from .tensor import Tensor, is_whole_number


class Linear(Module):
    """``y = x @ W.T + b``, initialised as PyTorch does (uniform in ±1/sqrt(in_features)).

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias (default True).

    Shape:
        input (*, in_features) -> output (*, out_features).

    Raises:
        ArgumentError: a size that is not a positive whole number (``0``, ``2.5``).

    Examples:
        >>> from tt_core import randn
        >>> Linear(4, 3)(randn(2, 4)).shape
        (2, 3)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        sizes = (in_features, out_features)
        if not all(is_whole_number(n) and n > 0 for n in sizes):
            raise ArgumentError(f"Linear needs positive whole-number sizes, got in_features={in_features!r}, "
                                f"out_features={out_features!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=np.float32))
        self.bias = Parameter(np.empty(out_features, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # kaiming_uniform(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as does the bias
        bound = 1 / math.sqrt(self.in_features)
        # Column-major, so that ``weight.T`` is an ordinary C-contiguous (in, out) matrix: for a
        # few rows of input (generation), BLAS multiplies by it 1.3-6x faster than by a
        # transposed one. Shape, values and state_dict are those of PyTorch's (out, in) weight.
        self.weight.data = np.asfortranarray(generator().uniform(-bound, bound, self.weight.shape), dtype=np.float32)
        if self.bias is not None:
            self.bias.data = generator().uniform(-bound, bound, self.bias.shape).astype("float32")

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(x, 0).

    Examples:
        >>> from tt_core import tensor
        >>> ReLU()(tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)), computed without overflow."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """The hyperbolic tangent, element-wise."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class GELU(Module):
    """Gaussian error linear unit (tanh approximation)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max for stability."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """log(softmax(x)) computed as x - logsumexp(x), never as the log of a small number."""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.axis)


class Dropout(Module):
    """Zero elements with probability ``p`` in training; the identity in ``eval()``.

    Raises:
        ArgumentError: ``p`` is not a number in [0, 1).

    Examples:
        >>> from tt_core import ones
        >>> Dropout(0.5).eval()(ones(3))
        tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        F.check_dropout_probability(p)
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"

"""Functional forms of the layers: plain functions on Tensors.

Examples:
    >>> from tt_core import tensor
    >>> relu(tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""

from __future__ import annotations

import numpy as np

from . import dispatch
from .errors import ShapeError
from .rng import generator
from .tensor import Tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features).

    Raises:
        ShapeError: the last axis of ``x`` is not ``in_features``.

    Examples:
        >>> from tt_core import ones, tensor
        >>> linear(ones(1, 2), tensor([[1.0, 2.0], [3.0, 4.0]]), tensor([0.5, 0.5]))
        tensor([[3.5, 7.5]])
    """
    if x.shape[-1] != weight.shape[-1]:
        raise ShapeError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight expects "
            f"{weight.shape[-1]} (weight shape {weight.shape})"
        )
    out = x @ weight.T
    return out if bias is None else out + bias


def relu(x: Tensor) -> Tensor:
    """max(x, 0), element-wise."""
    return dispatch.apply("relu", x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed without overflow for large |x|.

    Examples:
        >>> from tt_core import tensor
        >>> sigmoid(tensor([-1000.0, 0.0, 1000.0]))
        tensor([0. , 0.5, 1. ])
    """
    return dispatch.apply("sigmoid", x)


def tanh(x: Tensor) -> Tensor:
    """The hyperbolic tangent, element-wise."""
    return dispatch.apply("tanh", x)


def gelu(x: Tensor) -> Tensor:
    """GELU with the tanh approximation (as PyTorch's ``gelu(x, approximate='tanh')``)."""
    return dispatch.apply("gelu", x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so it never overflows.

    Examples:
        >>> from tt_core import tensor
        >>> softmax(tensor([1000.0, 1000.0]))  # exp(1000) alone would be inf
        tensor([0.5, 0.5])
    """
    return dispatch.apply("softmax", x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``: finite even where softmax underflows to 0.

    Examples:
        >>> from tt_core import tensor
        >>> log_softmax(tensor([0.0, -200.0]))  # softmax gives [1, 0]; its log would be -inf
        tensor([   0., -200.])
    """
    return dispatch.apply("log_softmax", x, axis=axis)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    Raises:
        ValueError: ``p`` is not in [0, 1).

    Examples:
        >>> from tt_core import manual_seed, ones
        >>> _ = manual_seed(0)
        >>> sorted(set(dropout(ones(1000), p=0.5).tolist()))  # survivors doubled: the mean stays 1
        [0.0, 2.0]
        >>> dropout(ones(3), p=0.5, training=False)  # evaluation: the identity
        tensor([1., 1., 1.])
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    mask = (generator().random(x.shape, dtype=np.float32) >= p).astype(x.dtype)
    mask *= 1 / (1 - p)  # survivors are scaled so that the expected value is unchanged
    return x * Tensor._make(mask)

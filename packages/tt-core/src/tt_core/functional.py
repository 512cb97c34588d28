"""Functional forms of the layers: plain functions on Tensors."""

from __future__ import annotations

import numpy as np

from . import dispatch
from .errors import ShapeError
from .rng import generator
from .tensor import Tensor


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` with ``weight`` of shape (out_features, in_features)."""
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
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    return dispatch.apply("sigmoid", x)


def tanh(x: Tensor) -> Tensor:
    """The hyperbolic tangent, element-wise."""
    return dispatch.apply("tanh", x)


def gelu(x: Tensor) -> Tensor:
    """GELU with the tanh approximation (as PyTorch's ``gelu(x, approximate='tanh')``)."""
    return dispatch.apply("gelu", x)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so it never overflows."""
    return dispatch.apply("softmax", x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``: finite even where softmax underflows to 0."""
    return dispatch.apply("log_softmax", x, axis=axis)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    mask = (generator().random(x.shape, dtype=np.float32) >= p).astype(x.dtype)
    mask *= 1 / (1 - p)  # survivors are scaled so that the expected value is unchanged
    return x * Tensor._make(mask)

"""In-place NumPy kernels for inference paths (no autograd, no Tensor wrappers).

They compute what tt-core's and tt-language's ops compute, with the same functions (the
formulas are written once, in the Act that owns the op), but overwrite their argument where
they can instead of allocating, so the fused layers and the cached decoder
dispatch as few NumPy calls as possible.
"""

from __future__ import annotations

import numpy as np
from tt_core.ops import gelu_tanh
from tt_language.ops import normalize as _normalize


def normalize(x: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over the last axis (biased variance): a layer norm
    without its scale and shift, which the caller folds into the next matrix; new array.
    The formula of ``tt_language.ops.normalize``, which the training kernel uses too."""
    return _normalize(x, eps)[0]


def gelu_(x: np.ndarray) -> np.ndarray:
    """GELU (tanh approximation) of ``x``, written into ``x``: ``x/2 (1 + t)`` with ``t`` from
    ``tt_core.ops.gelu_tanh``, the values of the training kernel to the last bit."""
    t = gelu_tanh(x)
    t += 1.0
    t *= 0.5
    x *= t
    return x


def relu_(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def tanh_(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def sigmoid_(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place, without overflow (exp of a non-positive number only)."""
    e = np.exp(-np.abs(x))
    positive = x >= 0
    np.divide(1.0, 1.0 + e, out=x, where=positive)
    np.divide(e, 1.0 + e, out=x, where=~positive)
    return x


ACTIVATIONS = {"ReLU": relu_, "GELU": gelu_, "Tanh": tanh_, "Sigmoid": sigmoid_}

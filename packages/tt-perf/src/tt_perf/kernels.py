"""In-place NumPy kernels for inference paths (no autograd, no Tensor wrappers).

They compute what tt-core's and tt-language's ops compute (same formulas, same float32), but
overwrite their argument instead of allocating, so the fused layers and the cached decoder
dispatch as few NumPy calls as possible.
"""

from __future__ import annotations

import numpy as np

GELU_C = float(np.sqrt(2 / np.pi))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (biased variance); new array.

    The means are ``np.add.reduce(...) / n``: what ``np.mean`` computes, without its Python wrapper.
    """
    n = x.shape[-1]
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) / n
    var = np.add.reduce(centred * centred, axis=-1, keepdims=True) / n
    centred *= 1.0 / np.sqrt(var + eps)
    centred *= weight
    centred += bias
    return centred


def gelu_(x: np.ndarray) -> np.ndarray:
    """GELU (tanh approximation) of ``x``, written into ``x``: 0.5 x (1 + tanh(c (x + 0.044715 x³)))."""
    inner = x * x
    inner *= 0.044715 * GELU_C
    inner += GELU_C
    inner *= x
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    x *= inner
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

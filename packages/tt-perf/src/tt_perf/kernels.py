"""In-place NumPy kernels for inference paths (no autograd, no Tensor wrappers).

They compute what tt-core's and tt-language's ops compute (same formulas, same float32), but
overwrite their argument instead of allocating, so the fused layers and the cached decoder
dispatch as few NumPy calls as possible.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

GELU_C = float(np.sqrt(2 / np.pi))


@lru_cache(maxsize=16)
def _mean_column(n: int, dtype) -> np.ndarray:
    column = np.full((n, 1), 1.0 / n, dtype=dtype)
    column.flags.writeable = False
    return column


def normalize(x: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over the last axis (biased variance): a layer norm
    without its scale and shift, which the caller folds into the next matrix; new array.

    Both means are products with a column of ``1/n``: one BLAS call each, cheaper for short
    rows than ``np.mean``'s reduction machinery.
    """
    column = _mean_column(x.shape[-1], x.dtype)
    centred = x - x @ column
    var = np.square(centred) @ column
    var += eps
    centred /= np.sqrt(var, out=var)
    return centred


def gelu_(x: np.ndarray) -> np.ndarray:
    """GELU (tanh approximation) of ``x``, written into ``x``.

    ``0.5 x (1 + tanh(u))`` with ``u = c (x + 0.044715 x³)`` equals ``x / (1 + exp(-2u))``: the
    same function with one ``exp`` instead of a ``tanh``, which costs less in NumPy.
    ``-2u`` is clipped at 80 so ``exp`` never overflows (where it would, the result is 0 to
    float32 precision anyway).
    """
    e = x * x
    e *= -2.0 * 0.044715 * GELU_C
    e -= 2.0 * GELU_C
    e *= x
    np.minimum(e, 80.0, out=e)
    np.exp(e, out=e)
    e += 1.0
    x /= e
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

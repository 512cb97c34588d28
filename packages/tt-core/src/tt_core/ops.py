"""The forward kernels of tt-core's primitives, registered as ops (kind ``op``).

A forward kernel takes a context object, the input arrays and keyword attributes, and returns
the output array. It may store on the context what a gradient rule needs later, and says so in
its :class:`~tt_core.dispatch.Op`'s ``saves`` (:data:`SAVES`)::

    def relu(ctx, x):
        return np.maximum(x, 0)

Gradient rules are *not* here: tt-learn registers one per op name (kind ``grad_rule``), written
against these kernels' contract (the standard context and the saved values). How an op call
runs and is recorded is in :mod:`tt_core.dispatch`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .dispatch import Op

# ----------------------------------------------------------------------------------------
# Sums as BLAS products (for kernels and gradient rules)
# ----------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _ones(shape: int | tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    ones = np.ones(shape, dtype=dtype)
    ones.setflags(write=False)
    return ones


BLAS_SUM_MIN_ELEMENTS = 256
"""Below this many elements NumPy's own reduction is quicker (a BLAS call costs more to set
up); above it the product wins (2x on the (4, 30, 30) scores of a 30-token attention)."""


def _blas_ready(a: np.ndarray) -> bool:
    return a.dtype in (np.float32, np.float64) and a.size >= BLAS_SUM_MIN_ELEMENTS and a.flags.c_contiguous


def row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=-1, keepdims=True)``, computed as one matrix product ``a @ ones`` with a
    column of ones (no reshapes: 1.2 instead of 2.1 us on a (64, 128) array).

    BLAS sums a float32 or float64 array several times faster than NumPy's reduction and on
    every BLAS thread; the values agree with ``np.sum`` up to float rounding (the order of the
    additions differs). Other arrays (integers, non-contiguous views, small ones) are summed by NumPy.

    Examples:
        >>> row_sums(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
        [[3.0], [7.0]]
    """
    if a.ndim == 0 or not _blas_ready(a):
        # np.add.reduce is np.sum without its Python wrapper; integers keep np.sum's promotion
        return (np.add.reduce if a.dtype.kind == "f" else np.sum)(a, axis=-1, keepdims=True)
    return a @ _ones((a.shape[-1], 1), a.dtype)


def row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a * b).sum(axis=-1, keepdims=True)`` without the product array: each row of ``a``
    times the matching column of ``b`` (one stacked matmul of (1, C) by (C, 1)): against the
    product and :func:`row_sums`, 1.4-1.6x as fast on 64 or 1,024 rows of 128, 1.5-2x on
    rows of 512, 1.2x on rows of 32. ``a`` and ``b`` broadcast as in a matmul and have at
    least one axis.

    Examples:
        >>> row_dots(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [0.0, 2.0]])).tolist()
        [[3.0], [8.0]]
    """
    return (a[..., None, :] @ b[..., :, None])[..., 0]


def leading_sums(a: np.ndarray, count: int) -> np.ndarray:
    """``a`` summed over its first ``count`` axes (shape ``a.shape[count:]``), as one product
    ``ones @ a``: how a bias gradient sums over the batch. Same fallback as :func:`row_sums`.

    Examples:
        >>> leading_sums(np.ones((2, 3, 4)), 2).tolist()
        [6.0, 6.0, 6.0, 6.0]
    """
    if count == 0:
        return a
    if not _blas_ready(a) or count == a.ndim:
        return np.sum(a, axis=tuple(range(count)), keepdims=True).reshape(a.shape[count:])
    rows = math.prod(a.shape[:count])
    return (_ones(rows, a.dtype) @ a.reshape(rows, -1)).reshape(a.shape[count:])


# ----------------------------------------------------------------------------------------
# Forward kernels of tt-core's primitives
# ----------------------------------------------------------------------------------------


def _floating(a: np.ndarray) -> np.ndarray:
    """Integer and boolean inputs of float-valued functions become float32 (NumPy would
    give float64, and the sigmoid of an int array would be cast back to int)."""
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def add(ctx, a, b):
    return a + b


def sub(ctx, a, b):
    return a - b


def mul(ctx, a, b):
    return a * b


def div(ctx, a, b):
    return a / b


def pow(ctx, a, b):  # noqa: A001 - the op's name
    return a**b


def neg(ctx, a):
    return -a


def matmul(ctx, a, b):
    return a @ b


def sum(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.sum(a, axis=axis, keepdims=keepdims)


def mean(ctx, a, axis=None, keepdims=False):
    return np.mean(_floating(a), axis=axis, keepdims=keepdims)


def max(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.max(a, axis=axis, keepdims=keepdims)


def min(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.min(a, axis=axis, keepdims=keepdims)


def getitem(ctx, a, index):
    return a[index]


def reshape(ctx, a, shape):
    return a.reshape(shape)


def transpose(ctx, a, axes):
    return a.transpose(axes)


def concatenate(ctx, *arrays, axis=0):
    return np.concatenate(arrays, axis=axis)


def stack(ctx, *arrays, axis=0):
    return np.stack(arrays, axis=axis)


def where(ctx, condition, a, b):
    return np.where(condition, a, b)


def cast(ctx, a, dtype):
    return a.astype(dtype)


def exp(ctx, a):
    return np.exp(_floating(a))


def log(ctx, a):
    return np.log(_floating(a))


def sqrt(ctx, a):
    return np.sqrt(_floating(a))


def abs(ctx, a):  # noqa: A001
    return np.abs(a)


def clip(ctx, a, low=None, high=None):
    return np.clip(a, low, high)


# -- activations -------------------------------------------------------------------------


def relu(ctx, x):
    return np.maximum(x, 0)


def sigmoid(ctx, x):
    # exp of a non-positive number only: no overflow for large |x|
    x = _floating(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def tanh(ctx, x):
    return np.tanh(_floating(x))


GELU_C = float(np.sqrt(2 / np.pi))  # a Python float keeps float32 inputs float32
GELU_CUBIC = 0.044715
"""GELU's tanh approximation: ``gelu(x) = x/2 (1 + tanh(GELU_C (x + GELU_CUBIC x³)))``."""


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """``t = tanh(GELU_C (x + GELU_CUBIC x³))``, so that ``gelu(x) = x/2 (1 + t)``.

    The one place GELU's formula is written: the training kernel :func:`gelu` (which saves
    ``t`` for its gradient rule) and every inference kernel compute ``t`` with it.

    Args:
        x: a floating-point array (its dtype is kept).

    Returns:
        A new array of ``x``'s shape and dtype.
    """
    t = np.multiply(x, x, out=np.empty_like(x))  # an array even for 0-d x; x**3 would call pow(), ~20x slower
    t *= GELU_C * GELU_CUBIC  # GELU_C (x + GELU_CUBIC x³) = x (GELU_C + GELU_C GELU_CUBIC x²): five passes
    t += GELU_C
    t *= x
    return np.tanh(t, out=t)  # in place: one fresh array instead of five


def gelu(ctx, x):
    """GELU, tanh approximation (PyTorch's ``GELU(approximate='tanh')``)."""
    x = _floating(x)
    ctx.tanh = gelu_tanh(x)
    out = ctx.tanh + 1
    out *= 0.5
    out *= x
    return out


def softmax(ctx, x, axis=-1):
    x = _floating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(ctx, x, axis=-1):
    x = _floating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


SAVES = {"gelu": ("tanh",)}  # what a kernel stores on ctx for its rule (the rest store nothing)

CORE_OPS: dict[str, Op] = {
    f.__name__: Op(f, saves=SAVES.get(f.__name__, ()))
    for f in (
        add, sub, mul, div, pow, neg, matmul, sum, mean, max, min, getitem, reshape, transpose,
        concatenate, stack, where, cast, exp, log, sqrt, abs, clip,
        relu, sigmoid, tanh, gelu, softmax, log_softmax,
    )
}

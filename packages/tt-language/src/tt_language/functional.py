"""Functional forms of Act IV's operations: plain functions on Tensors."""

from __future__ import annotations

import numpy as np
from tt_core import Tensor, apply
from tt_core.errors import ShapeError, TinyTorchError


def embedding(ids, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (V, D) at the integer ``ids`` (any shape) -> ids.shape + (D,)."""
    ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
    if ids.dtype.kind not in "iu":
        raise TinyTorchError(f"embedding ids must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
        raise TinyTorchError(
            f"embedding ids must be in [0, {weight.shape[0]}), got values from {ids.min()} to {ids.max()}"
        )
    return apply("embedding", weight, indices=ids)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise the last axis to mean 0 and variance 1, then ``* weight + bias``."""
    if weight.shape != (x.shape[-1],) or bias.shape != (x.shape[-1],):
        raise ShapeError(
            f"layer_norm: input of shape {x.shape} needs weight and bias of shape ({x.shape[-1]},), "
            f"got {weight.shape} and {bias.shape}"
        )
    return apply("layer_norm", x, weight, bias, eps=eps)


def scaled_dot_product_attention(
    q: Tensor, k: Tensor, v: Tensor, mask=None, causal: bool = False, scale: float | None = None
) -> Tensor:
    """``softmax(q k^T * scale) v`` for q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv).

    Args:
        mask: boolean, broadcastable to (..., Tq, Tk), True where a query may attend; for a
            padding mask of shape (B, Tk) pass ``padding_mask(valid)``.
        causal: query ``i`` sees only keys up to its own position (aligned to the last key,
            so cached earlier keys stay visible).
        scale: default ``1/sqrt(d)``.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit (q and k need the same "
            "last size, k and v the same number of keys)"
        )
    mask = _check_mask(mask, q.shape[:-1] + (k.shape[-2],))
    return apply("scaled_dot_product_attention", q, k, v, mask=mask, causal=causal, scale=scale)


def self_attention(qkv: Tensor, num_heads: int, mask=None, causal: bool = False) -> Tensor:
    """Multi-head self-attention on packed projections ``qkv`` (B, T, 3C) -> (B, T, C):
    the fused form of splitting q, k, v into heads, :func:`scaled_dot_product_attention`,
    and joining the heads again. ``mask`` as there, broadcastable to (B, heads, T, T)."""
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * num_heads):
        raise ShapeError(f"self_attention needs (B, T, 3C) with C divisible by {num_heads} heads, got {qkv.shape}")
    batch, length = qkv.shape[:2]
    mask = _check_mask(mask, (batch, num_heads, length, length))
    return apply("self_attention", qkv, num_heads=num_heads, mask=mask, causal=causal)


def _check_mask(mask, scores_shape: tuple) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
    try:
        np.broadcast_shapes(mask.shape, scores_shape)
    except ValueError:
        raise ShapeError(
            f"attention mask of shape {mask.shape} does not broadcast to (..., Tq, Tk) = {scores_shape}"
        ) from None
    return mask


def padding_mask(valid) -> np.ndarray:
    """A (B, Tk) "this key is a real token" array as an attention mask of shape (B, 1, 1, Tk)
    (broadcast over heads and queries)."""
    valid = np.asarray(valid.data if isinstance(valid, Tensor) else valid, dtype=bool)
    return valid[:, None, None, :]


def sinusoidal_encoding(length: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """The fixed positional encoding of "Attention Is All You Need": (length, dim) with
    ``sin(pos / base^(2i/dim))`` in even and ``cos(...)`` in odd columns."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dimension, got {dim}")
    positions = np.arange(length, dtype=np.float64)[:, None]
    frequencies = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = positions * frequencies
    table = np.empty((length, dim), dtype=np.float32)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table

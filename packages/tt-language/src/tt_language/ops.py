"""The primitives of Act IV, each forward kernel beside its gradient rule.

* ``embedding``: rows of a weight table picked by integer ids; the gradient scatter-adds
  the output gradient back into the picked rows (a repeated id collects every gradient).
* ``layer_norm``: normalise the last axis to mean 0 and variance 1, then scale and shift;
  fused, so the backward pass is one short formula instead of a dozen recorded ops.
* ``scaled_dot_product_attention``: ``softmax(q k^T / sqrt(d) + mask) v`` on batched arrays
  of shape (..., T, d): one batched matmul for every batch element and head at once.

They are registered as ops (kind ``op``) and gradient rules (kind ``grad_rule``) by this
package's plugin and run through ``tt_core.apply``. Kernels keep their input's dtype (float32
in models, float64 under gradcheck).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# ----------------------------------------------------------------------------------------
# embedding
# ----------------------------------------------------------------------------------------


def embedding(ctx, weight, indices):
    """``weight[indices]``: (V, D) and integer ids of any shape -> ids.shape + (D,)."""
    return weight[indices]


def embedding_grad(ctx, grad):
    """Scatter-add: row ``i`` of the weight gradient sums the output gradients of every
    position whose id is ``i`` (``np.add.at`` adds repeated ids instead of overwriting)."""
    weight = ctx.inputs[0]
    indices = ctx.attrs["indices"]
    grad_weight = np.zeros_like(weight)
    np.add.at(grad_weight, indices.reshape(-1), grad.reshape(-1, weight.shape[1]))
    return (grad_weight,)


# ----------------------------------------------------------------------------------------
# layer_norm
# ----------------------------------------------------------------------------------------


def layer_norm(ctx, x, weight, bias, eps=1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (biased variance,
    as PyTorch). Saves the normalised input and ``1/std`` for the gradient."""
    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = centred * rstd
    ctx.xhat, ctx.rstd = xhat, rstd
    return xhat * weight + bias


def layer_norm_grad(ctx, grad):
    """With ``xhat`` the normalised input and ``g = grad * weight``:
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``dweight = sum(grad * xhat)``,
    ``dbias = sum(grad)`` (sums over every axis but the last). The formula never divides by a
    small difference, so it stays accurate for inputs of any scale."""
    x, weight, _ = ctx.inputs
    need_x, need_w, need_b = ctx.needs
    xhat, rstd = ctx.xhat, ctx.rstd
    lead = tuple(range(x.ndim - 1))
    grad_x = grad_w = grad_b = None
    if need_x:
        g = grad * weight
        grad_x = rstd * (g - g.mean(axis=-1, keepdims=True) - xhat * np.mean(g * xhat, axis=-1, keepdims=True))
    if need_w:
        grad_w = np.sum(grad * xhat, axis=lead)
    if need_b:
        grad_b = np.sum(grad, axis=lead)
    return grad_x, grad_w, grad_b


# ----------------------------------------------------------------------------------------
# scaled dot-product attention
# ----------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def causal_mask(queries: int, keys: int) -> np.ndarray:
    """Boolean (queries, keys): True where query ``i`` may look at key ``j``. Aligned to the
    bottom right, so with ``keys > queries`` (earlier keys cached) the last query sees every
    key; with ``queries == keys`` it is the usual lower triangle."""
    mask = np.tri(queries, keys, k=keys - queries, dtype=bool)
    mask.setflags(write=False)
    return mask


def scaled_dot_product_attention(ctx, q, k, v, mask=None, causal=False, scale=None):
    """``softmax(q @ k^T * scale) @ v`` on arrays of shape (..., T, d).

    Args (attributes):
        mask: a boolean array broadcastable to (..., Tq, Tk): True where a query may attend
            (False keys, e.g. padding, get weight 0). A query with no allowed key outputs 0.
        causal: also hide later keys (see :func:`causal_mask`).
        scale: defaults to ``1/sqrt(d)``.
    """
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2)
    scores *= scale
    if causal:
        np.copyto(scores, -np.inf, where=~causal_mask(q.shape[-2], k.shape[-2]))
    if mask is not None:
        np.copyto(scores, -np.inf, where=~mask)
    top = scores.max(axis=-1, keepdims=True)
    if mask is not None:
        top[~np.isfinite(top)] = 0  # a fully masked row: exp(-inf) = 0 everywhere, no NaN
    scores -= top
    weights = np.exp(scores, out=scores)
    total = weights.sum(axis=-1, keepdims=True)
    if mask is not None:
        total[total == 0] = 1
    weights /= total
    ctx.weights, ctx.scale = weights, scale
    return weights @ v


def scaled_dot_product_attention_grad(ctx, grad):
    """With ``P`` the attention weights and ``S`` the scaled scores:
    ``dv = P^T g``, ``dP = g v^T``, ``dS = P * (dP - sum(dP * P))`` (the softmax rule),
    ``dq = dS k * scale``, ``dk = dS^T q * scale``."""
    q, k, v = ctx.inputs
    need_q, need_k, need_v = ctx.needs
    weights, scale = ctx.weights, ctx.scale
    grad_v = np.swapaxes(weights, -1, -2) @ grad if need_v else None
    grad_q = grad_k = None
    if need_q or need_k:
        d_weights = grad @ np.swapaxes(v, -1, -2)
        d_scores = d_weights
        d_scores -= np.sum(d_weights * weights, axis=-1, keepdims=True)
        d_scores *= weights
        d_scores *= scale
        grad_q = d_scores @ k if need_q else None
        grad_k = np.swapaxes(d_scores, -1, -2) @ q if need_k else None
    return _unbroadcast(grad_q, q.shape), _unbroadcast(grad_k, k.shape), _unbroadcast(grad_v, v.shape)


def _unbroadcast(grad, shape):
    """Sum a gradient over the leading axes along which an input was broadcast (e.g. keys
    shared by every head)."""
    if grad is None or grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


OPS = {
    "embedding": (embedding, embedding_grad),
    "layer_norm": (layer_norm, layer_norm_grad),
    "scaled_dot_product_attention": (scaled_dot_product_attention, scaled_dot_product_attention_grad),
}

"""The primitives of Act IV, each forward kernel beside its gradient rule.

* ``embedding``: rows of a weight table picked by integer ids; the gradient scatter-adds
  the output gradient back into the picked rows (a repeated id collects every gradient).
* ``layer_norm``: normalise the last axis to mean 0 and variance 1, then scale and shift;
  fused, so the backward pass is one short formula instead of a dozen recorded ops.
* ``scaled_dot_product_attention``: ``softmax(q k^T / sqrt(d) + mask) v`` on batched arrays
  of shape (..., T, d): one batched matmul for every batch element and head at once.
* ``self_attention``: the same on packed (B, T, 3C) projections of all heads, returning the
  heads joined (B, T, C): what ``MultiHeadAttention`` uses in training, with no recorded
  split/transpose/join ops around it.

They are registered as ops (kind ``op``, each kernel with its rule) by this
package's plugin and run through ``tt_core.apply``. Kernels keep their input's dtype (float32
in models, float64 under gradcheck).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from tt_core import Op
from tt_core.ops import leading_sums, row_dots, row_sums
from tt_learn import unbroadcast

# ----------------------------------------------------------------------------------------
# embedding
# ----------------------------------------------------------------------------------------


def embedding(ctx, weight, indices):
    """``weight[indices]``: (V, D) and integer ids of any shape -> ids.shape + (D,)."""
    return weight[indices]


def embedding_grad(ctx, grad):
    """Scatter-add: row ``i`` of the weight gradient sums the output gradients of every
    position whose id is ``i``. The positions are sorted by id, so that each used row's sum
    is one run of consecutive rows (``np.add.reduceat``), several times faster than
    ``np.add.at`` with its per-element loop. Ids are in ``[0, V)`` (checked by
    ``functional.embedding``)."""
    weight = ctx.inputs[0]
    ids = ctx.attrs["indices"].reshape(-1)
    grad = grad.reshape(-1, weight.shape[1])
    grad_weight = np.zeros_like(weight)
    if ids.size:
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        grad_weight[sorted_ids[starts]] = np.add.reduceat(grad[order], starts, axis=0)
    return (grad_weight,)


# ----------------------------------------------------------------------------------------
# layer_norm
# ----------------------------------------------------------------------------------------


def normalize(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """A layer norm without its scale and shift: ``(x - mean) / sqrt(var + eps)`` over the
    last axis (biased variance, as PyTorch).

    The one place the layer norm's formula is written: the training kernel
    :func:`layer_norm` and the inference kernels (which fold the scale and shift into the
    next matrix) both normalise with it.

    Args:
        x: a floating-point array (..., C) (its dtype is kept).
        eps: added to the variance.

    Returns:
        ``(xhat, rstd)``: the normalised array (new, ``x``'s shape) and ``1/std`` (..., 1).
    """
    n = x.shape[-1]
    mean = row_sums(x)
    mean /= n
    xhat = x - mean
    var = row_dots(xhat, xhat)
    var /= n
    var += eps
    rstd = np.sqrt(var, out=var)
    np.reciprocal(rstd, out=rstd)
    xhat *= rstd
    return xhat, rstd


def layer_norm(ctx, x, weight, bias, eps=1e-5):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (see
    :func:`normalize`). Saves the normalised input and ``1/std`` for the gradient."""
    xhat, rstd = normalize(x, eps)
    ctx.xhat, ctx.rstd = xhat, rstd
    out = xhat * weight
    out += bias
    return out


def layer_norm_grad(ctx, grad):
    """With ``xhat`` the normalised input and ``g = grad * weight``:
    ``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))``, ``dweight = sum(grad * xhat)``,
    ``dbias = sum(grad)`` (sums over every axis but the last). The formula never divides by a
    small difference, so it stays accurate for inputs of any scale."""
    x, weight, _ = ctx.inputs
    need_x, need_w, need_b = ctx.needs
    xhat, rstd = ctx.xhat, ctx.rstd
    n, lead = x.shape[-1], x.ndim - 1
    grad_x = grad_w = grad_b = None
    if need_x:
        g = grad * weight
        mean_gx = row_dots(g, xhat)
        mean_gx /= n
        grad_x = xhat * mean_gx
        np.subtract(g, grad_x, out=grad_x)
        mean_g = row_sums(g)
        mean_g /= n
        grad_x -= mean_g
        grad_x *= rstd
    if need_w:
        grad_w = leading_sums(grad * xhat, lead)
    if need_b:
        grad_b = leading_sums(grad, lead)
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


@lru_cache(maxsize=32)
def _hiding(queries: int, keys: int, dtype: np.dtype) -> np.ndarray:
    """:func:`causal_mask` as numbers to add to the scores: 0 where visible, -inf where hidden
    (one addition is about three times faster than a masked copy)."""
    hiding = np.where(causal_mask(queries, keys), 0, -np.inf).astype(dtype)
    hiding.setflags(write=False)
    return hiding


def softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: np.ndarray | None = None,
                      causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``softmax(q @ k^T * scale) @ v`` on arrays q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv).

    The one place the attention softmax is written: both attention ops and every inference
    path (cached decoding included) attend with it.

    Args:
        scale: multiplies the scores (> 0; ``1/sqrt(d)`` in a transformer, 1 when the queries
            are already scaled).
        mask: boolean, broadcastable to (..., Tq, Tk): True where a query may attend; a query
            with no allowed key gets weight 0 everywhere (output 0, never NaN).
        causal: also hide later keys (see :func:`causal_mask`).

    Returns:
        ``(out, weights)``: (..., Tq, dv) and the attention weights (..., Tq, Tk).
    """
    scores = q @ np.swapaxes(k, -1, -2)
    if causal:
        scores += _hiding(q.shape[-2], k.shape[-2], scores.dtype)
    if mask is not None:
        np.copyto(scores, -np.inf, where=~mask)
    weights = _softmax_rows(scores, scale)
    return weights @ v, weights


ROW_GAP = 8.0
"""How far (in scaled score units) a row's maximum may lie below its matrix's before the
row is shifted by its own maximum instead (see :func:`_softmax_rows`)."""


@lru_cache(maxsize=8)
def _lowest(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).min)


def _shift(top: np.ndarray, lowest: float) -> np.ndarray:
    """Maxima ``top`` made finite: the maximum of nothing but hidden keys (-inf) becomes
    ``lowest``, so that subtracting it leaves -inf (weight 0), never NaN."""
    return np.maximum(top, lowest, out=top)


def _softmax_rows(scores: np.ndarray, scale: float) -> np.ndarray:
    """``softmax(scale * scores)`` over the last axis of (..., Tq, Tk) scores (left unchanged).

    Softmax is unchanged by subtracting any constant from a row; the constant only keeps
    ``exp`` from overflowing. One constant per (Tq, Tk) matrix (its maximum) is used instead
    of one per row: NumPy's maximum over rows of 64 costs about three ``exp`` of the same
    array, a matrix's maximum a fifth to a third of one. The shifted scores are rounded to
    the precision of their size, so a row whose maximum lies ``g`` below the matrix's
    loses about ``g`` ulps against its own shift, and with a large ``g`` it underflows.
    Every row whose terms sum to less than ``Tk * exp(-ROW_GAP)`` (so ``g`` may exceed
    :data:`ROW_GAP`) is therefore computed again from its scores, shifted by its own
    maximum, so no row loses more than ``ROW_GAP`` ulps to the shared shift. A row of hidden
    keys only gets weight 0 everywhere."""
    lead, keys = scores.shape[:-2], scores.shape[-1]
    lowest = _lowest(scores.dtype)
    top = scores.reshape(lead + (-1,)).max(axis=-1, keepdims=True, initial=-np.inf)  # initial: no error when empty
    weights = scores - _shift(top, lowest).reshape(lead + (1, 1))
    if scale != 1:
        weights *= scale  # softmax(scale * s) = exp(scale * (s - c)) / sum, as scale > 0
    np.exp(weights, out=weights)
    total = row_sums(weights)
    floor = keys * math.exp(-ROW_GAP)
    if total.size and total.min() < floor:
        low = total[..., 0] < floor
        rows = scores[low]
        rows -= _shift(rows.max(axis=-1, keepdims=True, initial=-np.inf), lowest)
        if scale != 1:
            rows *= scale
        weights[low] = np.exp(rows)
        total[low] = row_sums(weights[low])
        total[total == 0] = 1
    weights /= total
    return weights


def _attend(ctx, q, k, v, mask, causal, scale):
    """The attention forward pass shared by both attention ops; saves the weights on ``ctx``."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    out, ctx.weights = softmax_attention(q, k, v, scale, mask, causal)
    ctx.scale = scale
    return out


def _attend_grad(ctx, grad, out, q, k, v, needs):
    """The attention backward pass. With ``P`` the weights and ``o = P v`` the output:
    ``dv = P^T g``, ``dP = g v^T``, ``dS = P * (dP - rowsum(g * o))`` (the softmax rule, with
    ``rowsum(dP * P) = rowsum(g * o)`` computed on the small output instead of the T x T
    weights), ``dq = scale * dS k``, ``dk = scale * dS^T q``."""
    need_q, need_k, need_v = needs
    weights, scale = ctx.weights, ctx.scale
    grad_v = np.swapaxes(weights, -1, -2) @ grad if need_v else None
    grad_q = grad_k = None
    if need_q or need_k:
        d_scores = grad @ np.swapaxes(v, -1, -2)
        d_scores -= row_sums(grad * out)
        d_scores *= weights
        if need_q:
            grad_q = d_scores @ k
            grad_q *= scale
        if need_k:
            grad_k = np.swapaxes(d_scores, -1, -2) @ q
            grad_k *= scale
    return grad_q, grad_k, grad_v


def scaled_dot_product_attention(ctx, q, k, v, mask=None, causal=False, scale=None):
    """``softmax(q @ k^T * scale) @ v`` on arrays of shape (..., T, d).

    Args (attributes):
        mask: a boolean array broadcastable to (..., Tq, Tk): True where a query may attend
            (False keys, e.g. padding, get weight 0). A query with no allowed key outputs 0.
        causal: also hide later keys (see :func:`causal_mask`).
        scale: defaults to ``1/sqrt(d)``.
    """
    return _attend(ctx, q, k, v, mask, causal, scale)


def scaled_dot_product_attention_grad(ctx, grad):
    q, k, v = ctx.inputs
    grads = _attend_grad(ctx, grad, ctx.out, q, k, v, ctx.needs)
    return tuple(unbroadcast(g, x.shape) if g is not None else None for g, x in zip(grads, (q, k, v)))


def _split_heads(qkv, num_heads):
    """(B, T, 3C) packed queries, keys and values -> views q, k, v of shape (B, heads, T, C/heads)."""
    batch, length, width = qkv.shape
    return qkv.reshape(batch, length, 3, num_heads, width // (3 * num_heads)).transpose(2, 0, 3, 1, 4)


def self_attention(ctx, qkv, num_heads, mask=None, causal=False):
    """Multi-head self-attention on packed projections: ``qkv`` (B, T, 3C) holds the queries,
    keys and values of every head (as ``Linear(C, 3C)`` makes them); returns the heads'
    outputs joined, (B, T, C). The heads are strided views of ``qkv`` (no copies), and all
    (batch, head) pairs go through one batched matmul."""
    q, k, v = _split_heads(qkv, num_heads)
    out = _attend(ctx, q, k, v, mask, causal, None)
    ctx.heads_out = out
    batch, length, width = qkv.shape
    return out.transpose(0, 2, 1, 3).reshape(batch, length, width // 3)


def self_attention_grad(ctx, grad):
    """The gradients of q, k and v, written into one packed (B, T, 3C) array."""
    qkv = ctx.inputs[0]
    q, k, v = _split_heads(qkv, ctx.attrs["num_heads"])
    batch, length, heads, head_dim = q.shape[0], q.shape[2], q.shape[1], q.shape[3]
    grad = grad.reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)
    grad_qkv = np.empty_like(qkv)
    parts = _split_heads(grad_qkv, heads)
    for part, value in zip(parts, _attend_grad(ctx, grad, ctx.heads_out, q, k, v, (True, True, True))):
        part[...] = value
    return (grad_qkv,)


OPS = {
    "embedding": Op(embedding, embedding_grad),
    "layer_norm": Op(layer_norm, layer_norm_grad, saves=("xhat", "rstd")),
    "scaled_dot_product_attention": Op(
        scaled_dot_product_attention, scaled_dot_product_attention_grad, saves=("weights", "scale")
    ),
    "self_attention": Op(self_attention, self_attention_grad, saves=("weights", "scale", "heads_out")),
}

"""Layers of Act IV: embeddings, positional encodings, layer norm, attention, transformer block.

Shapes follow PyTorch's ``batch_first=True`` convention: sequences are (B, T) ids or
(B, T, C) features. Linear layers are applied to (B*T, C) matrices, so each is one BLAS
matmul and its weight gradient one more.
"""

from __future__ import annotations

import math

import numpy as np
from tt_core import GELU, Dropout, Linear, Module, Parameter, Tensor, is_grad_enabled, set_grad_enabled
from tt_core.errors import ArgumentError, ShapeError, TinyTorchError
from tt_core.rng import generator
from tt_core.tensor import is_whole_number

from . import functional as F
from .cache import key_mask, positions


def _normal(shape, std: float) -> np.ndarray:
    return (generator().standard_normal(shape) * std).astype(np.float32)


def _tokens(layer: Module, x: Tensor) -> Tensor:
    """Apply ``layer`` to the last axis of ``x`` (..., C) as one (N, C) matrix. A stack of one
    matrix, (1, T, C) as in generation, already is one and goes in as it is: two reshapes
    fewer per layer, where each op call's overhead is what a step costs."""
    if math.prod(x.shape[:-2]) == 1:
        return layer(x)
    out = layer(x.reshape(-1, x.shape[-1]))
    return out.reshape(x.shape[:-1] + (out.shape[-1],))


def _attend_with_weights(attend, first: Tensor, *rest: Tensor) -> tuple[Tensor, np.ndarray]:
    """Run the attention op call ``attend(first, *rest)`` and return its output with the
    softmax weights its kernel saved as ``ctx.weights`` (batch, heads, queries, keys).

    The weights are those of the very forward pass that made the output (no second
    computation of attention): when the call is recorded for autograd they are read from its
    graph node; otherwise (under ``no_grad``, or with nothing needing a gradient) the call is
    recorded once on a detached copy of ``first`` and the output returned detached, exactly
    as it would have been.

    Raises:
        TinyTorchError: the kernel that ran saves no ``weights`` (a kernel of another
            provider that keeps its softmax under another name, or not at all).
    """
    recorded = is_grad_enabled() and any(t.requires_grad for t in (first, *rest))
    if recorded:
        out = attend(first, *rest)
        node = out._node
    else:
        previous = set_grad_enabled(True)
        try:
            traced = attend(first.detach().requires_grad_(True), *rest)
        finally:
            set_grad_enabled(previous)
        node, out = traced._node, traced.detach()
    try:
        weights = node.ctx.weights
    except (AttributeError, TinyTorchError):
        raise TinyTorchError(
            f"return_attention: the kernel of op {node.op.name!r} (from {node.op.kernel_dist}) saves no attention "
            "weights; a kernel must store its softmax weights (batch, heads, queries, keys) as ctx.weights "
            "and list 'weights' in Op(..., saves=...)"
        ) from None
    weights = weights.view()
    weights.setflags(write=False)  # the gradient rule reads the same array: look, do not touch
    return out, weights


def _outputs(main, weights, return_attention: bool):
    """``main``, followed by ``weights`` with ``return_attention``."""
    return (main, weights) if return_attention else main


class Embedding(Module):
    """A lookup table: id ``i`` -> row ``i`` of ``weight`` (num_embeddings, embedding_dim).

    The weight gradient is a scatter-add of the output gradient into the rows that were
    looked up; rows no id used get zero.

    Shape:
        integer ids (*) -> (*, embedding_dim).

    Raises:
        ArgumentError: a size that is not a positive whole number.

    Examples:
        >>> Embedding(10, 4)(np.array([[1, 2, 3]])).shape
        (1, 3, 4)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, std: float = 1.0) -> None:
        super().__init__()
        if not all(is_whole_number(n) and n > 0 for n in (num_embeddings, embedding_dim)):
            raise ArgumentError(f"Embedding needs positive whole-number sizes, got {num_embeddings!r} x {embedding_dim!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_normal((num_embeddings, embedding_dim), std))  # torch: N(0, 1)

    def forward(self, ids) -> Tensor:
        return F.embedding(ids, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class PositionalEncoding(Module):
    """Adds position information to (B, T, C) features: ``x + table[start:start+T]``.

    Args:
        max_len: the longest sequence (positions 0 .. max_len-1).
        dim: the feature size C.
        kind: ``"learned"`` (a trained table, as GPT) or ``"sinusoidal"`` (the fixed sines and
            cosines of the 2017 paper, a buffer).

    Raises:
        ArgumentError: an unknown ``kind``.
    """

    def __init__(self, max_len: int, dim: int, kind: str = "learned") -> None:
        super().__init__()
        if kind not in ("learned", "sinusoidal"):
            raise ArgumentError(f"kind must be 'learned' or 'sinusoidal', got {kind!r}")
        self.max_len, self.dim, self.kind = max_len, dim, kind
        if kind == "learned":
            self.weight = Parameter(_normal((max_len, dim), 0.02))
        else:
            self.register_buffer("weight", Tensor(F.sinusoidal_encoding(max_len, dim)))

    def forward(self, x: Tensor, start: int = 0, padding=None) -> Tensor:
        """``padding``: left padding per row of (B, T, C) features; each row's positions then
        count from its first real token (see :mod:`tt_language.cache`)."""
        length = x.shape[-2]
        if start + length > self.max_len:
            raise ShapeError(
                f"positions {start}..{start + length - 1} exceed the positional encoding's max_len "
                f"{self.max_len}: use shorter sequences or a larger max_len (the model's block_size)"
            )
        rows = positions(padding, start, length)
        return x + (self.weight[start : start + length] if rows is None else F.embedding(rows, self.weight))

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}, kind={self.kind!r}"


class LayerNorm(Module):
    """Normalise each feature vector (the last axis) to mean 0, variance 1, then scale by
    ``weight`` (ones) and shift by ``bias`` (zeros). One fused op with its own gradient rule.

    Shape:
        (*, normalized_shape) -> same.

    Examples:
        >>> y = LayerNorm(4)(Tensor([[1.0, 2.0, 3.0, 4.0]]))
        >>> round(float(y.data.mean()), 4), round(float(y.data.var()), 3)
        (0.0, 1.0)
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.normalized_shape, self.eps = int(normalized_shape), eps
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=np.float32))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class MultiHeadAttention(Module):
    """Multi-head self-attention, every head in one batched matmul.

    One linear layer makes queries, keys and values for all heads at once (C -> 3C); the
    result is viewed as (3, B, heads, T, head_dim), attention runs on all (B, heads) pairs
    together, and the heads are joined and projected back (C -> C).

    Args:
        embed_dim: C, divisible by ``num_heads``.
        num_heads: number of heads.
        causal: each position attends only to itself and earlier positions (language models).
        dropout: dropout on the output projection.

    Forward:
        ``attn(x, mask=None, cache=None, layer=0)`` with x (B, T, C) -> (B, T, C); ``mask``: a
        (B, T) array, True for real tokens (padding is never attended to), or any boolean
        array broadcastable to (B, heads, T, T_keys). ``cache``: a key/value cache (see
        :mod:`tt_language.cache`): this layer stores its keys and values there as entry
        ``layer`` and attends over every cached position, so that generation can feed one
        new token at a time; the cache's left ``padding`` is hidden from attention.

        ``return_attention=True`` also returns the attention weights of this pass, last:
        ``(out, weights)``, ``weights`` a read-only
        (B, heads, T, T_keys) array whose row ``[b, h, i]`` is how query ``i`` of head ``h``
        spread its attention over the keys (each row sums to 1, masked keys get 0). They are
        the softmax the attention kernel computed and saved for its gradient rule, so asking
        for them costs no second attention; not asking costs nothing.

    Raises:
        ArgumentError: ``embed_dim`` or ``num_heads`` is not a positive whole number, or
            ``embed_dim`` is not divisible by ``num_heads`` (a ValueError too).
        ShapeError: ``x`` is not (B, T, embed_dim).
        TinyTorchError: with ``return_attention``, the attention kernel in use saves no
            ``weights``.

    Examples:
        >>> import tt_core as tt
        >>> attn = MultiHeadAttention(8, num_heads=2, causal=True)
        >>> x = tt.randn(2, 5, 8)
        >>> later_changed = x.data.copy()
        >>> later_changed[:, 3:] = 100.0
        >>> a, b = attn(x), attn(Tensor(later_changed))
        >>> a.shape, bool(np.allclose(a.data[:, :3], b.data[:, :3], atol=1e-6))  # causal: the past only
        ((2, 5, 8), True)
    """

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        if not all(is_whole_number(n) and n > 0 for n in (embed_dim, num_heads)):
            raise ArgumentError(f"embed_dim and num_heads must be positive whole numbers, got {embed_dim!r} and "
                                f"{num_heads!r}")
        if embed_dim % num_heads:
            raise ArgumentError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}: each head gets "
                                "embed_dim // num_heads features")
        self.embed_dim, self.num_heads, self.causal = embed_dim, num_heads, causal
        self.head_dim = embed_dim // num_heads
        self.qkv = Linear(embed_dim, 3 * embed_dim)
        self.proj = Linear(embed_dim, embed_dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, mask=None, cache=None, layer: int = 0, return_attention: bool = False):
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ShapeError(
                f"MultiHeadAttention({self.embed_dim}) takes features of shape (batch, time, {self.embed_dim}), "
                f"got {x.shape}"
            )
        batch, length, width = x.shape
        if mask is not None and np.ndim(mask) == 2:
            mask = F.padding_mask(mask)
        qkv = _tokens(self.qkv, x)  # (B, T, 3C): queries, keys and values of every head
        weights = None
        if cache is None:
            attend = lambda packed: F.self_attention(packed, self.num_heads, mask=mask, causal=self.causal)
            out, weights = _attend_with_weights(attend, qkv) if return_attention else (attend(qkv), None)
        else:  # the same computation on explicit heads, so that keys and values can be cached
            q, k, v = qkv.reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            k, v = cache.update(layer, k, v)
            hidden = key_mask(getattr(cache, "padding", None), k.shape[2])
            if hidden is not None:
                mask = hidden if mask is None else mask & hidden
            attend = lambda *qkv_heads: F.scaled_dot_product_attention(*qkv_heads, mask=mask, causal=self.causal)
            out, weights = _attend_with_weights(attend, q, k, v) if return_attention else (attend(q, k, v), None)
            out = out.permute(0, 2, 1, 3).reshape(batch, length, width)  # join the heads
        out = self.dropout(_tokens(self.proj, out))
        return _outputs(out, weights, return_attention)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, causal={self.causal}"


class MLP(Module):
    """The transformer's feed-forward part: C -> hidden -> C with GELU between."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = Linear(dim, hidden)
        self.act = GELU()
        self.proj = Linear(hidden, dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(_tokens(self.proj, self.act(_tokens(self.fc, x))))


class TransformerBlock(Module):
    """A pre-norm transformer block (GPT-2): ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``.

    Normalising *before* each sub-layer keeps the residual path an identity, which lets deep
    stacks train without warm-up tricks.

    Args:
        embed_dim, num_heads: as :class:`MultiHeadAttention`.
        mlp_ratio: hidden size of the MLP as a multiple of ``embed_dim`` (4).
        causal: causal self-attention (True for language models).
        dropout: on the attention projection and the MLP output.

    Forward:
        ``block(x, mask=None, cache=None, layer=0, return_attention=False)``: as
        :class:`MultiHeadAttention` (its attention is entry ``layer`` of ``cache``), returning
        (B, T, C), then the attention weights (B, heads, T, T_keys) with ``return_attention``.
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: int = 4, causal: bool = True, dropout: float = 0.0):
        super().__init__()
        self.ln1 = LayerNorm(embed_dim)
        self.attn = MultiHeadAttention(embed_dim, num_heads, causal=causal, dropout=dropout)
        self.ln2 = LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, mlp_ratio * embed_dim, dropout)

    def forward(self, x: Tensor, mask=None, cache=None, layer: int = 0, return_attention: bool = False):
        attended = self.attn(self.ln1(x), mask=mask, cache=cache, layer=layer, return_attention=return_attention)
        attended, weights = attended if return_attention else (attended, None)
        x = x + attended
        x = x + self.mlp(self.ln2(x))
        return _outputs(x, weights, return_attention)


def init_gpt_weights(module: Module, num_layers: int) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the projections that
    write into the residual stream scaled down by sqrt(2 * layers). Values are written into
    the existing arrays, which keep their memory layout."""
    for name, param in module.named_parameters():
        if ".ln" in f".{name}":  # layer norms keep ones and zeros
            continue
        if name.endswith("bias"):
            param.data[...] = 0.0
            continue
        std = 0.02 / math.sqrt(2 * num_layers) if name.endswith("proj.weight") else 0.02
        param.data[...] = _normal(param.shape, std)

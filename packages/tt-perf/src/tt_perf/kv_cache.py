"""KV cache and batched generation for tt-language's GPT.

Generating token ``t+1`` needs attention of the newest position over all earlier ones. Without
a cache, every step runs the whole sequence through the model again, although the keys and
values of the earlier positions have not changed: step ``t`` costs O(t) and a text of n
tokens O(n²). A *KV cache* keeps every layer's keys and values; each step then runs only the
one new token through the model, appends its key and value, and attends over the cache.

The cost of a cached step is tiny arithmetic (one row through each matrix), so what decides
the speed is Python overhead: how many operations are dispatched per step. The
:class:`CachedDecoder` therefore takes the GPT's weights once, as contiguous NumPy arrays laid
out for ``x @ W``, and a step is ~50 NumPy calls per layer, with no autograd and no Tensor
wrappers. Work that would repeat at every step is done once, when the weights are copied:

* each layer norm's scale and shift are folded into the matrix that follows it,
  ``LN(x) @ W + b = norm(x) @ (diag(g) W) + (beta W + b)``, so a step only normalises;
* the attention scale ``1/sqrt(head_dim)`` is folded into the query columns of ``qkv``.

The cache is a :class:`KVCache`, the cache tt-language's own attention layers take
(``GPT(ids, cache=...)``, ``tt_language.generate(..., cache=...)``): preallocated for the whole
generation (``(batch, heads, max_len, head_dim)`` per layer), so a step writes one column
instead of concatenating. The decoder is an inference-only acceleration of that cached path
(the same cache, the same attention kernel), checked against it in the tests.

**Batched generation.** Prompts of different lengths are *left-padded* to the same length, so
every sequence's next token goes into the same cache column and a decoding step is one
matrix product per weight for the whole batch. The dense layers only ever see the real
tokens (the prompts are packed into one matrix for the first step); attention sees the padded
grid, where an additive mask (``-inf``) hides the padding columns. Each row has its own
position ids (counting from its first real token), so a padded prompt produces exactly what
it would alone.

The layout follows ``tt_language.GPT`` (pre-norm blocks with ``ln1``, ``attn.qkv``,
``attn.proj``, ``ln2``, ``mlp.fc``, ``mlp.proj``; ``tok_emb``, ``pos``, ``ln_f``, ``head``)
and its kernels (layer norm with biased variance, GELU with the tanh approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tt_core
from tt_core import Module, Tensor
from tt_core.errors import ArgumentError, ShapeError, TinyTorchError
from tt_core.tensor import is_whole_number
from tt_language.cache import key_mask, left_padding
from tt_language.generation import (
    SamplingError,
    check_max_new_tokens,
    check_sampling,
    private_generator,
    sample_next,
    token_ids,
)
from tt_language.ops import softmax_attention

from .kernels import gelu_, normalize


@dataclass
class _Block:
    """One transformer block's weights for ``x @ W``: layer norms folded into ``qkv`` and ``fc``."""

    eps1: float
    qkv_w: np.ndarray
    qkv_b: np.ndarray
    proj_w: np.ndarray
    proj_b: np.ndarray
    eps2: float
    fc_w: np.ndarray
    fc_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray


def _weight_bias(linear) -> tuple[np.ndarray, np.ndarray]:
    """A Linear layer as float64 ``(in, out)`` weight and bias (zeros without one)."""
    weight = linear.weight.data.T.astype(np.float64)
    bias = np.zeros(weight.shape[1]) if getattr(linear, "bias", None) is None else linear.bias.data.astype(np.float64)
    return weight, bias


def _float32(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(weight, dtype=np.float32), bias.astype(np.float32)


def _folded(norm, linear, column_scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``linear(norm(x))`` as ``normalize(x) @ W + b``: the norm's scale and shift moved into
    ``W`` and ``b`` (in float64, then rounded once); ``column_scale`` multiplies output columns."""
    weight, bias = _weight_bias(linear)
    gamma, beta = norm.weight.data.astype(np.float64), norm.bias.data.astype(np.float64)
    weight, bias = gamma[:, None] * weight, beta @ weight + bias
    if column_scale is not None:
        weight, bias = weight * column_scale, bias * column_scale
    return _float32(weight, bias)


class KVCache:
    """The key/value cache of tt-language's attention layers (the contract of
    :mod:`tt_language.cache`), preallocated: a step writes its columns, nothing is concatenated.

    Each layer's keys and values are one (batch, heads, max_len, head_dim) float32 array,
    allocated at the layer's first update; ``update`` returns views of the filled columns.
    Given Tensors (the model's cached path, under ``no_grad``) it returns Tensors over those
    views: the cache is for inference, gradients do not flow through it.

    Args:
        max_len: the most positions it holds (prompt + new tokens).
        padding: optional left padding per row of the batch (see :mod:`tt_language.cache`).

    Raises:
        ArgumentError: ``max_len`` not a whole number > 0, ``padding`` not one whole number
            >= 0 per row, layers updated out of order.
        ShapeError: an update that does not continue the layer's batch, heads and head size.
        TinyTorchError: more positions than ``max_len``.

    Examples:
        >>> import numpy as np
        >>> import tt_core as tt
        >>> from tt_language import GPT, generate
        >>> _ = tt.manual_seed(0)
        >>> model = GPT(vocab_size=20, block_size=16, num_layers=1, num_heads=2, embed_dim=16)
        >>> prompt = np.array([3, 1, 4])
        >>> out = generate(model, prompt, 10, temperature=0, cache=KVCache(13))
        >>> bool((out == generate(model, prompt, 10, temperature=0)).all())  # as without it
        True
    """

    def __init__(self, max_len: int, padding=None) -> None:
        if not is_whole_number(max_len) or max_len <= 0:
            raise ArgumentError(f"KVCache needs max_len, a whole number > 0 of positions, got {max_len!r}")
        self.max_len = int(max_len)
        self.padding = None if padding is None else np.asarray(padding)
        self.keys: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.filled: list[int] = []

    @property
    def length(self) -> int:
        return self.filled[0] if self.filled else 0

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in zip(self.keys, self.values))

    def update(self, layer: int, keys, values):
        tensors = isinstance(keys, Tensor)
        keys, values = (keys.data, values.data) if tensors else (keys, values)
        if layer == len(self.keys):
            batch, heads, _, head_dim = keys.shape
            self.padding = left_padding(self.padding, batch)
            self.keys.append(np.zeros((batch, heads, self.max_len, head_dim), dtype=np.float32))
            self.values.append(np.zeros_like(self.keys[-1]))
            self.filled.append(0)
        elif not 0 <= layer < len(self.keys):
            raise ArgumentError(f"layer {layer}: the cache holds layers 0..{len(self.keys) - 1}; "
                                "update layers in the order they run, starting at 0")
        stored = self.keys[layer]
        if keys.shape[:2] != stored.shape[:2] or keys.shape[3] != stored.shape[3]:
            raise ShapeError(f"layer {layer}: new keys {keys.shape} do not fit the cache's (batch, heads, max_len, "
                             f"head_dim) = {stored.shape}")
        begin = self.filled[layer]
        stop = begin + keys.shape[2]
        if stop > self.max_len:
            raise TinyTorchError(f"the KV cache holds {self.max_len} positions, {begin} are filled and "
                                 f"{keys.shape[2]} more came: make the cache with a larger max_len")
        stored[:, :, begin:stop] = keys
        self.values[layer][:, :, begin:stop] = values
        self.filled[layer] = stop
        out = stored[:, :, :stop], self.values[layer][:, :, :stop]
        return (Tensor(out[0]), Tensor(out[1])) if tensors else out


class CachedDecoder:
    """A GPT's weights, copied once into the layout of a fast, cached, inference-only step.

    Args:
        model: a ``tt_language.GPT`` (or a model with the same attribute layout). Later
            changes to the model's weights are not seen: build a new decoder after training.

    Examples:
        >>> import numpy as np
        >>> import tt_core as tt
        >>> from tt_language import GPT, generate
        >>> _ = tt.manual_seed(0)
        >>> model = GPT(vocab_size=20, block_size=16, num_layers=1, num_heads=2, embed_dim=16)
        >>> prompt = np.array([3, 1, 4])
        >>> decoder = CachedDecoder(model)
        >>> out = decoder.generate(prompt, 10)  # greedy, with the KV cache
        >>> out.shape, bool((out == generate(model, prompt, 10, temperature=0)).all())  # as without it
        ((13,), True)
    """

    def __init__(self, model: Module) -> None:
        try:
            blocks = list(model.blocks)
            self.heads = int(blocks[0].attn.num_heads)
            self.wte = np.ascontiguousarray(model.tok_emb.weight.data, dtype=np.float32)
            self.wpe = np.ascontiguousarray(model.pos.weight.data, dtype=np.float32)
            self.embed_dim = self.wte.shape[1]
            self.head_dim = self.embed_dim // self.heads
            query_scale = np.ones(3 * self.embed_dim)
            query_scale[:self.embed_dim] = 1.0 / np.sqrt(self.head_dim)
            self.blocks = [
                _Block(float(b.ln1.eps), *_folded(b.ln1, b.attn.qkv, query_scale), *_float32(*_weight_bias(b.attn.proj)),
                       float(b.ln2.eps), *_folded(b.ln2, b.mlp.fc), *_float32(*_weight_bias(b.mlp.proj)))
                for b in blocks
            ]
            self.eps_f = float(model.ln_f.eps)
            self.head_w, self.head_b = _folded(model.ln_f, model.head)
        except AttributeError as error:
            raise tt_core.TinyTorchError(
                f"CachedDecoder needs tt-language's GPT layout (tok_emb, pos, blocks[i].ln1/attn.qkv/attn.proj/"
                f"ln2/mlp.fc/mlp.proj, ln_f, head); {type(model).__name__} lacks {error.name!r}") from None
        if getattr(model.pos, "kind", "learned") not in ("learned", "sinusoidal"):
            raise tt_core.TinyTorchError(f"unsupported positional encoding {model.pos.kind!r}")
        self.block_size = int(model.block_size)

    def new_cache(self, max_len: int, padding=None) -> KVCache:
        """An empty :class:`KVCache` of ``max_len`` positions (at most the model's context)."""
        if max_len > self.block_size:
            raise tt_core.TinyTorchError(
                f"{max_len} positions do not fit the model's context of {self.block_size}: generate fewer tokens, "
                "use shorter prompts or a model with a larger block_size")
        return KVCache(max_len, padding)

    # -- one forward step over the new tokens -------------------------------------------

    def step(self, ids: np.ndarray, positions: np.ndarray, cache: KVCache) -> np.ndarray:
        """Run the new ``ids`` (B, T) at ``positions`` (B, T) through the model, appending their
        keys and values to ``cache``; returns the logits of each row's last real token, (B, vocab)
        (every row needs one among the new tokens: left padding guarantees it).

        The dense layers work on one (N, C) matrix of the N real tokens, so each is a single
        BLAS call for the whole batch and no arithmetic is spent on left padding. Only attention sees the padded (B, heads, T, head_dim) grid: the real rows are
        scattered into it and gathered back.
        """
        batch, new = ids.shape
        start, stop = cache.length, cache.length + new
        width, heads, head_dim = self.embed_dim, self.heads, self.head_dim
        padding = np.zeros(batch, dtype=np.int64) if cache.padding is None else cache.padding
        real_in_block = np.arange(start, stop)[None, :] >= padding[:, None]
        real = None if real_in_block.all() else np.flatnonzero(real_in_block)
        ids, positions = ids.reshape(-1), positions.reshape(-1)
        if real is not None:
            ids, positions = ids[real], positions[real]
        x = self.wte[ids]
        x += self.wpe[positions]
        mask = key_mask(padding, stop)
        for layer, blk in enumerate(self.blocks):
            qkv = normalize(x, blk.eps1) @ blk.qkv_w
            qkv += blk.qkv_b
            if real is not None:  # padding positions get zeros (masked anyway)
                grid = np.zeros((batch * new, 3 * width), dtype=np.float32)
                grid[real] = qkv
                qkv = grid
            q, k, v = qkv.reshape(batch, new, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            keys, values = cache.update(layer, k, v)
            attended, _ = softmax_attention(q, keys, values, 1.0, mask, causal=new > 1)  # queries pre-scaled
            attended = attended.transpose(0, 2, 1, 3).reshape(batch * new, width)
            x += (attended if real is None else attended[real]) @ blk.proj_w
            x += blk.proj_b
            hidden = normalize(x, blk.eps2) @ blk.fc_w
            hidden += blk.fc_b
            x += gelu_(hidden) @ blk.out_w
            x += blk.out_b
        if real is None:
            last = x.reshape(batch, new, width)[:, -1]
        else:  # each row's last real token in the packed rows
            last = x[np.cumsum(real_in_block.sum(axis=1)) - 1]
        logits = normalize(last, self.eps_f) @ self.head_w
        logits += self.head_b
        return logits

    # -- generation ----------------------------------------------------------------------
    def generate(self, prompts, max_new_tokens: int, *, temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None):
        """Continue one prompt or a batch of prompts (of any lengths) by ``max_new_tokens``.

        Args:
            prompts: ids (T,), a batch (B, T), or a list of 1-D id arrays of different lengths
                (left-padded and masked internally).
            temperature: 0 is greedy; otherwise sampled as ``tt_language.sample_next``
                (``top_k``, ``top_p``, ``seed``).

        Returns:
            Like the input: (T + n,) for one prompt, (B, T + n) for an array, a list of
            (T_i + n,) arrays for a list.

        Raises:
            SamplingError: before any work, for ids that are not integers (never truncated)
                or lie outside the vocabulary, an empty prompt, a ``max_new_tokens`` that is
                not a whole number >= 0, a bad ``seed``, or sampling options out of range.
            TinyTorchError: prompt and new tokens longer than the model's ``block_size``.
        """
        rows, single, as_list = _prompt_rows(prompts, self.wte.shape[0])
        max_new_tokens = check_max_new_tokens(max_new_tokens)
        check_sampling(temperature, top_k, top_p)
        rng = private_generator(seed)
        lengths = np.array([len(r) for r in rows])
        width = int(lengths.max())
        batch, total = len(rows), width + max_new_tokens
        ids = np.zeros((batch, total), dtype=np.int64)
        pad = width - lengths
        for i, row in enumerate(rows):  # one copy per prompt, not per token
            ids[i, pad[i]:width] = row
        positions = np.maximum(np.arange(total)[None, :] - pad[:, None], 0)
        cache = self.new_cache(total, pad)
        for t in range(width, total):
            begin = cache.length
            logits = self.step(ids[:, begin:t], positions[:, begin:t], cache)
            ids[:, t] = _choose(logits, temperature, top_k, top_p, rng)
        if single:
            return ids[0]
        if as_list:
            return [ids[i, pad[i]:] for i in range(batch)]
        return ids


def _prompt_rows(prompts, vocab_size: int) -> tuple[list[np.ndarray], bool, bool]:
    """Prompts as a list of 1-D int64 arrays of checked ids (see ``tt_language.generation.token_ids``),
    and whether the input was one prompt / a list."""
    if isinstance(prompts, (list, tuple)) and prompts and np.ndim(prompts[0]) == 1:
        if any(np.size(p) == 0 for p in prompts):
            raise SamplingError("every prompt needs at least one id")
        rows = [token_ids(p, f"prompt {i}", vocab_size) for i, p in enumerate(prompts)]
        if any(r.ndim != 1 for r in rows):
            raise SamplingError("a list of prompts holds 1-D id arrays, one per prompt")
        return rows, False, True
    array = np.asarray(getattr(prompts, "data", prompts))
    if array.size == 0:
        raise SamplingError(f"every prompt needs at least one id, got shape {array.shape}")
    array = token_ids(array, "prompts", vocab_size)
    if array.ndim not in (1, 2):
        raise SamplingError(f"prompts must be ids (T,), (B, T) or a list of 1-D arrays, got shape {array.shape}")
    return list(np.atleast_2d(array)), array.ndim == 1, False


def _choose(logits: np.ndarray, temperature: float, top_k, top_p, rng) -> np.ndarray:
    if temperature == 0 and top_k is None and top_p is None:
        return logits.argmax(axis=-1)
    return sample_next(logits, temperature, top_k, top_p, rng)


def kv_generate(model, prompts, max_new_tokens: int, **options):
    """Generate with a KV cache: ``CachedDecoder(model).generate(prompts, max_new_tokens, ...)``.

    ``model`` may also be a :class:`CachedDecoder` (reuse it to skip copying the weights).
    Options as :meth:`CachedDecoder.generate` (``temperature``, ``top_k``, ``top_p``, ``seed``).
    """
    decoder = model if isinstance(model, CachedDecoder) else CachedDecoder(model)
    return decoder.generate(prompts, max_new_tokens, **options)


def one_at_a_time(decoder: CachedDecoder, prompts: Sequence[np.ndarray], max_new_tokens: int, **options) -> list:
    """Generate for each prompt separately (the baseline that batching is measured against)."""
    return [decoder.generate(p, max_new_tokens, **options) for p in prompts]

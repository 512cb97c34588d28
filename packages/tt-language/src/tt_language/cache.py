"""The key/value cache contract of the attention layers, and a simple list-backed cache.

Generating one token at a time, a model only needs to run the new token through its layers
if every attention layer keeps the keys and values of the earlier positions. The layers of
tt-language (:class:`~tt_language.MultiHeadAttention`, :class:`~tt_language.TransformerBlock`,
:class:`~tt_language.GPT`) take such a store as ``cache=``; any object with this interface
works (tt-perf's preallocated ``KVCache`` is one):

* ``length`` (int): the positions the cache holds, read *before* a forward pass: the new
  tokens are positions ``length, length + 1, ...``.
* ``update(layer, keys, values) -> (all_keys, all_values)``: append the new keys and values
  of attention layer ``layer`` (0, 1, ... in the order the layers run), each
  (B, heads, T_new, head_dim), and return every position's, (B, heads, length + T_new, head_dim).
* ``padding`` (None or B ints): left padding of each row of a batch. Key column ``j`` of row
  ``b`` is hidden from attention when ``j < padding[b]`` and the positions of row ``b`` count
  from its first real token, so a left-padded prompt gives what it would alone.
"""

from __future__ import annotations

import numpy as np
from tt_core import Tensor, concatenate
from tt_core.errors import ArgumentError, ShapeError


def left_padding(padding, batch: int) -> np.ndarray | None:
    """``padding`` checked as (batch,) whole numbers >= 0 (None stays None)."""
    if padding is None:
        return None
    array = np.asarray(padding)
    if array.shape != (batch,) or array.dtype.kind not in "iu" or (array < 0).any():
        raise ArgumentError(f"padding must be {batch} whole numbers >= 0 (one per row of the batch), got {padding!r}")
    return array.astype(np.int64)


def key_mask(padding, keys: int) -> np.ndarray | None:
    """(B, 1, 1, keys) boolean attention mask, False on each row's left padding; None without padding."""
    if padding is None or not np.any(padding):
        return None
    return (np.arange(keys)[None, :] >= np.asarray(padding)[:, None])[:, None, None, :]


def positions(padding, start: int, length: int) -> np.ndarray | None:
    """(B, length) position ids of new tokens at columns ``start..start+length-1``, counted from
    each row's first real token (padding columns get 0); None without padding."""
    if padding is None or not np.any(padding):
        return None
    return np.maximum(start + np.arange(length)[None, :] - np.asarray(padding)[:, None], 0)


class ListKVCache:
    """The cache contract by concatenation: each update joins the new keys and values to the
    stored ones (differentiable; simple, and O(length) copying per step).

    Args:
        padding: optional left padding per row (see the module docstring).

    Examples:
        >>> import tt_core as tt
        >>> from tt_language import GPT
        >>> _ = tt.manual_seed(0)
        >>> model = GPT(vocab_size=20, block_size=16, num_layers=2, num_heads=2, embed_dim=16).eval()
        >>> ids = np.array([[3, 1, 4, 1, 5, 9]])
        >>> cache = ListKVCache()
        >>> first, rest = model(ids[:, :4], cache=cache), model(ids[:, 4:], cache=cache)
        >>> cache.length, bool(np.allclose(rest.data, model(ids).data[:, 4:], atol=1e-5))
        (6, True)
    """

    def __init__(self, padding=None) -> None:
        self.padding = None if padding is None else np.asarray(padding, dtype=np.int64)
        self.keys: list = []
        self.values: list = []

    @property
    def length(self) -> int:
        return 0 if not self.keys else int(self.keys[0].shape[2])

    def update(self, layer: int, keys, values):
        if layer == len(self.keys):
            if self.padding is not None:
                left_padding(self.padding, keys.shape[0])
            self.keys.append(keys)
            self.values.append(values)
        elif 0 <= layer < len(self.keys):
            if keys.shape[:2] != self.keys[layer].shape[:2] or keys.shape[3] != self.keys[layer].shape[3]:
                raise ShapeError(f"layer {layer}: new keys {keys.shape} do not continue the cached "
                                 f"{self.keys[layer].shape} (same batch, heads and head size)")
            self.keys[layer] = concatenate([_tensor(self.keys[layer]), _tensor(keys)], axis=2)
            self.values[layer] = concatenate([_tensor(self.values[layer]), _tensor(values)], axis=2)
        else:
            raise ArgumentError(f"layer {layer}: the cache holds layers 0..{len(self.keys) - 1}; "
                                "update layers in the order they run, starting at 0")
        return self.keys[layer], self.values[layer]


def _tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)

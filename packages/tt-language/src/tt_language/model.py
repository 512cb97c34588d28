"""``GPT``: a decoder-only transformer language model (GPT-2's architecture, small)."""

from __future__ import annotations

import numpy as np
from tt_core import Dropout, Linear, Module, ModuleList, Tensor
from tt_core.errors import ShapeError

from .layers import Embedding, LayerNorm, PositionalEncoding, TransformerBlock, _outputs, _tokens, init_gpt_weights


class GPT(Module):
    """Token embedding + positions -> ``num_layers`` pre-norm transformer blocks -> layer
    norm -> logits over the vocabulary at every position.

    Args:
        vocab_size: number of token ids.
        block_size: the longest context (positions).
        num_layers, num_heads, embed_dim: the transformer's size.
        dropout: dropout on embeddings, attention projections and MLP outputs.
        tie_weights: the output layer reuses the token embedding table (fewer parameters;
            GPT-2 does this).
        positional: ``"learned"`` or ``"sinusoidal"`` positions.

    Raises:
        ArgumentError: a size that is not a positive whole number, an ``embed_dim`` not
            divisible by ``num_heads``, a dropout outside [0, 1) or an unknown ``positional``.

    Forward:
        ``model(ids)`` with integer ids (B, T), T <= block_size -> logits (B, T, vocab_size).
        ``model(ids, cache=cache)`` continues from the keys and values ``cache`` holds (block
        ``i`` is its entry ``i``; see :mod:`tt_language.cache`): ``ids`` are positions
        ``cache.length, ...``, and their keys and values are added to the cache.
        ``model(ids, return_attention=True)`` also returns, last, what every head attended to
        in this pass: a list with one read-only (B, heads, T, T_keys) array of attention
        weights per block (see :class:`~tt_language.layers.MultiHeadAttention`), e.g.
        ``logits, attention = model(ids, return_attention=True)``; ``attention[-1][0, h]`` is
        head ``h`` of the last block on the first sequence (row: query, column: key).

    Raises:
        ShapeError: ``ids`` is not (batch, time), or longer than ``block_size``.

    Examples:
        >>> model = GPT(vocab_size=65, block_size=32, num_layers=2, num_heads=2, embed_dim=32)
        >>> model(np.zeros((4, 16), dtype=np.int64)).shape
        (4, 16, 65)
        >>> logits, attention = model(np.zeros((4, 16), dtype=np.int64), return_attention=True)
        >>> len(attention), attention[0].shape  # one map per block: (batch, heads, queries, keys)
        (2, (4, 2, 16, 16))
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        num_layers: int = 4,
        num_heads: int = 4,
        embed_dim: int = 128,
        dropout: float = 0.0,
        tie_weights: bool = True,
        positional: str = "learned",
    ) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "block_size": block_size, "num_layers": num_layers, "num_heads": num_heads,
                           "embed_dim": embed_dim, "dropout": dropout, "tie_weights": tie_weights, "positional": positional}
        self.vocab_size, self.block_size = vocab_size, block_size
        self.tok_emb = Embedding(vocab_size, embed_dim)
        self.pos = PositionalEncoding(block_size, embed_dim, kind=positional)
        self.drop = Dropout(dropout)
        self.blocks = ModuleList(
            TransformerBlock(embed_dim, num_heads, causal=True, dropout=dropout) for _ in range(num_layers)
        )
        self.ln_f = LayerNorm(embed_dim)
        self.head = Linear(embed_dim, vocab_size, bias=False)
        init_gpt_weights(self, num_layers)
        if tie_weights:
            self.head.weight = self.tok_emb.weight

    def forward(self, ids, cache=None, return_attention: bool = False):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.ndim != 2:
            raise ShapeError(f"GPT takes ids of shape (batch, time), got {ids.shape}")
        start, padding = (0, None) if cache is None else (int(cache.length), getattr(cache, "padding", None))
        x = self.drop(self.pos(self.tok_emb(ids), start=start, padding=padding))
        attention = []
        for i, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=i, return_attention=return_attention)
            if return_attention:
                x, weights = x
                attention.append(weights)
        logits = _tokens(self.head, self.ln_f(x))
        return _outputs(logits, attention, return_attention)

    @classmethod
    def from_config(cls, config: dict) -> GPT:
        return cls(**config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())

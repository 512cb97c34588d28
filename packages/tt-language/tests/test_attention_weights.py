"""The attention weights of a forward pass: ``return_attention`` on MultiHeadAttention,
TransformerBlock and GPT, checked against softmax(q k^T / sqrt(d)) computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core as tt
from tt_core.errors import TinyTorchError
from tt_language import GPT, MultiHeadAttention, TransformerBlock
from tt_language.cache import ListKVCache
from tt_language.layers import _attend_with_weights
from tt_learn import no_grad

RNG = np.random.default_rng(7)


def by_hand(attn: MultiHeadAttention, x: np.ndarray, causal: bool, valid: np.ndarray | None = None) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) per head, from the layer's qkv weights, in float64."""
    batch, length, width = x.shape
    heads, head_dim = attn.num_heads, attn.head_dim
    qkv = x.astype(np.float64) @ attn.qkv.weight.data.T.astype(np.float64) + attn.qkv.bias.data
    q, k, _ = (qkv[..., i * width:(i + 1) * width].reshape(batch, length, heads, head_dim).transpose(0, 2, 1, 3)
               for i in range(3))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim)
    allowed = np.ones((batch, 1, length, length), dtype=bool)
    if causal:
        allowed &= np.tril(np.ones((length, length), dtype=bool))
    if valid is not None:
        allowed &= valid[:, None, None, :]
    scores = np.where(allowed, scores, -np.inf)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return scores / scores.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("causal", [False, True])
def test_weights_are_the_softmax_of_scaled_scores(causal):
    tt.manual_seed(0)
    attn = MultiHeadAttention(8, 2, causal=causal)
    x = RNG.standard_normal((3, 5, 8)).astype(np.float32)
    out, weights = attn(tt.Tensor(x), return_attention=True)
    assert weights.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(weights, by_hand(attn, x, causal), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.data, attn(tt.Tensor(x)).data, rtol=1e-6, atol=1e-7)
    assert not weights.flags.writeable


def test_padding_mask_gives_masked_keys_no_weight():
    tt.manual_seed(1)
    attn = MultiHeadAttention(8, 4)
    x = RNG.standard_normal((2, 6, 8)).astype(np.float32)
    valid = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    _, weights = attn(tt.Tensor(x), mask=valid, return_attention=True)
    np.testing.assert_allclose(weights, by_hand(attn, x, False, valid), rtol=1e-4, atol=1e-6)
    assert np.all(weights[0, :, :, 4:] == 0)


def test_weights_under_no_grad_and_gradients_unchanged_when_recorded():
    tt.manual_seed(2)
    attn = MultiHeadAttention(8, 2, causal=True)
    x = RNG.standard_normal((2, 4, 8)).astype(np.float32)
    with no_grad():
        out, weights = attn(tt.Tensor(x), return_attention=True)
    assert not out.requires_grad and out._node is None
    np.testing.assert_allclose(weights, by_hand(attn, x, True), rtol=1e-4, atol=1e-6)

    attn(tt.Tensor(x)).sum().backward()
    plain = attn.qkv.weight.grad.data.copy()
    attn.zero_grad()
    out, _ = attn(tt.Tensor(x), return_attention=True)
    out.sum().backward()
    np.testing.assert_allclose(attn.qkv.weight.grad.data, plain, rtol=1e-5, atol=1e-7)


def test_cached_pass_returns_the_new_queries_rows():
    tt.manual_seed(3)
    attn = MultiHeadAttention(8, 2, causal=True)
    x = RNG.standard_normal((1, 5, 8)).astype(np.float32)
    with no_grad():
        _, full = attn(tt.Tensor(x), return_attention=True)
        cache = ListKVCache()
        attn(tt.Tensor(x[:, :4]), cache=cache)
        _, last = attn(tt.Tensor(x[:, 4:]), cache=cache, return_attention=True)
    assert cache.keys[0].shape == (1, 2, 5, 4) and last.shape == (1, 2, 1, 5)
    np.testing.assert_allclose(last[:, :, 0], full[:, :, 4], rtol=1e-4, atol=1e-6)


def test_block_and_gpt_return_one_map_per_block():
    tt.manual_seed(4)
    model = GPT(vocab_size=11, block_size=8, num_layers=3, num_heads=2, embed_dim=16)
    ids = RNG.integers(0, 11, (2, 6))
    with no_grad():
        logits, attention = model(ids, return_attention=True)
        np.testing.assert_allclose(logits.data, model(ids).data, rtol=1e-6, atol=1e-6)
        x = model.pos(model.tok_emb(ids))
        for block, weights in zip(model.blocks, attention, strict=True):
            assert weights.shape == (2, 2, 6, 6)
            np.testing.assert_allclose(weights, by_hand(block.attn, block.ln1(x).data, True), rtol=1e-4, atol=1e-6)
            x = block(x)
        cache = ListKVCache()
        _, again = model(ids, cache=cache, return_attention=True)
    assert len(cache.keys) == len(again) == 3
    np.testing.assert_array_equal(again[-1], attention[-1])


def test_transformer_block_forward_without_the_flag_is_unchanged():
    tt.manual_seed(5)
    block = TransformerBlock(8, 2)
    x = tt.Tensor(RNG.standard_normal((1, 3, 8)).astype(np.float32))
    out, weights = block(x, return_attention=True)
    assert isinstance(block(x), tt.Tensor) and weights.shape == (1, 2, 3, 3)
    np.testing.assert_allclose(out.data, block(x).data, rtol=1e-6, atol=1e-7)


def test_a_kernel_that_saves_no_weights_is_named():
    with pytest.raises(TinyTorchError, match=r"op 'mul' .* saves no attention weights"):
        _attend_with_weights(lambda t: t * 2.0, tt.Tensor(np.ones((1, 2), dtype=np.float32)))

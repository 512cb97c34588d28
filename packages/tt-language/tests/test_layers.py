"""Layers, the GPT model and generation."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core as tt
from tt_core.errors import ArgumentError, ShapeError
from tt_language import (
    GPT,
    Embedding,
    LayerNorm,
    MultiHeadAttention,
    PositionalEncoding,
    TransformerBlock,
    generate,
    sample_next,
)
from tt_language.cache import ListKVCache
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import AdamW

RNG = np.random.default_rng(1)


def small_gpt(**kwargs):
    tt.manual_seed(0)
    config = {"vocab_size": 11, "block_size": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 16} | kwargs
    return GPT(**config)


def test_embedding_and_positional_encodings():
    emb = Embedding(10, 4)
    assert emb(np.array([[1, 2, 3]])).shape == (1, 3, 4)
    x = tt.zeros(2, 5, 8)
    learned = PositionalEncoding(6, 8)
    assert np.array_equal(learned(x, start=1).data[0], learned.weight.data[1:6])
    fixed = PositionalEncoding(6, 8, kind="sinusoidal")
    assert [n for n, _ in fixed.named_parameters()] == [] and "weight" in fixed.state_dict()
    with pytest.raises(ShapeError, match="max_len"):
        learned(x, start=2)
    with pytest.raises(ValueError):
        PositionalEncoding(6, 8, kind="rotary")


def test_layer_norm_module():
    ln = LayerNorm(8)
    out = ln(tt.Tensor(RNG.standard_normal((3, 8)) * 5)).data
    assert np.allclose(out.mean(-1), 0, atol=1e-5)
    assert sorted(n for n, _ in ln.named_parameters()) == ["bias", "weight"]


def test_multi_head_attention_matches_torch():
    torch = pytest.importorskip("torch")
    tt.manual_seed(0)
    attn = MultiHeadAttention(16, 4, causal=True)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():  # torch packs q, k, v the same way: rows [q; k; v], heads contiguous
        ref.in_proj_weight.copy_(torch.from_numpy(attn.qkv.weight.data))
        ref.in_proj_bias.copy_(torch.from_numpy(attn.qkv.bias.data))
        ref.out_proj.weight.copy_(torch.from_numpy(attn.proj.weight.data))
        ref.out_proj.bias.copy_(torch.from_numpy(attn.proj.bias.data))
    x = RNG.standard_normal((3, 7, 16)).astype(np.float32)
    valid = np.ones((3, 7), dtype=bool)
    valid[1, 5:] = False
    xt = tt.Tensor(x, requires_grad=True)
    out = attn(xt, mask=valid)
    out.sum().backward()
    xr = torch.tensor(x, requires_grad=True)
    future = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1)
    expected, _ = ref(xr, xr, xr, attn_mask=future, key_padding_mask=torch.from_numpy(~valid), need_weights=False)
    expected.sum().backward()
    assert np.allclose(out.data, expected.detach().numpy(), atol=1e-5)
    assert np.allclose(xt.grad.data, xr.grad.numpy(), atol=1e-4)
    assert np.allclose(attn.qkv.weight.grad.data, ref.in_proj_weight.grad.numpy(), atol=1e-4)


def test_multi_head_attention_rejects_bad_sizes():
    with pytest.raises(ArgumentError, match="embed_dim 10 is not divisible by num_heads 3"):
        MultiHeadAttention(10, 3)
    for sizes in ((8, 0), (8, 2.0), (0, 2), (True, 1)):
        with pytest.raises(ArgumentError, match="positive whole numbers"):
            MultiHeadAttention(*sizes)
    with pytest.raises(ArgumentError, match="divisible"):  # through the GPT that builds it
        GPT(vocab_size=10, block_size=8, num_layers=1, num_heads=2, embed_dim=15)
    with pytest.raises(ArgumentError, match="positive whole-number sizes"):
        Embedding(10.5, 4)
    with pytest.raises(ArgumentError, match="'learned' or 'sinusoidal'"):
        PositionalEncoding(8, 4, kind="rotary")
    with pytest.raises(ShapeError):
        MultiHeadAttention(8, 2)(tt.zeros(1, 3, 6))


def test_transformer_block_is_pre_norm_and_keeps_shape():
    block = TransformerBlock(16, 2)
    x = tt.Tensor(RNG.standard_normal((2, 5, 16)).astype(np.float32))
    assert block(x).shape == (2, 5, 16)
    # with both residual branches' output projections zeroed the block is the identity
    for proj in (block.attn.proj, block.mlp.proj):
        proj.weight.data[:] = 0
        proj.bias.data[:] = 0
    assert np.allclose(block(x).data, x.data)


def test_gpt_shapes_tying_and_state_dict(tmp_path):
    model = small_gpt()
    assert model(np.zeros((3, 16), dtype=np.int64)).shape == (3, 16, 11)
    assert model.head.weight is model.tok_emb.weight
    untied = small_gpt(tie_weights=False)
    assert untied.num_parameters() == model.num_parameters() + 11 * 16
    path = tmp_path / "gpt.npz"
    tt.save({"config": model.config, "state": model.state_dict()}, path)
    saved = tt.load(path)
    again = GPT.from_config(saved["config"])
    again.load_state_dict(saved["state"])
    ids = RNG.integers(0, 11, (2, 9))
    assert np.allclose(again(ids).data, model(ids).data)
    with pytest.raises(ShapeError, match="max_len"):
        model(np.zeros((1, 17), dtype=np.int64))


def test_a_batch_of_one_gets_the_values_and_gradients_of_a_row_of_a_batch():
    """A (1, T) batch goes through the layers without the reshape to (T, C) that a larger
    batch takes: the same logits and the same weight gradients."""
    ids = RNG.integers(0, 11, (2, 9))
    grads = []
    for batch in (ids[:1], np.concatenate([ids[:1], ids[:1]])):
        model = small_gpt()
        logits = model(batch)
        (logits[0] * tt.Tensor(np.linspace(-1, 1, 9 * 11).reshape(9, 11).astype(np.float32))).sum().backward()
        grads.append((logits.data[0], {name: p.grad.data for name, p in model.named_parameters()}))
    (one, one_grads), (two, two_grads) = grads
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-6)
    for name, grad in one_grads.items():
        np.testing.assert_allclose(grad, two_grads[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_gpt_with_a_cache_equals_gpt_on_the_whole_sequence():
    model = small_gpt()
    ids = RNG.integers(0, 11, (2, 10))
    full = model(ids).data
    cache = ListKVCache()
    logits = model(ids[:, :6], cache=cache)
    more = model(ids[:, 6:], cache=cache)
    assert cache.length == 10 and cache.keys[0].shape == (2, 2, 10, 8)
    assert np.allclose(np.concatenate([logits.data, more.data], axis=1), full, atol=1e-5)


def test_cache_errors_name_the_problem():
    cache = ListKVCache()
    keys = tt.Tensor(np.zeros((1, 2, 3, 4), dtype=np.float32))
    with pytest.raises(ArgumentError, match="order they run"):
        cache.update(1, keys, keys)
    cache.update(0, keys, keys)
    with pytest.raises(ShapeError, match="do not continue"):
        cache.update(0, tt.Tensor(np.zeros((2, 2, 1, 4), dtype=np.float32)), keys)
    with pytest.raises(ArgumentError, match="one per row"):
        ListKVCache(padding=[1, 0]).update(0, keys, keys)


def test_gpt_learns_to_memorise_a_sequence():
    model = small_gpt()
    ids = np.array([[1, 5, 2, 7, 3, 9, 4, 8, 6, 10, 1, 5, 2, 7, 3, 9]])
    opt, loss_fn = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0), CrossEntropyLoss()
    losses = []
    for _ in range(60):
        loss = loss_fn(model(ids[:, :-1]).reshape(-1, 11), ids[0, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 < losses[0]
    assert generate(model, ids[0, :1], 14, temperature=0).tolist() == ids[0, :15].tolist()


def test_sample_next_greedy_top_k_top_p():
    logits = np.log(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]))
    assert sample_next(logits, temperature=0).tolist() == [1, 0]
    rng = np.random.default_rng(0)
    assert set(sample_next(np.repeat(logits[:1], 200, 0), top_k=1, rng=rng).tolist()) == {1}
    assert set(sample_next(np.repeat(logits[:1], 200, 0), top_p=0.5, rng=rng).tolist()) == {1}
    drawn = sample_next(np.repeat(logits[:1], 4000, 0), rng=rng)
    assert np.allclose(np.bincount(drawn, minlength=3) / 4000, [0.1, 0.6, 0.3], atol=0.03)
    assert set(sample_next(np.repeat(logits[:1], 500, 0), top_p=0.85, rng=rng).tolist()) == {1, 2}
    with pytest.raises(ValueError):
        sample_next(logits, temperature=-1)
    with pytest.raises(ValueError):
        sample_next(logits, top_p=0)


def test_generate_is_seeded_batched_and_stops():
    model = small_gpt()
    prompt = np.array([3, 4])
    a = generate(model, prompt, 20, temperature=1.0, seed=7)
    b = generate(model, prompt, 20, temperature=1.0, seed=7)
    assert a.shape == (22,) and np.array_equal(a, b) and a[:2].tolist() == [3, 4]
    assert model.training  # generate restores the mode
    batch = generate(model, np.array([[3, 4], [5, 6]]), 30, temperature=1.0, seed=1)
    assert batch.shape == (2, 32)  # longer than block_size: the context window slides
    greedy = generate(model, prompt, 5, temperature=0)
    stop = int(greedy[2])
    assert generate(model, prompt, 5, temperature=0, stop=stop).tolist() == greedy[:3].tolist()

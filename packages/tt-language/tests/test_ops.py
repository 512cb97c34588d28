"""The new primitives: values by hand, gradients vs finite differences, and vs PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tt_core as tt
from tt_core.errors import ShapeError, TinyTorchError
from tt_language import functional as F
from tt_language.ops import causal_mask, normalize, softmax_attention
from tt_learn import gradcheck

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape)


# -- embedding -----------------------------------------------------------------------------


def test_embedding_picks_rows_and_scatter_adds_repeated_ids():
    weight = tt.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    ids = np.array([[0, 2], [2, 2]])
    out = F.embedding(ids, weight)
    assert np.array_equal(out.data, weight.data[ids])
    out.sum().backward()
    assert weight.grad.data[:, 0].tolist() == [1, 0, 3, 0]  # id 2 used three times, 1 and 3 never


def test_embedding_gradcheck():
    ids = np.array([[1, 3, 1], [0, 4, 1]])
    assert gradcheck(lambda w: F.embedding(ids, w), [randn(5, 3)])


def test_embedding_gradient_equals_a_scatter_add_with_unused_and_repeated_ids():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 7, (4, 9))
    ids[ids == 5] = 2  # row 5 unused, row 2 repeated more
    weight = tt.Tensor(randn(10, 6), requires_grad=True)
    upstream = randn(4, 9, 6)
    (F.embedding(ids, weight) * tt.Tensor(upstream)).sum().backward()
    expected = np.zeros((10, 6))
    np.add.at(expected, ids.reshape(-1), upstream.reshape(-1, 6))
    np.testing.assert_allclose(weight.grad.data, expected, rtol=1e-5, atol=1e-6)
    assert not weight.grad.data[[5, 7, 8, 9]].any()


def test_embedding_rejects_bad_ids():
    weight = tt.Tensor(randn(4, 2))
    with pytest.raises(TinyTorchError, match=r"\[0, 4\)"):
        F.embedding(np.array([4]), weight)
    with pytest.raises(TinyTorchError, match="integers"):
        F.embedding(np.array([1.0]), weight)


# -- layer norm ----------------------------------------------------------------------------


def test_layer_norm_normalises_the_last_axis():
    x = tt.Tensor(randn(3, 5, 8) * 4 + 2)
    out = F.layer_norm(x, tt.ones(8), tt.zeros(8)).data
    assert np.allclose(out.mean(-1), 0, atol=1e-5) and np.allclose(out.var(-1), 1, atol=1e-3)
    assert out.dtype == np.float32


def test_normalize_is_the_layer_norm_formula():
    x = (randn(4, 6, 24) * 3 + 2).astype(np.float32)
    exact = x.astype(np.float64)
    centred = exact - exact.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + 1e-5)
    xhat, got_rstd = normalize(x, 1e-5)
    assert xhat.dtype == np.float32 and got_rstd.dtype == np.float32 and got_rstd.shape == (4, 6, 1)
    np.testing.assert_allclose(xhat, centred * rstd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_rstd, rstd, rtol=1e-5)
    weight, bias = tt.Tensor(randn(24).astype(np.float32)), tt.Tensor(randn(24).astype(np.float32))
    np.testing.assert_array_equal(F.layer_norm(tt.Tensor(x), weight, bias).data, xhat * weight.data + bias.data)


def test_layer_norm_gradcheck():
    assert gradcheck(lambda x, w, b: F.layer_norm(x, w, b), [randn(2, 3, 6), randn(6), randn(6)])


def test_layer_norm_gradient_is_stable_for_large_offsets():
    # a large common offset must not leak into the gradient (it cancels in x - mean)
    base = randn(4, 16)
    x = tt.Tensor(base + 1e4, requires_grad=True, dtype=np.float64)
    y = tt.Tensor(base, requires_grad=True, dtype=np.float64)
    g = randn(4, 16)
    w, b = tt.Tensor(np.ones(16)), tt.Tensor(np.zeros(16))
    (F.layer_norm(x, w, b) * tt.Tensor(g)).sum().backward()
    (F.layer_norm(y, w, b) * tt.Tensor(g)).sum().backward()
    assert np.allclose(x.grad.data, y.grad.data, atol=1e-8)


def test_layer_norm_shape_errors():
    with pytest.raises(ShapeError, match="weight and bias"):
        F.layer_norm(tt.Tensor(randn(2, 4)), tt.ones(3), tt.zeros(3))


# -- attention -----------------------------------------------------------------------------


def naive_attention(q, k, v, allowed):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ v


def test_attention_equals_the_formula_with_causal_and_padding_masks():
    q, k, v = randn(2, 3, 5, 4), randn(2, 3, 5, 4), randn(2, 3, 5, 6)
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    mask = F.padding_mask(valid)
    out = F.scaled_dot_product_attention(tt.Tensor(q), tt.Tensor(k), tt.Tensor(v), mask=mask, causal=True)
    allowed = np.tril(np.ones((5, 5), dtype=bool)) & mask
    assert out.shape == (2, 3, 5, 6)
    assert np.allclose(out.data, naive_attention(q, k, v, allowed), atol=1e-5)


def test_softmax_attention_is_the_formula_and_the_ops_use_it():
    q, k, v = randn(2, 3, 4, 8), randn(2, 3, 7, 8), randn(2, 3, 7, 5)
    valid = np.array([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]], dtype=bool)
    allowed = np.tri(4, 7, k=3, dtype=bool) & F.padding_mask(valid)
    out, weights = softmax_attention(q, k, v, 1 / np.sqrt(8), F.padding_mask(valid), causal=True)
    np.testing.assert_allclose(out, naive_attention(q, k, v, allowed), atol=1e-12)
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    assert np.all(weights[~np.broadcast_to(allowed, weights.shape)] == 0)
    q32, k32, v32 = (a.astype(np.float32) for a in (q, k, v))
    op = F.scaled_dot_product_attention(tt.Tensor(q32), tt.Tensor(k32), tt.Tensor(v32), mask=F.padding_mask(valid),
                                        causal=True).data
    np.testing.assert_array_equal(op, softmax_attention(q32, k32, v32, 1.0 / math.sqrt(8), F.padding_mask(valid),
                                                        causal=True)[0])  # the op is this function
    unscaled, _ = softmax_attention(q * 0.5, k, v, 1.0)
    np.testing.assert_allclose(unscaled, softmax_attention(q, k, v, 0.5)[0], atol=1e-12)


def test_causal_attention_ignores_the_future():
    q, k, v = randn(1, 6, 4), randn(1, 6, 4), randn(1, 6, 4)
    first = F.scaled_dot_product_attention(tt.Tensor(q), tt.Tensor(k), tt.Tensor(v), causal=True).data
    k2, v2 = k.copy(), v.copy()
    k2[:, 3:], v2[:, 3:] = randn(1, 3, 4), randn(1, 3, 4)
    second = F.scaled_dot_product_attention(tt.Tensor(q), tt.Tensor(k2), tt.Tensor(v2), causal=True).data
    assert np.allclose(first[:, :3], second[:, :3]) and not np.allclose(first[:, 3:], second[:, 3:])


def test_causal_mask_is_aligned_to_the_last_key():
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert np.array_equal(causal_mask(3, 3), np.tril(np.ones((3, 3), dtype=bool)))


def test_fully_masked_query_gives_zeros_not_nan():
    q, k, v = (tt.Tensor(randn(1, 2, 3, 4)) for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v, mask=np.zeros((1, 1, 1, 3), dtype=bool)).data
    assert np.array_equal(out, np.zeros_like(out))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_rows_far_below_the_rest_of_their_matrix_keep_their_weights(dtype):
    # row 1's scores lie ~200 below row 0's: shifted by the matrix's maximum, exp underflows in
    # float32 (exp(-201) = 0), so that row is computed again, shifted by its own maximum
    k = np.array([[100.0, 0.0], [100.5, 0.0], [101.0, 0.0], [101.5, 0.0]])[None, None]
    q = np.array([[1.0, 0.0], [-1.0, 0.0], [0.01, 0.0]])[None, None]
    v = randn(1, 1, 4, 3)
    out, weights = softmax_attention(*(a.astype(dtype) for a in (q, k, v)), 1.0)
    np.testing.assert_allclose(out, _softmax(q @ np.swapaxes(k, -1, -2)) @ v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights[0, 0, 1], _softmax(-np.array([0.0, 0.5, 1.0, 1.5])), rtol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


def test_attention_rows_below_a_much_larger_row_keep_their_precision():
    # later positions of 100 make the last rows' scores ~1e4: shifted by that, the first rows'
    # scores would keep ~1e-3 of precision; they are shifted by their own maximum instead
    x = randn(2, 5, 8)
    x[:, 3:] = 100.0
    q, k, v = (np.ascontiguousarray(x.reshape(2, 5, 2, 4).transpose(0, 2, 1, 3)) for _ in range(3))
    out, _ = softmax_attention(*(a.astype(np.float32) for a in (q, k, v)), 0.5, causal=True)
    allowed = np.tril(np.ones((5, 5), dtype=bool))
    scores = np.where(allowed, q @ np.swapaxes(k, -1, -2) * 0.5, -np.inf)
    np.testing.assert_allclose(out, _softmax(scores) @ v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, :, :3], (_softmax(scores) @ v)[:, :, :3], atol=1e-6)


@pytest.mark.parametrize("queries, keys", [(0, 3), (3, 0), (0, 0)])
def test_attention_with_no_queries_or_no_keys(queries, keys):
    q, k, v = randn(1, 2, queries, 4), randn(1, 2, keys, 4), randn(1, 2, keys, 5)
    out, weights = softmax_attention(q, k, v, 0.5, causal=True)
    assert out.shape == (1, 2, queries, 5) and weights.shape == (1, 2, queries, keys)
    assert np.array_equal(out, np.zeros_like(out))  # a query with no key to look at outputs 0


def _softmax(scores):
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

@pytest.mark.parametrize("causal", [False, True])
def test_attention_gradcheck(causal):
    mask = np.array([[True, True, True, False]])[:, None, None, :]
    assert gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal),
        [randn(1, 2, 4, 3), randn(1, 2, 4, 3), randn(1, 2, 4, 5)],
    )


def test_attention_gradcheck_with_broadcast_keys_and_more_keys_than_queries():
    # keys and values shared by both heads (broadcast), 2 queries over 4 keys (a cached prefix)
    assert gradcheck(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, causal=True),
        [randn(1, 2, 2, 3), randn(1, 1, 4, 3), randn(1, 1, 4, 3)],
    )


def test_attention_shape_errors():
    q = tt.Tensor(randn(1, 4, 3))
    with pytest.raises(ShapeError, match="do not fit"):
        F.scaled_dot_product_attention(q, tt.Tensor(randn(1, 4, 2)), q)
    with pytest.raises(ShapeError, match="broadcast"):
        F.scaled_dot_product_attention(q, q, q, mask=np.ones((3, 3), dtype=bool))


def test_sinusoidal_encoding_values():
    table = F.sinusoidal_encoding(10, 6)
    assert table.shape == (10, 6) and table.dtype == np.float32
    assert np.allclose(table[:, 0], np.sin(np.arange(10)))
    assert np.allclose(table[:, 1], np.cos(np.arange(10)))
    assert np.allclose(table[3, 4], np.sin(3 / 10000 ** (4 / 6)))
    with pytest.raises(ValueError):
        F.sinusoidal_encoding(4, 3)


# -- against PyTorch -------------------------------------------------------------------------


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b, g = randn(4, 7, 32).astype(np.float32), randn(32), randn(32), randn(4, 7, 32)
    ours = [tt.Tensor(a.astype(np.float32), requires_grad=True) for a in (x * 3 + 1, w, b)]
    out = F.layer_norm(*ours)
    (out * tt.Tensor(g.astype(np.float32))).sum().backward()
    theirs = [torch.tensor(a.astype(np.float32), requires_grad=True) for a in (x * 3 + 1, w, b)]
    ref = torch.nn.functional.layer_norm(theirs[0], (32,), theirs[1], theirs[2], eps=1e-5)
    (ref * torch.tensor(g.astype(np.float32))).sum().backward()
    assert np.allclose(out.data, ref.detach().numpy(), atol=1e-4)
    for a, t in zip(ours, theirs):
        assert np.allclose(a.grad.data, t.grad.numpy(), atol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch(causal):
    torch = pytest.importorskip("torch")
    arrays = [randn(2, 4, 9, 8).astype(np.float32) for _ in range(3)]
    g = randn(2, 4, 9, 8).astype(np.float32)
    valid = np.ones((2, 9), dtype=bool)
    valid[0, 6:] = False
    mask = F.padding_mask(valid) & (causal_mask(9, 9) if causal else True)
    ours = [tt.Tensor(a, requires_grad=True) for a in arrays]
    out = F.scaled_dot_product_attention(*ours, mask=F.padding_mask(valid), causal=causal)
    (out * tt.Tensor(g)).sum().backward()
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.from_numpy(mask))
    (ref * torch.from_numpy(g)).sum().backward()
    assert np.allclose(out.data, ref.detach().numpy(), atol=1e-4)
    for a, t in zip(ours, theirs):
        assert np.allclose(a.grad.data, t.grad.numpy(), atol=1e-4)


def test_self_attention_equals_split_heads_attention_and_gradchecks():
    qkv = randn(2, 5, 3 * 6)  # 2 heads of size 3
    mask = F.padding_mask(np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool))
    fused = F.self_attention(tt.Tensor(qkv), 2, mask=mask, causal=True).data
    q, k, v = qkv.reshape(2, 5, 3, 2, 3).transpose(2, 0, 3, 1, 4)
    heads = F.scaled_dot_product_attention(tt.Tensor(q), tt.Tensor(k), tt.Tensor(v), mask=mask, causal=True).data
    assert np.allclose(fused, heads.transpose(0, 2, 1, 3).reshape(2, 5, 6))
    assert gradcheck(lambda x: F.self_attention(x, 2, mask=mask, causal=True), [qkv])
    with pytest.raises(ShapeError):
        F.self_attention(tt.Tensor(randn(2, 5, 12)), 5)

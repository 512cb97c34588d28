"""Layers: Linear (init, shapes, errors), Dropout, the activation modules."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tt_core as tt
from tt_core import GELU, Dropout, Linear, LogSoftmax, ReLU, ShapeError, Sigmoid, Softmax, Tanh, Tensor
from tt_core import functional as F

# -- Linear -----------------------------------------------------------------------------


@pytest.mark.parametrize("in_features, out_features", [(1, 1), (16, 4), (300, 7)])
def test_linear_init_is_uniform_within_one_over_sqrt_fan_in(in_features, out_features):
    tt.manual_seed(0)
    lin = Linear(in_features, out_features)
    bound = 1 / math.sqrt(in_features)
    assert lin.weight.shape == (out_features, in_features) and lin.bias.shape == (out_features,)
    assert lin.weight.dtype == lin.bias.dtype == np.float32
    for p in (lin.weight, lin.bias):
        assert p.requires_grad and np.all(np.abs(p.data) <= bound)


def test_linear_init_fills_the_range_and_is_seeded():
    tt.manual_seed(1)
    a = Linear(100, 200)
    w = a.weight.data
    bound = 0.1
    assert w.min() < -0.95 * bound and w.max() > 0.95 * bound  # uniform: reaches both ends
    assert abs(w.mean()) < 0.005 and abs(w.std() - bound / math.sqrt(3)) < 0.002
    tt.manual_seed(1)
    np.testing.assert_array_equal(Linear(100, 200).weight.data, w)


def test_linear_forward_shapes_and_values(rng):
    lin = Linear(4, 3)
    for shape in [(4,), (5, 4), (2, 5, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        out = lin(Tensor(x))
        assert out.shape == shape[:-1] + (3,) and out.dtype == np.float32
        np.testing.assert_allclose(out.data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-5, atol=1e-6)
    no_bias = Linear(4, 3, bias=False)
    assert no_bias.bias is None and len(list(no_bias.parameters())) == 1
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(no_bias(Tensor(x)).data, x @ no_bias.weight.data.T, rtol=1e-5, atol=1e-6)


def test_linear_weight_is_column_major_so_its_transpose_is_a_plain_matrix():
    lin = Linear(5, 3)
    assert lin.weight.shape == (3, 5) and lin.weight.data.flags.f_contiguous
    assert lin.weight.T.data.flags.c_contiguous
    tt.manual_seed(1)
    lin.reset_parameters()
    assert lin.weight.data.flags.f_contiguous


def test_linear_errors():
    with pytest.raises(ShapeError) as info:
        Linear(4, 3)(tt.ones(2, 5))
    assert "linear" in str(info.value) and "(2, 5)" in str(info.value) and "(3, 4)" in str(info.value)
    with pytest.raises(ShapeError, match=r"linear.*\(7,\).*\(2, 3\)"):
        F.linear(tt.ones(7), tt.ones(2, 3))
    with pytest.raises(ValueError, match="positive"):
        Linear(0, 3)


@pytest.mark.parametrize("sizes", [(0, 3), (2.5, 3), (4, True), (4, "8")])
def test_linear_sizes_must_be_positive_whole_numbers(sizes):
    with pytest.raises(tt.ArgumentError, match=r"Linear needs positive whole-number sizes, got in_features="):
        Linear(*sizes)


def test_linear_reset_parameters_draws_new_values():
    lin = Linear(8, 8)
    before = lin.weight.data.copy()
    lin.reset_parameters()
    assert not np.array_equal(before, lin.weight.data)


# -- Dropout ----------------------------------------------------------------------------


def test_dropout_in_training_zeroes_and_scales():
    tt.manual_seed(0)
    x = tt.ones(200, 500)
    out = Dropout(0.3)(x).data
    kept = out != 0
    assert 0.68 < kept.mean() < 0.72  # about 70% kept
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)  # survivors scaled by 1/(1-p)
    assert abs(out.mean() - 1.0) < 0.01  # so the expected value is preserved
    assert out.dtype == np.float32


def test_dropout_is_identity_in_eval_and_for_p_zero(rng):
    x = Tensor(rng.standard_normal((4, 5)))
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    layer.train()
    assert not np.array_equal(layer(x).data, x.data)


def test_dropout_is_reproducible_with_manual_seed():
    tt.manual_seed(3)
    a = F.dropout(tt.ones(100), 0.5).data
    tt.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(tt.ones(100), 0.5).data, a)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_dropout_validates_p(p):
    with pytest.raises(tt.ArgumentError, match="dropout probability"):
        Dropout(p)
    with pytest.raises(tt.ArgumentError, match="dropout probability"):
        F.dropout(tt.ones(2), p)


# -- activation modules -------------------------------------------------------------------


@pytest.mark.parametrize(
    "module, function",
    [
        (ReLU(), F.relu), (Sigmoid(), F.sigmoid), (Tanh(), F.tanh), (GELU(), F.gelu),
        (Softmax(), F.softmax), (LogSoftmax(), F.log_softmax),
    ],
    ids=lambda v: type(v).__name__,
)
def test_activation_modules_apply_their_function(module, function, rng):
    x = Tensor(rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(module(x).data, function(x).data)
    assert list(module.parameters()) == []


def test_softmax_modules_take_an_axis(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(Softmax(axis=0)(Tensor(x)).data.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(LogSoftmax(axis=0)(Tensor(x)).data).sum(axis=0), 1.0, rtol=1e-6)
    assert repr(LogSoftmax(axis=0)) == "LogSoftmax(axis=0)"


def test_core_layers_are_registered_components():
    registry = tt.get_registry()
    assert registry.get("layer", "Linear") is Linear
    assert registry.get("layer", "Dropout") is Dropout
    assert registry.namespace("activation").GELU is GELU
    assert registry.names("activation") == ["GELU", "LogSoftmax", "ReLU", "Sigmoid", "Softmax", "Tanh"]
    assert registry.chosen("layer", "Linear").dist == "tt-core"

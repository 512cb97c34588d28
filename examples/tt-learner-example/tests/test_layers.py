"""Linear, ReLU and Sigmoid against tt-core's: parameters, initialisation, values, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tt_core

DIST = "tt-learner-example"


def linear_pass(rules_from, cls, state, x, dist, bias=True):
    """``cls(in, out, bias)`` loaded with ``state``, run on ``x`` with ``dist``'s gradient rules:
    the output and the gradients (input, weight[, bias]) of ``sum(out * w)``."""
    out_features, in_features = state["weight"].shape
    with rules_from(dist):
        layer = cls(in_features, out_features, bias=bias)
        layer.load_state_dict(state)
        inputs = tt_core.tensor(x, requires_grad=True)
        out = layer(inputs)
        weights = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
        (out * tt_core.tensor(weights)).sum().backward()
        grads = [inputs.grad.numpy()] + [p.grad.numpy() for _, p in layer.named_parameters()]
        return out.numpy(), grads


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the samples' CDFs."""
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / a.size
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_has_the_builtin_parameters(pair, bias):
    Mine, Builtin = pair("layer", "Linear")
    mine, builtin = Mine(7, 3, bias=bias), Builtin(7, 3, bias=bias)
    def describe(module):
        return [(n, p.shape, p.dtype, p.requires_grad) for n, p in module.named_parameters()]

    assert describe(mine) == describe(builtin)
    assert list(mine.state_dict()) == (["weight", "bias"] if bias else ["weight"])
    assert (mine.in_features, mine.out_features) == (7, 3)


@pytest.mark.parametrize("in_features", [1, 3, 50])
def test_linear_initialisation_follows_the_builtin_distribution(pair, in_features):
    """U(-k, k) with k = 1/sqrt(in_features), for the weight and the bias: bounds, spread and a
    two-sample Kolmogorov-Smirnov distance to the built-in draws, over 20 000 values each."""
    Mine, Builtin = pair("layer", "Linear")
    out_features = 20_000 // in_features
    tt_core.manual_seed(11)
    mine = Mine(in_features, out_features)
    builtin = Builtin(in_features, out_features)
    limit = 1 / math.sqrt(in_features)
    for name in ("weight", "bias"):
        ours, theirs = getattr(mine, name).numpy().ravel(), getattr(builtin, name).numpy().ravel()
        assert np.abs(ours).max() <= limit
        assert np.abs(ours).max() > 0.99 * limit  # fills the range: the scale is not too small
        if name == "bias" and in_features > 1:
            continue  # too few bias values for the statistics below
        assert abs(ours.mean()) < 0.03 * limit
        assert ours.std() == pytest.approx(limit / math.sqrt(3), rel=0.03)
        assert ks_distance(ours, theirs) < 0.025  # the critical value at p = 1e-4


def test_linear_initialisation_is_seeded_by_tt_core(pair):
    Mine, _ = pair("layer", "Linear")
    tt_core.manual_seed(3)
    first = Mine(4, 5).state_dict()
    tt_core.manual_seed(3)
    second = Mine(4, 5).state_dict()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not np.array_equal(first["weight"], Mine(4, 5).weight.numpy())


@pytest.mark.parametrize("shape", [(6,), (5, 6), (2, 3, 6)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_equal_the_builtin(pair, rng, rules_from, shape, bias):
    """After loading the built-in layer's state dict: same output, same gradients of the input
    and of every parameter, with the built-in gradient rules and with this package's."""
    Mine, Builtin = pair("layer", "Linear")
    state = Builtin(6, 4, bias=bias).state_dict()
    x = rng.standard_normal(shape).astype(np.float32)
    reference_out, reference_grads = linear_pass(rules_from, Builtin, state, x, None, bias)
    for dist in (None, DIST):
        out, grads = linear_pass(rules_from, Mine, state, x, dist, bias)
        assert out.dtype == np.float32 and out.shape == shape[:-1] + (4,)
        np.testing.assert_allclose(out, reference_out, rtol=1e-6, atol=1e-6)
        assert len(grads) == len(reference_grads)
        for grad, reference in zip(grads, reference_grads):
            assert grad.shape == reference.shape
            np.testing.assert_allclose(grad, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("args", [(0, 3), (3, -1), (2.5, 3), (True, 3)])
def test_linear_refuses_bad_sizes(pair, args):
    Mine, _ = pair("layer", "Linear")
    with pytest.raises(ValueError, match="positive integer"):
        Mine(*args)


def test_linear_refuses_inputs_of_the_wrong_width(pair):
    Mine, _ = pair("layer", "Linear")
    with pytest.raises(tt_core.ShapeError, match=r"last axis has 4 features, got shape \(2, 3\)"):
        Mine(4, 2)(tt_core.zeros(2, 3))


ACTIVATION_INPUTS = {
    "moderate": lambda rng: rng.standard_normal((4, 5)) * 3,
    "large magnitudes": lambda rng: rng.choice([-1, 1], (3, 4)) * rng.uniform(50, 1000, (3, 4)),
    "0-d": lambda rng: rng.standard_normal(()),
    "non-contiguous": lambda rng: rng.standard_normal((6, 4)).T[::2],
}


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid"])
@pytest.mark.parametrize("inputs", list(ACTIVATION_INPUTS))
def test_activations_equal_the_builtin(pair, rng, gradients, name, inputs):
    Mine, Builtin = pair("activation", name)
    x = ACTIVATION_INPUTS[inputs](rng).astype(np.float32)
    reference_out, (reference_grad,) = gradients(Builtin(), [x], None)
    for dist in (None, DIST):
        out, (grad,) = gradients(Mine(), [x], dist)
        assert out.dtype == np.float32 and out.shape == x.shape
        assert np.isfinite(out).all() and np.isfinite(grad).all()
        np.testing.assert_allclose(out, reference_out, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grad, reference_grad, rtol=1e-5, atol=1e-7)


def test_sigmoid_is_stable_for_large_inputs(pair):
    Mine, _ = pair("activation", "Sigmoid")
    x = tt_core.tensor([-1000.0, -80.0, 0.0, 80.0, 1000.0])
    np.testing.assert_allclose(Mine()(x).numpy(), [0.0, np.exp(-80.0), 0.5, 1.0, 1.0], rtol=1e-5, atol=0)


def test_relu_values():
    from tt_learner_example import ReLU

    x = tt_core.tensor([-2.0, -0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(ReLU()(x).numpy(), [0.0, 0.0, 0.0, 0.5, 3.0])

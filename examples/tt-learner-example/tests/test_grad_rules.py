"""The relu, sigmoid and matmul rules, run by hand on tt-core's kernels: against tt-learn's
rules and against central differences in float64, on broadcast, 1-D, 0-d and
non-contiguous operands."""

from __future__ import annotations

import numpy as np
import pytest
from tt_core.dispatch import Context
from tt_learn.grad_rules import unbroadcast
from tt_learner_example.grad_rules import sum_to_shape

DIST = "tt-learner-example"


def forward(registry, name, arrays, needs):
    """Run tt-core's kernel of op ``name`` as dispatch does; returns its output and context."""
    ctx = Context()
    out = registry.get("op", name).forward(ctx, *arrays)
    ctx.inputs, ctx.out, ctx.attrs, ctx.needs = list(arrays), out, {}, tuple(needs)
    return out, ctx


def central_differences(registry, name, arrays, grad, eps=1e-6):
    """d sum(op(*arrays) * grad) / d arrays[i], element by element, in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    estimates = []
    for x in arrays:
        estimate = np.zeros_like(x)
        for index in np.ndindex(x.shape):
            saved = x[index]
            x[index] = saved + eps
            up = np.sum(forward(registry, name, arrays, [False] * len(arrays))[0] * grad)
            x[index] = saved - eps
            down = np.sum(forward(registry, name, arrays, [False] * len(arrays))[0] * grad)
            x[index] = saved
            estimate[index] = (up - down) / (2 * eps)
        estimates.append(estimate)
    return estimates


def check_rule(registry, pair, name, arrays, needs, rng):
    """This package's rule against the built-in rule (float32) and central differences (float64)."""
    mine, builtin = (rule.backward for rule in pair("grad_rule", name))
    out, ctx = forward(registry, name, arrays, needs)
    grad = rng.standard_normal(out.shape).astype(out.dtype)
    ours, theirs = mine(ctx, grad), builtin(ctx, grad)
    assert isinstance(ours, tuple) and len(ours) == len(arrays)
    for i, (g, reference, x, need) in enumerate(zip(ours, theirs, arrays, needs)):
        if not need:
            assert g is None, f"input {i} needs no gradient, the rule returned one"
            continue
        assert g.shape == x.shape and g.dtype == x.dtype, f"input {i}: {g.shape} {g.dtype}, wanted {x.shape} {x.dtype}"
        np.testing.assert_allclose(g, reference, rtol=2e-5, atol=1e-5, err_msg=f"input {i} against tt-learn's rule")

    wide = [np.asarray(a, dtype=np.float64) for a in arrays]
    _, ctx64 = forward(registry, name, wide, [True] * len(arrays))
    grad64 = grad.astype(np.float64)
    analytic = mine(ctx64, grad64)
    for i, (g, numeric) in enumerate(zip(analytic, central_differences(registry, name, wide, grad64))):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-7, err_msg=f"input {i} against central differences")


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
    ((1, 3, 4), (2, 4, 2)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=lambda s: f"{s[0]}@{s[1]}")
@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
def test_matmul_rule(registry, pair, rng, shapes, needs):
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    check_rule(registry, pair, "matmul", arrays, needs, rng)


def test_matmul_rule_on_transposed_views(registry, pair, rng):
    """Operands that are views (``weight.T`` in Linear is one): the rule must not assume C order."""
    a = rng.standard_normal((4, 3)).astype(np.float32).T
    b = rng.standard_normal((5, 8)).astype(np.float32)[:, ::2].T
    assert not a.flags.c_contiguous and not b.flags.c_contiguous
    check_rule(registry, pair, "matmul", [a, b], (True, True), rng)


def test_relu_rule(registry, pair, rng):
    # away from 0, where central differences would straddle the kink
    x = rng.choice([-1, 1], (5, 4)) * rng.uniform(0.01, 3, (5, 4))
    check_rule(registry, pair, "relu", [x.astype(np.float32)], (True,), rng)


def test_relu_rule_at_zero_passes_nothing(registry, pair):
    _, ctx = forward(registry, "relu", [np.array([-0.0, 0.0, 1.0], dtype=np.float32)], (True,))
    mine = pair("grad_rule", "relu")[0].backward
    np.testing.assert_array_equal(mine(ctx, np.ones(3, dtype=np.float32))[0], [0.0, 0.0, 1.0])


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_sigmoid_rule(registry, pair, rng, scale):
    x = (rng.standard_normal((3, 5)) * scale).astype(np.float32)
    check_rule(registry, pair, "sigmoid", [x], (True,), rng)


def test_sigmoid_rule_is_finite_for_huge_inputs(registry, pair):
    _, ctx = forward(registry, "sigmoid", [np.array([-1e4, -90.0, 90.0, 1e4], dtype=np.float32)], (True,))
    mine = pair("grad_rule", "sigmoid")[0].backward
    grad = mine(ctx, np.ones(4, dtype=np.float32))[0]
    assert np.isfinite(grad).all() and (grad >= 0).all() and grad.max() < 1e-30


def test_the_rules_through_autograd(rng, gradients):
    """A small network through every rule: autograd with this package's rules gives the
    gradients autograd gives with tt-learn's."""
    arrays = [rng.standard_normal(shape) for shape in ((2, 5, 3), (3, 4), (4,))]

    def network(x, w, v):
        return (x @ w).relu().sigmoid() @ v

    reference_out, reference = gradients(network, arrays, None)
    out, ours = gradients(network, arrays, DIST)
    np.testing.assert_array_equal(out, reference_out)
    for g, r in zip(ours, reference):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, target", [((4, 3), (3,)), ((4, 3), (4, 1)), ((2, 4, 3), (1, 3)), ((5,), ()), ((2, 3), (2, 3))])
def test_sum_to_shape_equals_tt_learns_unbroadcast(rng, shape, target):
    grad = rng.standard_normal(shape)
    summed = sum_to_shape(grad, target)
    assert summed.shape == target
    np.testing.assert_allclose(summed, unbroadcast(grad, target), rtol=1e-12)

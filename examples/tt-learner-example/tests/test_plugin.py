"""The plugin hook: what it registers, and that choosing the package makes TinyTorch use it."""

from __future__ import annotations

import numpy as np
import tt_core
import tt_learner_example as mine
from tt_core import GradRule, dispatch
from tt_core.plugins import choose, get_plugin_system

DIST = "tt-learner-example"
REGISTERED = {
    ("layer", "Linear"): mine.Linear,
    ("activation", "ReLU"): mine.ReLU,
    ("activation", "Sigmoid"): mine.Sigmoid,
    ("grad_rule", "relu"): mine.relu_grad,
    ("grad_rule", "sigmoid"): mine.sigmoid_grad,
    ("grad_rule", "matmul"): mine.matmul_grad,
    ("loss", "BCEWithLogitsLoss"): mine.BCEWithLogitsLoss,
    ("optimizer", "SGD"): mine.SGD,
}
RULES = ("relu", "sigmoid", "matmul")


def unwrap(obj):
    """A registered rule is a GradRule: its function."""
    return obj.backward if isinstance(obj, GradRule) else obj


def test_the_hook_registers_each_component_once(registry):
    ours = {(c.kind, c.name): unwrap(c.obj) for c in registry if c.dist == DIST}
    assert ours == REGISTERED
    assert all(c.implemented for c in registry.from_dist(DIST))


def test_every_component_stands_in_for_a_builtin_one(registry):
    for kind, name in REGISTERED:
        dists = [c.dist for c in registry.providers(kind, name)]
        assert len(dists) == 2 and dists[-1] == DIST, (kind, name, dists)
        assert registry.reference(kind, name).dist != DIST
        # until it is chosen, the built-in one is used
        assert registry.chosen(kind, name).dist != DIST


def test_the_rules_read_only_the_standard_context(registry):
    """So they may be paired with tt-core's kernels, which save nothing for these ops."""
    for name in RULES:
        assert registry.chosen("op", name).dist == "tt-core"
        rule = next(c.obj for c in registry.providers("grad_rule", name) if c.dist == DIST)
        assert rule.needs_saved() == ()


def test_using_the_package_pairs_its_rules_with_tt_cores_kernels():
    """``choose(use=...)`` (what ``run --use`` does): the package's components are chosen, its
    rules run after tt-core's kernels, and the plugin has no load error."""
    tt_core.reset_plugins()
    try:
        registry = choose(use=(DIST,))
        for kind, name in REGISTERED:
            assert registry.chosen(kind, name).dist == DIST
        info = next(p for p in get_plugin_system().plugins if p.dist == DIST)
        assert info.problems is None
        x = tt_core.tensor(np.array([[1.0, 2.0]], dtype=np.float32), requires_grad=True)
        w = tt_core.tensor(np.array([[1.0], [0.5]], dtype=np.float32), requires_grad=True)
        (x @ w).relu().sigmoid().sum().backward()
        used = dispatch.ops_used()
        for name in RULES:
            assert (used[name].kernel_dist, used[name].rule_dist) == ("tt-core", DIST)
            assert used[name].backward is REGISTERED[("grad_rule", name)]
        s = 1 / (1 + np.exp(-2.0))  # x @ w = 2, relu passes it, sigmoid's slope there is s (1 - s)
        np.testing.assert_allclose(x.grad.numpy(), s * (1 - s) * np.array([[1.0, 0.5]]), rtol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), s * (1 - s) * np.array([[1.0], [2.0]]), rtol=1e-6)
    finally:
        tt_core.reset_plugins()
    tt_core.zeros(1).relu()
    assert dispatch.ops_used()["relu"].rule_dist == "tt-learn"

"""The plugin hook: what it registers, and that choosing the package makes TinyTorch use it."""

from __future__ import annotations

import tt_core
import tt_learner_example as mine
from tt_core import ops

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

DIST = "tt-learner-example"
RULES = ("relu", "sigmoid", "matmul")


def unwrap(obj):
    """A registered rule may come back wrapped (a GradRule): its function."""
    return getattr(obj, "backward", obj)


def test_the_hook_registers_each_component_once(registry):
    ours = {(c.kind, c.name): unwrap(c.obj) for c in registry if c.dist == DIST}
    assert ours == REGISTERED


def test_every_component_stands_in_for_a_builtin_one(registry):
    for kind, name in REGISTERED:
        dists = [c.dist for c in registry.providers(kind, name)]
        assert len(dists) == 2 and dists[-1] == DIST, (kind, name, dists)
        # until it is chosen, the built-in one is used
        assert registry.chosen(kind, name).dist != DIST


def test_choosing_the_package_pairs_its_rules_with_tt_cores_kernels(rules_from):
    with rules_from(DIST) as registry:
        for name in RULES:
            assert registry.chosen("grad_rule", name).dist == DIST
            _, rule = ops.OP_TABLE[name]
            assert unwrap(rule) is REGISTERED[("grad_rule", name)]
            assert registry.chosen("op", name).dist == "tt-core"
    tt_core.reset_plugins()
    assert unwrap(ops.OP_TABLE["relu"][1]) is not mine.relu_grad

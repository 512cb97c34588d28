"""Shared fixtures: a registry filled by hand with tt-core's, tt-learn's and this package's
components, the two providers of one component, and a switch that makes autograd use this
package's gradient rules."""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
import pytest
import tt_core
import tt_core._plugin
import tt_learn._plugin
import tt_learner_example._plugin
from tt_core.plugins import ComponentRegistry, choose

DIST = "tt-learner-example"
HOOKS = (("tt-core", tt_core._plugin), ("tt-learn", tt_learn._plugin), (DIST, tt_learner_example._plugin))
RULES = ("relu", "sigmoid", "matmul")


def build_registry() -> ComponentRegistry:
    """A registry with the components of tt-core, tt-learn and this package, each registered
    by calling the distribution's hook, as the plugin loader does."""
    registry = ComponentRegistry()
    for dist, module in HOOKS:
        registrar = registry.registrar(dist)
        module.tt_register_components(registry=registrar)
        registrar.commit()
    return registry


@pytest.fixture(scope="session")
def registry() -> ComponentRegistry:
    return build_registry()


@pytest.fixture(scope="session")
def pair(registry):
    """``pair(kind, name) -> (this package's object, the built-in object)``."""

    def find(kind: str, name: str):
        by_dist = {c.dist: c.obj for c in registry.providers(kind, name)}
        assert DIST in by_dist, f"{DIST} does not register {kind}:{name}"
        assert len(by_dist) == 2, f"expected one built-in provider of {kind}:{name}, got {sorted(by_dist)}"
        return by_dist[DIST], registry.reference(kind, name).obj

    return find


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id: fresh inputs per test, the same on every run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@contextlib.contextmanager
def _rules_from(dist: str | None):
    """Within the block, autograd uses ``dist``'s rules for relu, sigmoid and matmul (``None``:
    the built-in ones). The plugins are loaded afresh on entry and on exit."""
    tt_core.reset_plugins()
    try:
        if dist is not None:
            choose(choices={("grad_rule", name): dist for name in RULES})
        yield tt_core.get_registry()
    finally:
        tt_core.reset_plugins()


def _gradients(fn, arrays, dist: str | None, dtype=np.float32) -> tuple[np.ndarray, list[np.ndarray]]:
    """``fn``'s output and the gradients of ``sum(fn(*inputs) * w)`` for fixed weights ``w``,
    computed by autograd with ``dist``'s gradient rules."""
    with _rules_from(dist):
        inputs = [tt_core.tensor(np.asarray(a, dtype=dtype), requires_grad=True) for a in arrays]
        out = fn(*inputs)
        weights = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
        (out * tt_core.tensor(weights, dtype=dtype)).sum().backward()
        return out.numpy(), [t.grad.numpy() for t in inputs]


@pytest.fixture(scope="session")
def rules_from():
    """``with rules_from(dist): ...`` runs the block with ``dist``'s relu, sigmoid and matmul
    rules (``None``: the built-in ones)."""
    return _rules_from


@pytest.fixture(scope="session")
def gradients():
    """``gradients(fn, arrays, dist) -> (output, input gradients)`` with ``dist``'s rules."""
    return _gradients

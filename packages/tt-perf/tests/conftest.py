"""Shared fixtures: small models and data made on the spot (no data sets needed)."""

import numpy as np
import pytest
import tt_core
from tt_core.plugins import Component


@pytest.fixture
def mlp():
    tt_core.manual_seed(0)
    return tt_core.Sequential(tt_core.Linear(64, 32), tt_core.ReLU(), tt_core.Linear(32, 16), tt_core.ReLU(),
                              tt_core.Linear(16, 10))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def plugin_component():
    """``add(kind, name, obj)`` registers a component of a test distribution ("my-plugin") in the
    loaded registry; everything it added is withdrawn after the test."""
    registry = tt_core.get_registry()

    def add(kind, name, obj):
        registry.add(Component(kind, name, obj, "my-plugin"))

    yield add
    registry.withdraw("my-plugin")

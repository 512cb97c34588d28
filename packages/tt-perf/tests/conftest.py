"""Shared fixtures: small models and data made on the spot (no data sets needed)."""

import numpy as np
import pytest
import tt_core


@pytest.fixture
def mlp():
    tt_core.manual_seed(0)
    return tt_core.Sequential(tt_core.Linear(64, 32), tt_core.ReLU(), tt_core.Linear(32, 16), tt_core.ReLU(),
                              tt_core.Linear(16, 10))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def plugin_components():
    """``add(kind, name, obj)`` registers a component as an installed plugin "my-plugin" would
    (through the registry's public registrar); everything it added is withdrawn afterwards."""
    registry = tt_core.get_registry()

    def add(kind: str, name: str, obj) -> None:
        registrar = registry.registrar("my-plugin")
        registrar.register(kind, name, obj)
        registrar.commit()

    yield add
    registry.withdraw("my-plugin")

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

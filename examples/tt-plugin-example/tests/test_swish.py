"""The example plugin's layer and its registration."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core
from tt_plugin_example import Swish


def test_swish_values():
    x = np.linspace(-6, 6, 25, dtype=np.float32)
    for beta in (1.0, 2.5):
        out = Swish(beta)(tt_core.tensor(x))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), x / (1 + np.exp(-beta * x)), rtol=1e-6, atol=1e-7)


def test_swish_refuses_bad_beta():
    with pytest.raises(ValueError, match="beta > 0"):
        Swish(0)


def test_swish_is_registered_by_the_plugin():
    tt_core.reset_plugins()
    registry = tt_core.get_registry()
    assert registry.get("layer", "Swish") is Swish
    assert registry.chosen("layer", "Swish").dist == "tt-plugin-example"


def test_swish_gradient_when_autograd_is_installed():
    """Composed of tt-core primitives, Swish needs no gradient rule of its own."""
    tt_core.reset_plugins()
    if not tt_core.get_registry().has("autograd", "engine"):
        pytest.skip("autograd comes with tt-learn")
    x = tt_core.tensor([-2.0, 0.0, 1.5], requires_grad=True)
    Swish()(x).sum().backward()
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), s + x.numpy() * s * (1 - s), rtol=1e-5)

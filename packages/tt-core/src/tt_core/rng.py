"""The global random generator behind ``randn``, ``rand``, weight initialisation and dropout."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def generator() -> np.random.Generator:
    """The global generator (call this each time: :func:`manual_seed` replaces it)."""
    return _generator


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the global generator, so that a run can be repeated exactly.

    Raises:
        ValueError: ``seed`` is not a non-negative integer.

    Examples:
        >>> first = manual_seed(7).random()
        >>> manual_seed(7).random() == first
        True
    """
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed() needs a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def get_rng_state() -> dict:
    """The generator's state (a plain dict, JSON-safe), for checkpoints."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state from :func:`get_rng_state`, to continue a run exactly.

    Examples:
        >>> state = get_rng_state()
        >>> draw = generator().random()
        >>> set_rng_state(state)
        >>> generator().random() == draw
        True
    """
    _generator.bit_generator.state = state

"""Temporarily wrapping a module's ``forward``: how the profiler and the calibration observe layers.

tt-core's ``Module.__call__`` calls ``self.forward``; an instance attribute named ``forward``
therefore takes precedence over the class's method. :func:`wrapped_forwards` installs such
attributes and always removes them again, so the model is unchanged afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from tt_core import Module, Tensor

Wrapper = Callable[[Callable], Callable]


@contextmanager
def wrapped_forwards(wrappers: dict[Module, Wrapper]) -> Iterator[None]:
    """Within the block, ``module.forward`` is ``wrappers[module](original_forward)``."""
    saved = []
    try:
        for module, wrap in wrappers.items():
            saved.append((module, module.__dict__.get("forward")))
            object.__setattr__(module, "forward", wrap(module.forward))
        yield
    finally:
        for module, previous in saved:
            if previous is None:
                del module.__dict__["forward"]
            else:
                object.__setattr__(module, "forward", previous)


def input_arrays(values) -> list:
    """The arrays among a call's arguments or outputs (Tensors, arrays, nested tuples)."""
    found = []
    for value in values if isinstance(values, (tuple, list)) else (values,):
        if isinstance(value, Tensor):
            found.append(value.data)
        elif isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(input_arrays(value))
    return found

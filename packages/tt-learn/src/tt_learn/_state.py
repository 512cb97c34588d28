"""Checks shared by the ``load_state_dict`` methods of optimizers, schedulers and the Trainer.

Each check returns a list of problems (empty when the saved value fits), so that a loader can
report every problem at once and change nothing unless the list is empty.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def show(value: Any) -> str:
    """A short description of a saved value for an error message."""
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({type(value).__name__})"


def key_problems(saved: Mapping, expected: Iterable[str], optional: Iterable[str] = ()) -> list[str]:
    """``["missing keys: ...", "unexpected keys: ..."]`` for the keys of ``saved`` against
    ``expected`` (keys in ``optional`` may be there or not)."""
    expected, optional = list(expected), set(optional)
    missing = [k for k in expected if k not in saved]
    unexpected = [str(k) for k in saved if k not in expected and k not in optional]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    return problems


def missing_problems(saved: Mapping, required: Iterable[str], known: Iterable[str], noun: str,
                     hint: str) -> list[str]:
    """``["missing <noun>: ... and unexpected <noun>: ... (<hint>)"]`` when ``saved`` lacks keys
    of ``required``, else ``[]``. Keys beyond ``required`` and ``known`` are no problem by
    themselves (they are carried over), but are named next to missing ones as a clue."""
    required, known = list(required), set(known)
    missing = [k for k in required if k not in saved]
    if not missing:
        return []
    others = [str(k) for k in saved if k not in required and k not in known]
    extra = f" and unexpected {noun}: {', '.join(others)} ({hint})" if others else ""
    return [f"missing {noun}: {', '.join(missing)}{extra}"]


def is_number(value: Any) -> bool:
    """A real number that is not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_count(value: Any) -> bool:
    """A non-negative integer that is not a boolean."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= 0


def mismatch(value: Any, like: Any, where: str) -> list[str]:
    """Why a saved ``value`` cannot replace the current ``like`` (the problems, each naming
    ``where``): numbers stand for numbers (integers and floats alike), booleans for booleans,
    strings for strings, None for None; lists and tuples must have the same length and fit
    item by item, dicts the same keys and fit value by value."""
    if isinstance(like, (bool, np.bool_)):
        ok = isinstance(value, (bool, np.bool_))
        expected = "True or False"
    elif is_number(like):
        ok = is_number(value)
        expected = "a number"
    elif isinstance(like, str):
        ok = isinstance(value, str)
        expected = "a string"
    elif like is None:
        ok = value is None
        expected = "None"
    elif isinstance(like, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(like):
            return [f"{where} should be a list of {len(like)} values, got {show(value)}"]
        return [p for i, (v, l) in enumerate(zip(value, like)) for p in mismatch(v, l, f"{where}[{i}]")]
    elif isinstance(like, Mapping):
        if not isinstance(value, Mapping):
            return [f"{where} should be a dict, got {show(value)}"]
        problems = [f"{where}: {p}" for p in key_problems(value, like)]
        return problems + [p for k in like if k in value for p in mismatch(value[k], like[k], f"{where}.{k}")]
    else:
        ok = type(value) is type(like)
        expected = f"a {type(like).__name__}"
    return [] if ok else [f"{where} should be {expected}, got {show(value)}"]


def count_problems(state: Mapping, names: Sequence[str], where: str = "") -> list[str]:
    """Problems of the entries ``names`` of ``state`` that must be non-negative integers."""
    return [f"{where}{name} should be a non-negative integer, got {show(state[name])}"
            for name in names if name in state and not is_count(state[name])]


def bit_generator_problems(state: Any, where: str, expected: str | None = None) -> list[str]:
    """Problems of a saved NumPy bit-generator state (``generator.bit_generator.state``): it
    must name one of NumPy's bit generators (``expected``, when given) and be accepted by a
    fresh one."""
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    if name not in _BIT_GENERATORS:
        names = ", ".join(_BIT_GENERATORS)
        return [f"{where} should be the state of a NumPy bit generator ({names}), got {show(state)}"]
    if expected is not None and name != expected:
        return [f"{where} holds the state of the bit generator {name}, this one is {expected}"]
    try:
        getattr(np.random, name)().state = dict(state)
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        return [f"{where} is not a valid {name} state ({type(error).__name__}: {error})"]
    return []

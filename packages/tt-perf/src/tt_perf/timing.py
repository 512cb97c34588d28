"""Measuring time honestly: warm-up first, then many repeats, then the median and the spread.

A single timing of a NumPy program on a shared machine says little: the first call pays for
page faults and caches, and other processes steal the CPU now and then. :func:`measure`
runs ``fn`` a few times unmeasured, then ``repeats`` times measured, and reports the median
(robust to the odd slow run) with the interquartile range as the spread.

``clock="cpu"`` measures the CPU time of this process (``time.process_time``) instead of the
wall time. On a machine shared with other busy processes, a computation longer than a
scheduler time slice is paused while others run, and its wall time grows with the load while
a short one escapes; its CPU time does not. With single-threaded BLAS, CPU time is the time
the computation needs. (With several threads it is their sum: time thread counts by the wall.)
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tt_core.errors import TinyTorchError


class TimingError(TinyTorchError, ValueError):
    """A clock that does not exist, or warm-up / repeat counts that are not whole numbers."""


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median, quartiles, minimum and standard deviation over ``repeats``."""

    median: float
    q1: float
    q3: float
    minimum: float
    std: float
    repeats: int
    warmup: int

    @property
    def median_ms(self) -> float:
        return self.median * 1e3

    @property
    def iqr_ms(self) -> float:
        """The spread: interquartile range in milliseconds."""
        return (self.q3 - self.q1) * 1e3

    def to_dict(self) -> dict:
        return asdict(self) | {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms}

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (IQR {self.iqr_ms:.3f} ms, n={self.repeats})"


def summarise(seconds, warmup: int = 0) -> Timing:
    """A :class:`Timing` from a list of measured durations in seconds."""
    times = np.asarray(seconds, dtype=np.float64)
    if times.size == 0:
        raise ValueError("summarise() needs at least one duration")
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return Timing(float(median), float(q1), float(q3), float(times.min()), float(times.std()), int(times.size), warmup)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def clock_function(clock: str) -> Callable[[], float]:
    """The function that reads ``clock`` (a name in :data:`CLOCKS`), in seconds.

    Raises:
        TimingError: an unknown clock name, naming the ones there are.
    """
    if not isinstance(clock, str) or clock not in CLOCKS:
        raise TimingError(
            f"clock must be one of {sorted(CLOCKS)}, got {clock!r}: 'wall' is elapsed time, 'cpu' this process's CPU "
            "time (steadier on a shared machine); there is no GPU here, NumPy runs on the CPU")
    return CLOCKS[clock]


def check_counts(warmup, repeats) -> None:
    """Raise a :class:`TimingError` unless ``warmup`` is a whole number >= 0 and ``repeats`` one >= 1."""
    def whole(value) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    if not (whole(warmup) and whole(repeats)) or warmup < 0 or repeats < 1:
        raise TimingError(f"timing needs whole numbers warmup >= 0 and repeats >= 1, got warmup={warmup!r}, "
                          f"repeats={repeats!r}")


def measure(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20, min_time: float = 0.0,
            clock: str = "wall") -> Timing:
    """Time ``fn()``: ``warmup`` unmeasured calls, then at least ``repeats`` measured ones.

    Args:
        fn: the work to time, called with no arguments.
        warmup: calls before measuring (caches, page faults, lazy set-up).
        repeats: measured calls.
        min_time: keep repeating (beyond ``repeats``) until this many seconds were measured,
            so very fast functions still get a stable median.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time).

    Returns:
        The :class:`Timing` of the measured calls.

    Raises:
        TimingError: an unknown clock, or counts that are not whole numbers in range.
    """
    now = clock_function(clock)
    check_counts(warmup, repeats)
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_time:
        start = now()
        fn()
        times.append(now() - start)
    return summarise(times, warmup)

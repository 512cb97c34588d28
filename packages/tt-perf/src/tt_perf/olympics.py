"""The Torch Olympics: submissions compete in measured events on the same machine, in one run.

A :class:`Submission` is a model (and how to run and save it). The :class:`Arena` fixes the
conditions every submission meets: the same input batch for timing, the same test set for
accuracy, the same number of repeats. Each :class:`Event` measures one figure:

=============  ===========================================  =================
event          what is measured                             better
=============  ===========================================  =================
latency        median ms of one forward pass on the batch   lower
memory         parameters + buffers + activations, KB       lower
compression    size of the saved file on disk, KB           lower
accuracy       test accuracy, %                             higher
=============  ===========================================  =================

:func:`run_olympics` measures the baseline and every submission, and turns each figure into
an *improvement ratio* against the baseline (> 1 is better: baseline/value for "lower is
better", value/baseline otherwise). The **all-around** score is the geometric mean of a
submission's ratios, so a 4x smaller model that lost 2 % accuracy scores (4 * 0.98)^(1/2).
The :class:`Scorecard` is written as JSON and drawn as a PNG.

Third-party plugins add events: ``registry.register("olympics_event", "energy", MyEvent())``
with an object that has ``name``, ``unit``, ``higher_is_better`` and ``measure(submission,
arena) -> float`` (or ``None`` when it does not apply).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import tt_core
from tt_core import Module, Tensor

from .profiler import profile, save_png, state_bytes
from .timing import measure


@dataclass
class Submission:
    """One entry: a model, how to run it on an input array, and how to save it.

    Args:
        name: shown in the scorecard.
        model: the Module (used for memory and, by default, to predict and save).
        predict: ``predict(x) -> scores array``; default ``model(Tensor(x)).data``.
        save: ``save(path)`` writes the model as it would be shipped; default
            ``tt_core.save(model.state_dict(), path)``.
    """

    name: str
    model: Module
    predict: Callable[[np.ndarray], np.ndarray] | None = None
    save: Callable[[Path], object] | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.predict is not None:
            return np.asarray(self.predict(x))
        previous = tt_core.set_grad_enabled(False)
        try:
            return self.model(Tensor(x)).data
        finally:
            tt_core.set_grad_enabled(previous)

    def save_to(self, path: Path) -> Path:
        if self.save is not None:
            self.save(path)
        else:
            tt_core.save(self.model.state_dict(), path)
        return path


@dataclass
class Arena:
    """The conditions shared by every submission.

    Args:
        batch: the input array timed by the latency event and profiled by the memory event.
        test_x, test_y: the test set of the accuracy event (labels as integers); optional.
        out: folder for the files the compression event saves.
        warmup, repeats: for every timing.
    """

    batch: np.ndarray
    out: Path
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    warmup: int = 3
    repeats: int = 20


class Event(Protocol):
    name: str
    unit: str
    higher_is_better: bool

    def measure(self, submission: Submission, arena: Arena) -> float | None: ...


class LatencyEvent:
    name, unit, higher_is_better = "latency", "ms", False

    def measure(self, submission: Submission, arena: Arena) -> float:
        return measure(lambda: submission.run(arena.batch), warmup=arena.warmup, repeats=arena.repeats).median_ms


class MemoryEvent:
    """Parameters and buffers in memory plus every layer output of one forward pass."""

    name, unit, higher_is_better = "memory", "KB", False

    def measure(self, submission: Submission, arena: Arena) -> float:
        report = profile(submission.model, arena.batch, warmup=0, repeats=1)
        return (state_bytes(submission.model) + report.activation_bytes) / 1024


class CompressionEvent:
    name, unit, higher_is_better = "compression", "KB on disk", False

    def measure(self, submission: Submission, arena: Arena) -> float:
        path = submission.save_to(Path(arena.out) / f"{_slug(submission.name)}.npz")
        return os.path.getsize(path) / 1024


class AccuracyEvent:
    name, unit, higher_is_better = "accuracy", "%", True

    def measure(self, submission: Submission, arena: Arena) -> float | None:
        if arena.test_x is None or arena.test_y is None:
            return None
        predictions = submission.run(arena.test_x).argmax(axis=-1)
        return 100.0 * float(np.mean(predictions == np.asarray(arena.test_y)))


BUILTIN_EVENTS: tuple[Event, ...] = (LatencyEvent(), MemoryEvent(), CompressionEvent(), AccuracyEvent())
ALL_AROUND = "all-around"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def registered_events() -> list[Event]:
    """Events that plugins registered under kind ``olympics_event`` (classes are instantiated)."""
    events = []
    for obj in tt_core.get_registry().items("olympics_event").values():
        events.append(obj() if isinstance(obj, type) else obj)
    return events


# ----------------------------------------------------------------------------------------
# The scorecard
# ----------------------------------------------------------------------------------------


@dataclass
class Scorecard:
    """Measured values and improvement ratios of every submission in every event."""

    baseline: str
    events: list[dict]  # {"name", "unit", "higher_is_better"}
    values: dict[str, dict[str, float | None]]  # submission -> event -> value
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = self.values[self.baseline]
        for entry, values in self.values.items():
            ratios = {}
            for event in self.events:
                value, reference = values.get(event["name"]), base.get(event["name"])
                if value is None or reference is None or value <= 0 or reference <= 0:
                    ratios[event["name"]] = None
                else:
                    ratios[event["name"]] = value / reference if event["higher_is_better"] else reference / value
            known = [r for r in ratios.values() if r is not None]
            ratios[ALL_AROUND] = math.exp(sum(math.log(r) for r in known) / len(known)) if known else None
            self.ratios[entry] = ratios

    @property
    def winner(self) -> str:
        """The submission with the best all-around score."""
        return max(self.ratios, key=lambda name: self.ratios[name][ALL_AROUND] or 0.0)

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "events": self.events, "values": self.values, "ratios": self.ratios,
                "winner": self.winner, "machine": self.machine}

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def table(self):
        from rich.table import Table

        table = Table(title=f"Torch Olympics scorecard (ratios vs {self.baseline}; > 1 is better)")
        table.add_column("event")
        for entry in self.values:
            table.add_column(entry, justify="right")
        for event in self.events:
            cells = []
            for entry in self.values:
                value, ratio = self.values[entry].get(event["name"]), self.ratios[entry][event["name"]]
                cells.append("-" if value is None else f"{value:.4g} {event['unit']}" + (f"  ({ratio:.2f}x)" if ratio else ""))
            table.add_row(event["name"], *cells)
        table.add_section()
        table.add_row(ALL_AROUND, *(f"{self.ratios[e][ALL_AROUND]:.2f}x" for e in self.values))
        return table

    def figure(self):
        """Grouped bars: each submission's improvement ratio per event (log scale, 1 = baseline)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [e["name"] for e in self.events] + [ALL_AROUND]
        entries = list(self.values)
        width = 0.8 / len(entries)
        fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 4))
        for i, entry in enumerate(entries):
            ratios = [self.ratios[entry][n] or np.nan for n in names]
            bars = ax.bar(np.arange(len(names)) + i * width, ratios, width, label=entry)
            ax.bar_label(bars, labels=["" if np.isnan(r) else f"{r:.2f}x" for r in ratios], fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(names)) + width * (len(entries) - 1) / 2, names)
        ax.set_ylabel(f"improvement vs {self.baseline} (x)")
        ax.set_title("Torch Olympics")
        ax.legend()
        fig.tight_layout()
        return fig

    def plot(self, path: str | Path) -> Path:
        """Save :meth:`figure` as a PNG."""
        return save_png(self.figure(), path)


def _machine() -> dict:
    import platform

    return {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count(),
            "processor": platform.machine()}


def run_olympics(baseline: Submission, submissions: Iterable[Submission], arena: Arena,
                 events: Iterable[Event] | None = None, *, plugins: bool = True) -> Scorecard:
    """Measure ``baseline`` and each submission in every event, one after the other, in this run.

    Args:
        events: the events to hold (default: latency, memory, compression, accuracy).
        plugins: also hold the events that plugins registered (kind ``olympics_event``).
    """
    events = list(BUILTIN_EVENTS if events is None else events) + (registered_events() if plugins else [])
    entries = [baseline, *submissions]
    if len({entry.name for entry in entries}) != len(entries):
        raise ValueError("submission names must be unique: " + ", ".join(e.name for e in entries))
    Path(arena.out).mkdir(parents=True, exist_ok=True)
    values = {entry.name: {event.name: event.measure(entry, arena) for event in events} for entry in entries}
    described = [{"name": e.name, "unit": e.unit, "higher_is_better": bool(e.higher_is_better)} for e in events]
    return Scorecard(baseline.name, described, values, machine=_machine())

"""What a milestone's model costs: the systems figures of every report, and the measurements
behind the scaling plots.

Every milestone records, for each model it trained, ``ctx.systems[label]`` (the report's
``systems``, apart from the seeded ``metrics`` as its times vary from run to run):

* ``model``: a few words naming it, ``parameters``: its parameter count;
* ``batch_size``: the batch the per-batch figures are for (the training batch);
* ``train_step_ms``: the measured time of one training step (forward, backward and update),
  from the run's own training, when the run timed it;
* with tt-perf's profiler installed (``perf:profile``, optional in every spec):
  ``forward_flops_per_example``, ``activation_bytes_per_batch`` (the bytes of every layer's
  output in one forward pass of a batch: roughly what backward keeps alive) and
  ``forward_ms_per_batch`` (median of a few inference passes). Without it, ``profiler`` says
  so, and parameters and time are all there is.

``tt-milestones run`` prints them after the checks (:func:`systems_table`). This module uses
tt-core and the registry only: the profiler comes from ``ctx.component``.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from tt_core import Module, Tensor

from .api import RunContext


def profiler(ctx: RunContext) -> Callable | None:
    """tt-perf's ``profile`` function when it is installed, else None (the spec must declare
    ``perf:profile``, in ``requires`` or ``optional``)."""
    return ctx.component("perf", "profile") if ctx.registry.has("perf", "profile") else None


def batch_size_of(example: Any) -> int:
    """The batch size of ``example``: the first axis of its first array."""
    first = example[0] if isinstance(example, tuple) else example
    shape = np.shape(first.data if isinstance(first, Tensor) else first)
    if not shape:
        raise ValueError(f"the example batch must have a batch axis, got an input of shape {shape}")
    return int(shape[0])


def record_systems(ctx: RunContext, label: str, model: Module, example: Any, *, step_seconds: float | None = None,
                   what: str = "", profiled: Any = None) -> dict[str, Any]:
    """Measure what ``model`` costs and record it as ``ctx.systems[label]``.

    Args:
        ctx: the run.
        label: the model's key in the report, e.g. ``"lenet"``.
        model: the trained model (a Module); it is profiled in eval mode and its mode restored,
            so profiling changes no batch-norm statistic.
        example: one training batch as the model is called with it (an array or Tensor, or a
            tuple of arguments; the first axis of the first is the batch).
        step_seconds: the measured seconds of one training step, or None when not timed.
        what: a few words naming the model for the closing table (default: its class name).
        profiled: the profiler's report of ``model`` on ``example`` when the run made one
            already (it is used instead of profiling again).

    Returns:
        The figures recorded (see the module docstring).

    Raises:
        ValueError: ``example`` has no batch axis.
    """
    batch = batch_size_of(example)
    figures: dict[str, Any] = {"model": what or type(model).__name__, "parameters": int(model.num_parameters()),
                               "batch_size": batch}
    if step_seconds is not None:
        figures["train_step_ms"] = round(1e3 * float(step_seconds), 4)
    profile = profiler(ctx) if profiled is None else None
    if profile is None and profiled is None:
        figures["profiler"] = "not installed: install tt-perf for FLOPs and activation memory"
    else:
        report = profiled if profiled is not None else _profile_in_eval_mode(profile, model, example)
        figures["forward_flops_per_example"] = round(report.total_flops / batch)
        figures["activation_bytes_per_batch"] = int(report.activation_bytes)
        figures["forward_ms_per_batch"] = round(report.latency.median_ms, 4)
        if report.unknown:
            figures["flops_unknown_for"] = list(report.unknown)
    ctx.systems[label] = figures
    ctx.log("  systems, " + _summary(figures))
    return figures


def _profile_in_eval_mode(profile: Callable, model: Module, example: Any):
    """``profile(model, example)`` with a few repeats, in eval mode (batch norm keeps its
    running statistics, dropout is off); the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        return profile(model, example, warmup=1, repeats=3)
    finally:
        model.train(was_training)


def step_seconds_from_history(history: list[dict], steps_per_epoch: int) -> float:
    """Seconds per training step from a Trainer's history (its ``seconds`` are the training
    part of each epoch, without evaluation)."""
    return float(np.mean([row["seconds"] for row in history])) / max(int(steps_per_epoch), 1)


def median_seconds(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The median wall time of ``fn()`` over ``repeats`` calls, after one unmeasured call."""
    fn()
    times = []
    for _ in range(max(int(repeats), 1)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_bytes(fn: Callable[[], Any]) -> int:
    """The most memory newly allocated at one time while ``fn()`` runs (NumPy arrays and Python
    objects, as :mod:`tracemalloc` sees them); an enclosing trace is left running."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if started:
            tracemalloc.stop()
    return max(0, int(peak - before))


# ----------------------------------------------------------------------------------------
# Presentation
# ----------------------------------------------------------------------------------------


def count(value: float) -> str:
    """A count with an SI prefix.

    Examples:
        >>> count(1234567), count(65)
        ('1.23 M', '65')
    """
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


def size(value: float) -> str:
    """Bytes, in B, KB, MB or GB (powers of 1024).

    Examples:
        >>> size(3 * 2**20), size(40)
        ('3.0 MB', '40 B')
    """
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _summary(figures: dict[str, Any]) -> str:
    parts = [f"{figures['model']}: {count(figures['parameters'])} parameters"]
    if "forward_flops_per_example" in figures:
        parts.append(f"{count(figures['forward_flops_per_example'])} FLOPs per example forward")
        parts.append(f"{size(figures['activation_bytes_per_batch'])} of activations per batch of {figures['batch_size']}")
    if "train_step_ms" in figures:
        parts.append(f"{figures['train_step_ms']:.3g} ms per training step")
    return ", ".join(parts)


def systems_table(report: dict):
    """The systems figures of a finished run's report as a ``rich.table.Table``, or None when
    the report has none."""
    rows = report.get("systems")
    if not rows:
        return None
    from rich.table import Table

    table = Table("model", "params", "FLOPs per\nexample", "activations\nper batch", "forward\nper batch",
                  "training\nstep", title="systems: what each model costs")
    for figures in rows.values():
        flops = figures.get("forward_flops_per_example")
        table.add_row(
            figures["model"], count(figures["parameters"]),
            "-" if flops is None else count(flops),
            "-" if flops is None else f"{size(figures['activation_bytes_per_batch'])} ({figures['batch_size']})",
            "-" if flops is None else f"{figures['forward_ms_per_batch']:.3g} ms",
            f"{figures['train_step_ms']:.3g} ms" if "train_step_ms" in figures else "-",
        )
    if any("forward_flops_per_example" not in figures for figures in rows.values()):
        table.caption = "FLOPs, activations and forward time need tt-perf's profiler (pip install tt-perf)"
    return table

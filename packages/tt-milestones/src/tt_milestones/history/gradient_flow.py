"""Gradient flow, drawn and recorded: do the gradients reach the first layer, and how much do
the weights move?

The input is a list of gradient records as tt-learn writes them (``Trainer(...,
track_gradients=True).gradient_stats``, or ``GradientWatch.records`` in a loop of one's own):
one dict per parameter per period of training, with at least ``epoch``, ``parameter`` (its
name in ``named_parameters()``), ``shape``, ``grad_norm``, ``update_ratio`` and
``weight_norm``. The figures show the *weight matrices* (every parameter of two or more
dimensions: linear weights, convolution filters, embedding tables), in the model's order,
which is their depth from the input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..api import RunContext

UPDATE_RATIO_GUIDE = 1e-3  # a common rule of thumb: a healthy step moves a weight by about 1e-3 of its norm


def weight_names(rows: list[dict[str, Any]]) -> list[str]:
    """The names of the parameters of two or more dimensions, in the order of the records.

    Raises:
        ValueError: ``rows`` is empty or has no such parameter (nothing to draw).
    """
    names = list(dict.fromkeys(row["parameter"] for row in rows if len(row["shape"]) >= 2))
    if not names:
        raise ValueError("no gradient records of weight matrices to draw: train with track_gradients=True "
                         "(or wrap each optimizer step in GradientWatch.step)")
    return names


def series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(epochs, {parameter: values})``: the value of ``key`` for each parameter over the periods."""
    epochs = np.array(sorted({row["epoch"] for row in rows}))
    position = {epoch: i for i, epoch in enumerate(epochs)}
    values: dict[str, np.ndarray] = {}
    for row in rows:
        values.setdefault(row["parameter"], np.full(len(epochs), np.nan))[position[row["epoch"]]] = row[key]
    return epochs, values


def _rounded(value: float) -> float | None:
    """4 significant digits; None for NaN (JSON has no NaN)."""
    return None if not math.isfinite(value) else float(f"{value:.4g}")


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The records in a compact form for ``report.json``: ``{"epochs": [...], "parameters":
    {name: {"shape", "grad_norm", "update_ratio", "weight_norm"}}}``, each a list over the
    epochs (4 significant digits; None where a ratio is undefined)."""
    epochs, _ = series(rows, "grad_norm")
    shapes = {row["parameter"]: list(row["shape"]) for row in rows}
    columns = {key: series(rows, key)[1] for key in ("grad_norm", "update_ratio", "weight_norm")}
    return {
        "epochs": epochs.tolist(),
        "parameters": {name: {"shape": shape, **{key: [_rounded(v) for v in columns[key][name]] for key in columns}}
                       for name, shape in shapes.items()},
    }


def _colours(count: int):
    import matplotlib

    return matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, count))


def draw_lines(ax, rows: list[dict[str, Any]], key: str = "grad_norm", xlabel: str = "epoch",
               legend: bool = True) -> None:
    """One line per weight matrix of ``key`` over the periods, on a log y axis, coloured by depth
    (dark: next to the input, yellow: next to the output)."""
    names = weight_names(rows)
    epochs, values = series(rows, key)
    for name, colour in zip(names, _colours(len(names))):
        ax.plot(epochs, values[name], color=colour, marker="o" if len(epochs) < 20 else None, markersize=3,
                label=name)
    ax.set(xlabel=xlabel, yscale="log",
           ylabel={"grad_norm": "gradient norm ||g||", "update_ratio": "update ratio ||Δw|| / ||w||"}.get(key, key))
    if key == "update_ratio":
        ax.axhline(UPDATE_RATIO_GUIDE, color="gray", linestyle="--", linewidth=1)
    if legend and len(names) <= 10:
        ax.legend(fontsize=6, framealpha=0.6)
    elif legend:
        import matplotlib

        mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(1, len(names)), "viridis")
        ax.figure.colorbar(mappable, ax=ax, label="depth (weight matrix, from the input)")
    ax.grid(alpha=0.3, which="both")


def draw_depth_bars(ax, groups: dict[str, list[dict[str, Any]]], epoch: int | None = None,
                    colours: tuple[str, ...] = ("#3d85c6", "#cc0000", "#6aa84f")) -> None:
    """Bars by depth of every weight matrix's mean gradient norm in period ``epoch`` (default
    the last), on a log y axis reaching a decade below the smallest bar; one bar per group
    (``{label: records}``, networks of the same depth) at each depth."""
    width = 0.8 / len(groups)
    smallest = np.inf
    for index, ((label, rows), colour) in enumerate(zip(groups.items(), colours)):
        names = weight_names(rows)
        epochs, values = series(rows, "grad_norm")
        column = len(epochs) - 1 if epoch is None else int(np.flatnonzero(epochs == epoch)[0])
        heights = np.array([values[name][column] for name in names])
        depth = np.arange(1, len(names) + 1)
        ax.bar(depth + (index - (len(groups) - 1) / 2) * width, heights, width=width, color=colour, label=label)
        smallest = min(smallest, heights[heights > 0].min(initial=np.inf))
    ax.set(xlabel="depth (weight matrix, from the input)", ylabel="gradient norm ||g||", yscale="log")
    if np.isfinite(smallest):
        ax.set_ylim(bottom=smallest / 10)
    ax.set_xticks(depth, names if len(names) <= 16 else depth, rotation=90 if len(names) <= 16 else 0, fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    if len(groups) > 1:
        ax.legend()


def report_gradient_flow(ctx: RunContext, name: str, rows: list[dict[str, Any]], title: str,
                         xlabel: str = "epoch") -> None:
    """Record ``<name>_gradient_flow`` (the :func:`summary`) and save ``<name>_gradient_flow.png``:
    the gradient norm and the update ratio of every weight matrix over training, and the last
    period's gradient norms by depth."""
    ctx.record(f"{name}_gradient_flow", summary(rows))
    fig, (norms, ratios, bars) = ctx.figure(1, 3, figsize=(16, 4.5))
    draw_lines(norms, rows, "grad_norm", xlabel, legend=False)
    norms.set_title("gradient norm per weight matrix")
    draw_lines(ratios, rows, "update_ratio", xlabel)
    ratios.set_title(f"update-to-weight ratio (dashed: {UPDATE_RATIO_GUIDE:g})")
    draw_depth_bars(bars, {title: rows})
    bars.set_title("gradient norm by depth, end of training")
    fig.suptitle(f"{title}: gradient flow")
    ctx.save_figure(fig, f"{name}_gradient_flow.png", f"{title}: the gradient norm and the update-to-weight ratio "
                    f"of every weight matrix over training ({xlabel}), and the gradient norms by depth at the end.")

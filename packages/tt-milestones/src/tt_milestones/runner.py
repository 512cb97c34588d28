"""Running one milestone: seed, call its run function, and write ``report.json``."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tt_core

from .api import MilestoneSpec, RunContext


def resolve(target: str) -> Callable[[RunContext], None]:
    """Import ``"package.module:function"``."""
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def installed_versions(plugin_dists: dict[str, str]) -> dict[str, str]:
    """Versions of Python, NumPy, every installed ``tt-*`` distribution and every plugin."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.startswith("tt-"):
            versions[name] = dist.version
    versions.update(plugin_dists)
    return dict(sorted(versions.items()))


def _plain(value: Any) -> Any:
    """JSON fallback for NumPy scalars and arrays, paths and tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} to report.json")


def build_report(spec: MilestoneSpec, ctx: RunContext, wall_time: float, versions: dict[str, str]) -> dict:
    return {
        "id": spec.id,
        "slug": spec.slug,
        "year": spec.year,
        "title": spec.title,
        "target": spec.target,
        "reached": ctx.reached,
        "checks": [
            {"name": c.name, "value": c.value, "op": c.op, "target": c.target, "reached": c.reached}
            for c in ctx.checks
        ],
        "metrics": ctx.metrics,
        "configuration": ctx.config,
        "seed": ctx.seed,
        "quick": ctx.quick,
        "options": ctx.options,
        "wall_time_s": round(wall_time, 3),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "plots": ctx.plots,
    }


def run_milestone(
    spec: MilestoneSpec,
    ctx: RunContext,
    plugin_dists: dict[str, str],
) -> dict:
    """Seed, run ``spec`` in ``ctx``, and write ``ctx.out / "report.json"``; returns the report."""
    run = resolve(spec.run)
    tt_core.manual_seed(ctx.seed)
    start = time.perf_counter()
    run(ctx)
    wall_time = time.perf_counter() - start
    report = build_report(spec, ctx, wall_time, installed_versions(plugin_dists))
    ctx.out.mkdir(parents=True, exist_ok=True)
    (ctx.out / "report.json").write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    return report

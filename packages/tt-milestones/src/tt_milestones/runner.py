"""Running one milestone: seed, call its run function, and write ``report.json``.

``report.json`` records, besides the checks and metrics, whose code ran: ``providers`` maps
every component the run used (``"kind:name"``) to the distribution that provided it::

    "providers": {
        "layer:Linear": {"dist": "my-tinytorch", "version": "0.1.0", "builtin": false},
        "op:relu": {"dist": "tt-core", "version": "0.1.0", "builtin": true,
                    "rule": {"dist": "my-tinytorch", "version": "0.1.0", "builtin": false}},
        ...
    }

The components are those the run asked for through ``ctx.component`` and every op it ran
(an op's entry names its kernel's provider, and under ``rule`` its gradient rule's, or
``null`` when the op ran without one).

``report.json`` is written when the run starts, again as each phase of the milestone
completes (``ctx.phase``), and when it ends, each time atomically. Its ``status`` is
``running``, ``completed``, ``interrupted`` (Ctrl-C) or ``failed`` (with the error in
``error``), so a run that stops early leaves a report of everything measured until then;
``phases`` lists the phases with their status and duration, ``plot_errors`` the plots that
could not be saved. ``reached`` is true only for a completed run whose checks all passed.

The options ``graph`` and ``detect_anomaly`` (``run --graph``, ``--detect-anomaly``) wrap the
run in what :mod:`tt_milestones.diagnostics` provides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import tt_core
from tt_core import dispatch
from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry, PluginSystem

from . import diagnostics
from .api import MilestoneSpec, RunContext
from .files import OutDirError, describe_os_error, write_atomic

RUNNING, COMPLETED, INTERRUPTED, FAILED = "running", "completed", "interrupted", "failed"
REPORT_NAME = "report.json"


class RunPathError(TinyTorchError):
    """A milestone spec's ``run`` path (``"module:function"``) names no importable function."""


def _where_it_failed(error: BaseException) -> str:
    """``" (at file.py:12)"``: the innermost frame of ``error`` in the imported code (not in the
    import machinery), to find the failing line; empty when the module itself was not found."""
    machinery = (Path(importlib.__file__).parent, Path(__file__))
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<frozen")
        and not any(Path(frame.filename) == m or m in Path(frame.filename).parents for m in machinery)
    ]
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


def resolve(spec: MilestoneSpec, provider: str | None = None) -> Callable[[RunContext], None]:
    """The run function ``spec.run`` (``"package.module:function"``) names, imported now.

    Args:
        spec: the milestone whose run function is wanted.
        provider: the distribution that registered ``spec``, named in the error.

    Returns:
        The function, to be called with a :class:`RunContext`.

    Raises:
        RunPathError: the module fails to import (any exception while importing it), has no
            such attribute, or the attribute is not callable. The message names the spec,
            the path and what failed.
    """
    module_name, _, function_name = spec.run.partition(":")
    owner = f", registered by {provider}" if provider else ""
    where = f"milestone {spec.id} ({spec.slug}{owner}): its run path {spec.run!r} does not resolve"
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a missing module, or any error raised while importing it
        raise RunPathError(
            f"{where}: importing {module_name!r} failed with {type(error).__name__}: {error}"
            f"{_where_it_failed(error)}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise RunPathError(
            f"{where}: module {module_name!r} has no {function_name!r} "
            f"(its functions: {', '.join(public) or 'none'})"
        )
    if not callable(function):
        raise RunPathError(f"{where}: {function_name!r} is a {type(function).__name__}, not a function")
    return function


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


def _provider(registry: ComponentRegistry, dist: str, version: str | None) -> dict[str, Any]:
    return {"dist": dist, "version": version or None, "builtin": registry.is_builtin(dist)}


def _op_entry(registry: ComponentRegistry, bound: dispatch.BoundOp, versions: dict[str, str]) -> dict[str, Any]:
    """An op's provider: its kernel's, with its rule's under ``rule`` (None: it has none)."""
    entry = _provider(registry, bound.kernel_dist, versions.get(bound.kernel_dist))
    entry["rule"] = None if bound.rule_dist is None else _provider(
        registry, bound.rule_dist, versions.get(bound.rule_dist)
    )
    return entry


def used_providers(ctx: RunContext, versions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Whose code the run used: ``"kind:name"`` -> provider, for every component handed out by
    ``ctx.component`` and every op run since ``dispatch.reset_dispatch()`` (module docstring).

    Args:
        ctx: the finished run.
        versions: distribution -> version, for providers whose component does not carry one.
    """
    registry = ctx.registry
    found = {
        f"{kind}:{name}": _provider(registry, c.dist, c.version or versions.get(c.dist))
        for (kind, name), c in ctx.used.items()
    }
    found.update({f"op:{name}": _op_entry(registry, bound, versions) for name, bound in dispatch.ops_used().items()})
    return dict(sorted(found.items()))


def planned_providers(spec: MilestoneSpec, system: PluginSystem, versions: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Whose code a run of ``spec`` will use, as far as is known before it runs: the chosen
    provider of every component the spec declares (that is installed) and of every op, in the
    format of :func:`used_providers`."""
    registry = system.registry
    found = {}
    for req in spec.requires + spec.optional:
        if registry.has(req.kind, req.name):
            chosen = registry.chosen(req.kind, req.name)
            found[str(req)] = _provider(registry, chosen.dist, chosen.version or versions.get(chosen.dist))
    found.update({f"op:{name}": _op_entry(registry, bound, versions) for name, bound in system.bound_ops.items()})
    return dict(sorted(found.items()))


def not_builtin(providers: dict[str, dict[str, Any]]) -> list[str]:
    """``["layer:Linear (my-tinytorch 0.1.0)", "grad_rule:relu (my-tinytorch 0.1.0)", ...]``:
    the entries of ``providers`` (as :func:`used_providers` gives them) that are not built in."""
    def label(component: str, entry: dict[str, Any]) -> str:
        return f"{component} ({' '.join(filter(None, (entry['dist'], entry['version'])))})"

    found = []
    for component, entry in providers.items():
        if not entry["builtin"]:
            found.append(label(component, entry))
        rule = entry.get("rule")  # an op's rule, named apart unless it comes with the kernel
        if rule is not None and not rule["builtin"] and (entry["builtin"] or rule["dist"] != entry["dist"]):
            found.append(label(f"grad_rule:{component.partition(':')[2]}", rule))
    return found


def build_report(
    spec: MilestoneSpec, ctx: RunContext, wall_time: float, versions: dict[str, str],
    providers: dict[str, dict[str, Any]], status: str = COMPLETED, error: str | None = None,
) -> dict:
    """The content of ``report.json`` (module docstring) for ``ctx`` as it stands."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "id": spec.id,
        "slug": spec.slug,
        "year": spec.year,
        "title": spec.title,
        "target": spec.target,
        "status": status,
        "error": error,
        "reached": status == COMPLETED and ctx.reached,
        "checks": [
            {"name": c.name, "value": c.value, "op": c.op, "target": c.target, "reached": c.reached}
            for c in ctx.checks
        ],
        "metrics": ctx.metrics,
        "phases": ctx.phases,
        "configuration": ctx.config,
        "seed": ctx.seed,
        "quick": ctx.quick,
        "options": ctx.options,
        "threads": ctx.threads,
        "wall_time_s": round(wall_time, 3),
        "updated": now,
        "finished": None if status == RUNNING else now,
        "versions": versions,
        "providers": providers,
        "plots": ctx.plots,
        "figures": ctx.figures,
        "plot_errors": ctx.plot_errors,
        "systems": ctx.systems,
    }


class ReportWriter:
    """Writes ``report.json`` of one run, whenever asked, from the run's context as it stands."""

    def __init__(self, spec: MilestoneSpec, ctx: RunContext, plugin_dists: dict[str, str]) -> None:
        self.spec, self.ctx, self.plugin_dists = spec, ctx, plugin_dists
        self.versions = installed_versions(plugin_dists)
        self.path = ctx.out / REPORT_NAME
        self.start = time.perf_counter()
        self.warned = False

    def report(self, status: str, error: str | None = None) -> dict:
        providers = used_providers(self.ctx, self.plugin_dists)
        wall_time = time.perf_counter() - self.start
        return build_report(self.spec, self.ctx, wall_time, self.versions, providers, status, error)

    def write(self, status: str, error: str | None = None) -> dict:
        """Write the report with ``status``; returns it.

        Raises:
            OSError: ``report.json`` cannot be written (its previous content is unchanged).
        """
        report = self.report(status, error)
        write_atomic(self.path, json.dumps(report, indent=2, default=_plain) + "\n")
        self.ctx.report_path = self.path
        return report

    def write_or_warn(self, status: str, error: str | None = None) -> None:
        """Write the report; a failure (a full disk) is said once on the console, and the run
        goes on (the next write tries again)."""
        try:
            self.write(status, error)
        except OSError as problem:
            if not self.warned:
                self.ctx.warn(f"could not update the report ({describe_os_error(problem)}); the run goes on")
                self.warned = True


def default_threads() -> int:
    """Every core this process may use (what ``run`` gives BLAS unless ``--threads`` says otherwise)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextlib.contextmanager
def blas_threads(count: int | None):
    """BLAS (OpenBLAS, MKL, ...) limited to ``count`` threads inside the block; None: unchanged."""
    if count is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield


def run_milestone(
    spec: MilestoneSpec,
    ctx: RunContext,
    plugin_dists: dict[str, str],
    run: Callable[[RunContext], None] | None = None,
) -> dict:
    """Seed, run ``spec`` in ``ctx``, and write ``ctx.out / "report.json"`` as it goes (module
    docstring); returns the final report.

    Args:
        spec: the milestone.
        ctx: where it runs and what it records. ``ctx.out`` should exist and be writable
            (:func:`tt_milestones.files.prepare_out`).
        plugin_dists: distribution -> version of every loaded plugin.
        run: ``spec``'s run function, if already resolved (else :func:`resolve` finds it).

    Raises:
        RunPathError: ``spec.run`` does not resolve.
        OutDirError: ``report.json`` cannot be written, at the start (then nothing ran) or at
            the end (then the checks were shown on the console, and the last report written
            during the run is left).
        BaseException: whatever the run raised (KeyboardInterrupt included), after the report
            was written with status ``interrupted`` or ``failed``.
    """
    run = run if run is not None else resolve(spec)
    writer = ReportWriter(spec, ctx, plugin_dists)
    tt_core.manual_seed(ctx.seed)
    dispatch.reset_dispatch()  # so that ops_used() is this run's
    try:
        writer.write(RUNNING)
    except OSError as error:
        raise OutDirError(f"cannot write {writer.path} ({describe_os_error(error)}); choose another --out") from None
    ctx.on_phase_end = lambda: writer.write_or_warn(RUNNING)
    try:
        with blas_threads(ctx.threads), diagnostics.watching(ctx):
            run(ctx)
    except KeyboardInterrupt:
        writer.write_or_warn(INTERRUPTED, "interrupted (Ctrl-C)")
        raise
    except BaseException as error:
        writer.write_or_warn(FAILED, f"{type(error).__name__}: {error}")
        raise
    finally:
        ctx.on_phase_end = None
    try:
        return writer.write(COMPLETED)
    except OSError as error:
        raise OutDirError(
            f"the run finished, but {writer.path} could not be written ({describe_os_error(error)}); "
            "the checks are shown above"
        ) from None

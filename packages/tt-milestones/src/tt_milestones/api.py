"""What a milestone is (``MilestoneSpec``) and what its run function receives (``RunContext``).

A milestone's run function lives in a module of its own and is named in the spec as
``"package.module:function"``, so ``tt-milestones list`` never imports it. It receives a
:class:`RunContext` and reports through it::

    def run(ctx: RunContext) -> None:
        Linear = ctx.component("layer", "Linear")     # the provider the user chose
        ctx.record("accuracy_before", 0.49)          # a figure with no target
        ctx.check("accuracy", 1.0, ">=", 1.0)         # a figure against its target
        fig, ax = ctx.figure()
        ...
        ctx.save_figure(fig, "decision_boundary.png", "The plane coloured by the model's answer.")

The milestone reached its target when every ``check`` passed. A run of several parts marks
each one as a phase, so that ``report.json`` is rewritten as each part completes and a run
stopped later (Ctrl-C, an error, a full disk) keeps everything measured until then::

    with ctx.phase("mnist"):
        ...

A plot that cannot be saved does not stop the run: it is listed in the report's
``plot_errors``.
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tt_core.errors import TinyTorchError
from tt_core.plugins import Component, ComponentRegistry

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}


@dataclass(frozen=True)
class Requirement:
    """A component a milestone needs, and the distribution that provides it.

    Examples:
        >>> str(Requirement("layer", "Linear", "tt-core"))
        'layer:Linear'
    """

    kind: str
    name: str
    package: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class MilestoneSpec:
    """One milestone of history. ``status(registry)`` answers and never raises."""

    id: str
    slug: str
    year: int
    title: str
    history: str
    requires: tuple[Requirement, ...]
    target: str
    run: str  # "package.module:function"
    quick_note: str = ""
    options: tuple[str, ...] = ()  # extra CLI flags this milestone understands, e.g. ("chat",)
    optional: tuple[Requirement, ...] = ()  # used when installed (a comparison), not needed to run

    def missing(self, registry: ComponentRegistry) -> list[Requirement]:
        return [r for r in self.requires if not registry.has(r.kind, r.name)]

    def install_hint(self, registry: ComponentRegistry) -> list[str]:
        return sorted({r.package for r in self.missing(registry)})

    def status(self, registry: ComponentRegistry) -> str:
        return "locked" if self.missing(registry) else "runnable"


@dataclass
class Check:
    name: str
    value: float
    op: str
    target: float

    @property
    def reached(self) -> bool:
        return bool(COMPARISONS[self.op](self.value, self.target))


@dataclass
class RunContext:
    """Everything a milestone run needs, and where it puts what it measured.

    Examples:
        >>> from tt_core.plugins import ComponentRegistry
        >>> ctx = RunContext(registry=ComponentRegistry(), out=Path("runs/example"))
        >>> ctx.record("accuracy_before", 0.5)
        0.5
        >>> ctx.check("accuracy", 0.99, ">=", 0.98)
        True
        >>> ctx.reached, ctx.metrics
        (True, {'accuracy_before': 0.5, 'accuracy': 0.99})
    """

    registry: ComponentRegistry
    out: Path
    quick: bool = False
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # BLAS threads for the run (None: as the process started)
    console: Any = None  # a rich Console
    declared: tuple[Requirement, ...] | None = None  # the spec's requires + optional; None: any
    metrics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)  # {"file": name, "description": ...}
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each model costs (tt_milestones.systems)
    config: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    used: dict[tuple[str, str], Component] = field(default_factory=dict)  # what component() handed out
    phases: list[dict[str, Any]] = field(default_factory=list)  # {"name", "status", "seconds"[, "error"]}
    plot_errors: list[dict[str, str]] = field(default_factory=list)  # {"plot", "error"}
    on_phase_end: Callable[[], None] | None = None  # called when a phase completes (writes report.json)
    report_path: Path | None = None  # report.json, once this run has written it

    # -- components ----------------------------------------------------------------------
    def component(self, kind: str, name: str) -> Any:
        """The chosen provider of one component (so a learner's own plugin is used).

        A run may use only what its spec declares (``requires`` or ``optional``), so that
        ``list`` locks it exactly when something it needs is missing. Every component handed
        out is recorded in ``used`` with its provider, for the report's ``providers``.

        Raises:
            TinyTorchError: the spec does not declare ``kind:name``.
            UnknownComponentError: no installed plugin provides it.
        """
        if self.declared is not None and not any(r.kind == kind and r.name == name for r in self.declared):
            raise TinyTorchError(
                f"this milestone uses {kind}:{name}, which its spec does not declare: "
                f"add Requirement({kind!r}, {name!r}, <package>) to its requires (or optional)"
            )
        component = self.registry.chosen(kind, name)
        self.used[(kind, name)] = component
        return component.obj

    # -- reporting -----------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Print ``message`` (rich markup) on the run's console."""
        if self.console is not None:
            self.console.print(message)

    def warn(self, message: str) -> None:
        """Print ``message`` as it is (no markup), in yellow, on the run's console."""
        if self.console is not None:
            self.console.print(message, style="yellow", markup=False, highlight=False, soft_wrap=True)

    def record(self, name: str, value: Any) -> Any:
        """A measured figure with no target (accuracy before training, wall time, ...)."""
        self.metrics[name] = value
        return value

    def check(self, name: str, value: float, op: str, target: float) -> bool:
        """A measured figure against its target; the milestone is reached when all pass."""
        if op not in COMPARISONS:
            raise ValueError(f"op must be one of {', '.join(COMPARISONS)}, got {op!r}")
        item = Check(name, float(value), op, float(target))
        self.checks.append(item)
        self.metrics[name] = float(value)
        mark = "[green]reached[/]" if item.reached else "[red]missed[/]"
        self.log(f"  {name} = {value:.4g}  (target {op} {target:g})  {mark}")
        return item.reached

    def check_speed(self, name: str, value: float, op: str, target: float) -> bool:
        """A speed ratio against its target. A quick run (CI, a shared machine) reports it
        without gating on it: timings there are noise, and learning is what quick runs check."""
        if not self.quick:
            return self.check(name, value, op, target)
        self.record(name, float(value))
        self.log(f"  {name} = {value:.4g}  (target {op} {target:g}, checked in full runs only)")
        return True

    def configure(self, **settings: Any) -> None:
        """Record the configuration (sizes, epochs, learning rates) in the report."""
        self.config.update(settings)

    @property
    def reached(self) -> bool:
        return bool(self.checks) and all(c.reached for c in self.checks)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """One part of the run (a data set, a model): ``with ctx.phase("mnist"): ...``.

        The phase is listed in the report's ``phases`` with its status (``running``, then
        ``completed``, ``interrupted`` or ``failed`` with the error) and its duration; when it
        completes, :attr:`on_phase_end` is called, which rewrites ``report.json``.
        """
        entry: dict[str, Any] = {"name": name, "status": "running", "seconds": None}
        self.phases.append(entry)
        start = time.perf_counter()
        try:
            yield
        except KeyboardInterrupt:
            entry["status"] = "interrupted"
            raise
        except BaseException as error:
            entry.update(status="failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            entry["seconds"] = round(time.perf_counter() - start, 3)
        entry["status"] = "completed"
        if self.on_phase_end is not None:
            self.on_phase_end()

    # -- progress and plots --------------------------------------------------------------
    def progress(self, total: int, description: str):
        """A rich progress bar: ``with ctx.progress(n, "training") as advance: advance()``."""
        from .progress import progress_bar

        return progress_bar(total, description, console=self.console)

    def figure(self, *args, **kwargs):
        """A matplotlib ``(fig, ax)`` on the file-only Agg backend."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt.subplots(*args, **kwargs)

    def save_figure(self, fig, name: str, description: str = "") -> Path | None:
        """Save ``fig`` as ``out/name`` (PNG at 110 dpi) and close it; the name goes into the
        report's ``plots``, and name and description into its ``figures``.

        Args:
            fig: a matplotlib figure (from :meth:`figure`).
            name: the file name inside the run folder, e.g. ``"loss_curves.png"``.
            description: what the picture shows, in a sentence, so that ``report.json``
                (``figures``: ``{"file", "description"}``) can be read without opening it.

        Returns:
            The path written, or None when the plot could not be saved (a full disk, a
            rendering error): the run goes on, and the report's ``plot_errors`` says why.
        """
        import matplotlib.pyplot as plt

        path = self.out / name
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fig.tight_layout()
            fig.savefig(path, dpi=110)
        except Exception as error:  # a plot is not worth the measurements of the run
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # no half-written image
            reason = f"{type(error).__name__}: {error}"
            self.plot_errors.append({"plot": name, "error": reason})
            self.warn(f"  could not save {name}: {reason}")
            return None
        finally:
            plt.close(fig)
        self.plots.append(name)
        self.figures.append({"file": name, "description": description})
        return path

"""The profiler: where a model's parameters, FLOPs, activation memory and time go, layer by layer.

:func:`profile` runs a model on an example input with every sub-module's ``forward``
temporarily wrapped, so each call records its input and output shapes, its FLOPs (see
:mod:`tt_perf.flops`), the bytes of its output, and its *self* time (its own time minus the
time of the sub-modules it called). The whole model is then timed again without the wrappers
(warm-up, repeats, median and spread). It works on any :class:`tt_core.Module`::

    report = profile(model, x)
    report.print()                      # a rich table
    report.plot("profile.png")          # a bar chart per layer
    report.total_flops, report.latency.median_ms
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import tt_core
from tt_core import Module, Tensor

from .flops import FlopCounter, find_counter
from .hooks import input_arrays, wrapped_forwards
from .timing import Timing, check_counts, clock_function, measure


class ProfileError(tt_core.TinyTorchError, ValueError):
    """A model or an example input that :func:`profile` cannot run."""


@dataclass
class LayerStats:
    """What one layer cost during one forward pass (summed over its calls)."""

    name: str
    type: str
    params: int
    param_bytes: int
    calls: int = 0
    input_shape: tuple | None = None
    output_shape: tuple | None = None
    flops: int | None = 0  # None: no counter knows this layer
    activation_bytes: int = 0
    latency: float = 0.0  # median self time per forward pass, seconds
    is_leaf: bool = True

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Profile:
    """A model's profile: one :class:`LayerStats` per layer, and the whole model's latency."""

    model: str
    input_shapes: list[tuple]
    layers: list[LayerStats]
    latency: Timing
    total_params: int
    param_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def total_flops(self) -> int:
        return int(sum(layer.flops or 0 for layer in self.layers))

    @property
    def activation_bytes(self) -> int:
        """Bytes of every layer output produced during one forward pass."""
        return int(sum(layer.activation_bytes for layer in self.layers))

    @property
    def unknown(self) -> list[str]:
        """Leaf layers whose FLOPs no counter knows (shown as '?' and counted as 0)."""
        return [layer.name for layer in self.layers if layer.flops is None]

    @property
    def gflops_per_second(self) -> float:
        return self.total_flops / self.latency.median / 1e9 if self.latency.median > 0 else 0.0

    def layer(self, name: str) -> LayerStats:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r} in this profile (layers: {', '.join(l.name for l in self.layers)})")

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shapes": [list(s) for s in self.input_shapes],
            "total_params": self.total_params,
            "param_bytes": self.param_bytes,
            "total_flops": self.total_flops,
            "activation_bytes": self.activation_bytes,
            "latency": self.latency.to_dict(),
            "gflops_per_second": self.gflops_per_second,
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": self.notes,
        }

    # -- presentation --------------------------------------------------------------------
    def table(self):
        """A ``rich.table.Table`` with one row per layer and a total row."""
        from rich.table import Table

        layer_time = sum(layer.latency for layer in self.layers) or 1.0
        table = Table(title=f"{self.model} on input {', '.join(str(s) for s in self.input_shapes)}")
        for column in ("layer", "type", "output", "params", "FLOPs", "activations", "self ms", "time %"):
            table.add_column(column, justify="left" if column in ("layer", "type", "output") else "right")
        for layer in self.layers:
            table.add_row(
                layer.name or "(model)", layer.type, str(layer.output_shape or "-"), f"{layer.params:,}",
                "?" if layer.flops is None else _si(layer.flops), _bytes(layer.activation_bytes),
                f"{layer.latency * 1e3:.3f}", f"{100 * layer.latency / layer_time:.1f}",
            )
        table.add_section()
        table.add_row(
            "total", "", "", f"{self.total_params:,}", _si(self.total_flops), _bytes(self.activation_bytes),
            f"{self.latency.median_ms:.3f}", f"IQR {self.latency.iqr_ms:.3f}",
        )
        table.caption = (
            f"whole model: median {self.latency.median_ms:.3f} ms over {self.latency.repeats} runs "
            f"({self.gflops_per_second:.2f} GFLOP/s); parameters {_bytes(self.param_bytes)}"
            + ("; " + "; ".join(self.notes) if self.notes else "")
        )
        return table

    def print(self, console=None) -> None:
        from rich.console import Console

        (console or Console()).print(self.table())

    def figure(self, title: str | None = None):
        """A matplotlib figure with three horizontal bar charts: parameters, FLOPs and self
        time per layer."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter

        names = [f"{layer.name or '(model)'} {layer.type}" for layer in self.layers]
        series = [
            ("parameters", [layer.params for layer in self.layers]),
            ("MFLOPs", [(layer.flops or 0) / 1e6 for layer in self.layers]),
            ("self time (ms)", [layer.latency * 1e3 for layer in self.layers]),
        ]
        height = max(3.0, 0.3 * len(names) + 1.5)
        fig, axes = plt.subplots(1, 3, figsize=(13, height), sharey=True)
        positions = np.arange(len(names))
        for ax, (label, values) in zip(axes, series):
            ax.barh(positions, values, color="tab:blue")
            ax.set_xlabel(label)
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(positions, names, fontsize=8)
        axes[0].invert_yaxis()
        fig.suptitle(title or f"{self.model}: {self.total_params:,} parameters, {_si(self.total_flops)}FLOPs, "
                     f"{self.latency.median_ms:.2f} ms")
        fig.tight_layout()
        return fig

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Save :meth:`figure` as a PNG."""
        return save_png(self.figure(title), path)


def save_png(fig, path: str | Path) -> Path:
    """Write a matplotlib figure to ``path`` (folders created) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f} "


def _bytes(value: float) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


# ----------------------------------------------------------------------------------------
# Instrumentation
# ----------------------------------------------------------------------------------------


class _Recorder:
    """Collects per-module self time, shapes, FLOPs and output bytes during forward passes."""

    def __init__(self, model: Module, counters: dict[str, FlopCounter] | None, clock: str = "wall") -> None:
        self.counters = counters
        self.clock = clock_function(clock)
        self.stack: list[float] = []  # time spent in children of each open call
        self.names: dict[int, str] = {}
        self.modules: dict[str, Module] = {}
        for name, module in model.named_modules():
            if id(module) not in self.names:  # a shared module is recorded under its first name
                self.names[id(module)] = name
                self.modules[name] = module
        seen: set[int] = set()  # a tied parameter (GPT's head = embedding) counts once, where first seen
        self.stats = {name: _new_stats(name, module, seen) for name, module in self.modules.items()}
        self.pass_times: dict[str, list[float]] = {name: [] for name in self.modules}
        self.current: dict[str, float] = dict.fromkeys(self.modules, 0.0)
        self.record_shapes = False  # switched on for the first measured pass only

    def begin_pass(self) -> None:
        self.current = dict.fromkeys(self.modules, 0.0)

    def end_pass(self) -> None:
        for name, seconds in self.current.items():
            self.pass_times[name].append(seconds)
        self.record_shapes = False  # shapes, FLOPs and bytes are the same on every pass

    def wrap(self, name: str, module: Module, original):
        stats = self.stats[name]
        counter = find_counter(module, self.counters)
        clock = self.clock

        def forward(*args, **kwargs):
            start = clock()
            self.stack.append(0.0)
            try:
                out = original(*args, **kwargs)
            finally:
                children = self.stack.pop()
                elapsed = clock() - start
                if self.stack:
                    self.stack[-1] += elapsed
            self.current[name] += elapsed - children
            if self.record_shapes:
                self._record(stats, module, counter, args, out)
            return out

        return forward

    @staticmethod
    def _record(stats: LayerStats, module, counter, args, out) -> None:
        inputs = [a.shape for a in input_arrays(args)]
        outputs = input_arrays(out)
        stats.calls += 1
        if stats.input_shape is None:
            stats.input_shape = inputs[0] if inputs else None
            stats.output_shape = outputs[0].shape if outputs else None
        stats.activation_bytes += int(sum(o.nbytes for o in outputs))
        if counter is None:
            if stats.is_leaf:
                stats.flops = None
        elif stats.flops is not None:
            stats.flops += int(counter(module, inputs, outputs[0].shape if outputs else ()))


def _new_stats(name: str, module: Module, seen: set[int]) -> LayerStats:
    own = [p for p in module._parameters.values() if p is not None and id(p) not in seen]
    seen.update(id(p) for p in own)
    return LayerStats(
        name=name, type=type(module).__name__, params=int(sum(p.size for p in own)),
        param_bytes=int(sum(p.data.nbytes for p in own)), is_leaf=not module._modules,
    )


@contextmanager
def instrument(model: Module, counters: dict[str, FlopCounter] | None = None, clock: str = "wall") -> Iterator[_Recorder]:
    """Wrap the ``forward`` of ``model`` and every sub-module; unwrap on exit, even on error."""
    recorder = _Recorder(model, counters, clock)
    wrappers = {module: partial(recorder.wrap, name, module) for name, module in recorder.modules.items()}
    with wrapped_forwards(wrappers):
        yield recorder


def state_bytes(model: Module) -> int:
    """Bytes of a model's parameters and buffers in memory."""
    arrays = [p.data for p in model.parameters()] + [b.data for _, b in model.named_buffers() if isinstance(b, Tensor)]
    return int(sum(a.nbytes for a in arrays))


def _as_inputs(example) -> tuple:
    """The arguments ``model(...)`` is called with: arrays and lists of numbers become Tensors.

    Raises:
        ProfileError: text, non-numeric or ragged data, or no array-like argument at all.
    """
    items = example if isinstance(example, tuple) else (example,)
    hint = "pass what model(...) takes: a Tensor, a NumPy array, or a tuple of arguments"
    inputs = []
    for position, item in enumerate(items):
        where = "the example input" if len(items) == 1 else f"argument {position} of the example input"
        if isinstance(item, (str, bytes)):
            raise ProfileError(f"{where} is text ({item[:20]!r}), not numbers: {hint} (encode text with a tokenizer)")
        if isinstance(item, (np.ndarray, list)):
            try:
                array = np.asarray(item)
            except ValueError as error:  # ragged nested lists
                raise ProfileError(f"{where} is not a rectangular array ({error}): {hint}") from None
            if array.dtype.kind not in "biuf":
                raise ProfileError(f"{where} is not numbers (dtype {array.dtype}): {hint}")
            item = Tensor(array)
        inputs.append(item)
    if not any(isinstance(x, Tensor) for x in inputs):
        raise ProfileError(f"profile() needs an example input to run the model on, got {type(example).__name__}: {hint}")
    return tuple(inputs)


def _plugin_counters() -> dict[str, FlopCounter]:
    registry = tt_core.get_registry()
    return registry.items("flop_counter")


def profile(model: Module, example_input: Any, *, warmup: int = 3, repeats: int = 20,
            counters: dict[str, FlopCounter] | None = None, clock: str = "wall") -> Profile:
    """Profile ``model`` on ``example_input`` (a Tensor, an array, or a tuple of arguments).

    Args:
        model: any Module; it is run in inference mode (no graph is recorded), its
            train/eval mode is left as it is.
        example_input: what ``model(...)`` is called with; a tuple is spread as arguments.
        warmup, repeats: unmeasured and measured forward passes (see :func:`tt_perf.timing.measure`).
        counters: extra FLOP counters by class name (besides plugins' ``flop_counter``s).
        clock: ``"wall"`` or ``"cpu"`` (steadier on a shared machine; see :mod:`tt_perf.timing`).

    Returns:
        A :class:`Profile`. Rows are the layers that were called and are leaves, own
        parameters, or have a FLOP counter (e.g. multi-head attention's own score/softmax
        work); per-layer latency is the median *self* time over ``repeats`` instrumented passes.

    Raises:
        ProfileError: ``model`` is not a Module, or the example input is text, not numbers,
            ragged, or holds no array at all.
        TimingError: an unknown ``clock``, or ``warmup`` / ``repeats`` that are not whole
            numbers >= 0 / >= 1. Both are raised before the model runs.

    Examples:
        >>> import tt_core as tt
        >>> model = tt.Sequential(tt.Linear(16, 32), tt.ReLU(), tt.Linear(32, 4))
        >>> report = profile(model, tt.randn(8, 16), warmup=0, repeats=2)
        >>> report.total_params  # 16*32 + 32 + 32*4 + 4
        676
        >>> report.total_flops  # 2 FLOPs per multiply-add, plus biases and one per ReLU output
        10784
    """
    if not isinstance(model, Module):
        raise ProfileError(f"profile() takes a tt_core.Module, got {type(model).__name__}")
    clock_function(clock)
    check_counts(warmup, repeats)
    inputs = _as_inputs(example_input)
    all_counters = {**_plugin_counters(), **(counters or {})}
    previous = tt_core.set_grad_enabled(False)
    try:
        with instrument(model, all_counters, clock) as recorder:
            for _ in range(warmup):
                model(*inputs)
            recorder.record_shapes = True
            for _ in range(repeats):
                recorder.begin_pass()
                model(*inputs)
                recorder.end_pass()
        latency = measure(lambda: model(*inputs), warmup=1, repeats=repeats, clock=clock)
    finally:
        tt_core.set_grad_enabled(previous)

    rows = []
    for name, stats in recorder.stats.items():
        has_own_work = stats.params > 0 or (stats.flops or 0) > 0 or stats.is_leaf
        if stats.calls and has_own_work:
            stats.latency = float(np.median(recorder.pass_times[name]))
            rows.append(stats)
    notes = []
    unknown = [s.name for s in rows if s.flops is None]
    if unknown:
        notes.append("FLOPs unknown (counted 0) for " + ", ".join(unknown) + ": give the layer a flops(input_shape) method")
    return Profile(
        model=type(model).__name__, input_shapes=[x.shape for x in inputs if isinstance(x, Tensor)],
        layers=rows, latency=latency, total_params=model.num_parameters(),
        param_bytes=state_bytes(model),
        notes=notes,
    )

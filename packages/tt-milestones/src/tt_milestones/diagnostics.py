"""What ``run ID --graph`` and ``run ID --detect-anomaly`` add to a run, with no change to the
milestone's code.

Both come from the registry (tt-learn registers ``function:draw_graph`` and
``function:detect_anomaly``), never from an import of tt-learn:

- ``--detect-anomaly`` runs the whole milestone inside ``detect_anomaly()``: the first NaN or
  inf in forward or backward stops it with an error naming the op, its provider and the line
  of the milestone (or learner's) code that ran the op.
- ``--graph`` puts a hook on the autograd engine while the run lasts: for the run's first
  ``backward()`` (one training step) it records the graph, lets the chosen engine run, and
  draws the graph with every parameter's gradient norm into ``graph.png`` and ``graph.svg``
  in the report folder, listed in ``report.json``'s ``plots``. The model whose parameters are
  named is the live Module that holds the most of the graph's leaves.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from tt_core import Module
from tt_core.plugins import Component

from .api import RunContext

DIAGNOSTICS = {"graph": ("function", "draw_graph"), "detect_anomaly": ("function", "detect_anomaly")}
"""``run`` flag (as an option name) -> the component it needs."""

GRAPH_FILES = ("graph.png", "graph.svg")
HOOK_DIST = "tt-milestones[graph]"  # the hook's provider name: no installed distribution can have it


def unavailable(registry, options: dict[str, Any]) -> list[str]:
    """The diagnostic options switched on in ``options`` whose component is not installed."""
    return [name for name, (kind, component) in DIAGNOSTICS.items()
            if options.get(name) and not registry.has(kind, component)]


def model_of(leaves: set[int]) -> Module | None:
    """The live Module that holds the most of the tensors whose ids are ``leaves`` (on a tie,
    the one with more sub-modules: the whole model rather than one of its layers), or None."""
    best, best_key = None, (0, 0)
    for obj in gc.get_objects():
        if isinstance(obj, Module):
            held = sum(1 for p in obj.parameters() if id(p) in leaves)
            key = (held, sum(1 for _ in obj.modules()))
            if held and key > best_key:
                best, best_key = obj, key
    return best


class GraphOnFirstBackward:
    """An autograd engine that hands every ``backward()`` to ``engine`` and draws the graph of
    the first one into the run's report folder (module docstring)."""

    def __init__(self, engine: Any, draw_graph: Any, ctx: RunContext) -> None:
        self.engine, self.draw_graph, self.ctx = engine, draw_graph, ctx
        self.drawn = False

    def backward(self, tensor, gradient=None, retain_graph: bool = False) -> None:
        if self.drawn:
            return self.engine.backward(tensor, gradient, retain_graph=retain_graph)
        self.drawn = True
        unnamed = self.draw_graph(tensor, None)  # record only: backward() frees the graph
        leaves = {id(t) for node in unnamed.leaves for t in node.tensors}
        graph = self.draw_graph(tensor, None, module=model_of(leaves))
        self.engine.backward(tensor, gradient, retain_graph=retain_graph)
        for name in GRAPH_FILES:
            drawn = self.draw_graph(graph, self.ctx.out / name)
            self.ctx.plots.append(name)
        self.ctx.record("graph_of_first_step", {
            "files": list(GRAPH_FILES), "ops": len(graph.ops), "leaves": len(graph.leaves),
            "collapsed_modules": [box.name for box in drawn.boxes],
        })
        self.ctx.log(f"  graph of the first backward(): {len(graph.ops)} ops, {len(graph.leaves)} leaves "
                     f"-> {', '.join(GRAPH_FILES)}")


@contextlib.contextmanager
def graph_on_first_backward(ctx: RunContext) -> Iterator[GraphOnFirstBackward]:
    """Make :class:`GraphOnFirstBackward` the autograd engine for the block, wrapping the chosen one."""
    registry = ctx.registry
    key = ("autograd", "engine")
    hook = GraphOnFirstBackward(registry.get(*key), registry.get(*DIAGNOSTICS["graph"]), ctx)
    previous = registry.choices.get(key)
    registry.add(Component(*key, hook, HOOK_DIST))
    registry.choices[key] = HOOK_DIST
    try:
        yield hook
    finally:
        registry.withdraw(HOOK_DIST)
        if previous is None:
            registry.choices.pop(key, None)
        else:
            registry.choices[key] = previous
    if not hook.drawn:
        ctx.log("  --graph: the run never called backward(), so there is no graph to draw")


@contextlib.contextmanager
def watching(ctx: RunContext) -> Iterator[None]:
    """The diagnostics ``ctx.options`` switches on (``graph``, ``detect_anomaly``), for one run."""
    with contextlib.ExitStack() as stack:
        if ctx.options.get("detect_anomaly"):
            stack.enter_context(ctx.registry.get(*DIAGNOSTICS["detect_anomaly"])())
        if ctx.options.get("graph"):
            stack.enter_context(graph_on_first_backward(ctx))
        yield

"""The autograd graph, recorded as data and drawn: :func:`record_graph` and :func:`draw_graph`.

Every op tt-core recorded on the way to a tensor becomes an op node (its name and attributes,
the output's shape and dtype, the distribution whose kernel ran and the one whose gradient
rule it is paired with); every tensor the ops read that no op made becomes a leaf (a
parameter, named by its path in a module when one is given, like ``layers.0.weight``; an
input; a constant such as the ``2`` of ``x * 2``). An edge goes from each input of an op to
the op, one per input slot. After ``backward()`` a leaf shows the norm of its ``.grad``.

Drawing needs no system package: when Graphviz's ``dot`` is on ``PATH`` it lays the graph
out, otherwise matplotlib (``pip install tt-learn[plot]``) draws it in layers by depth, from
the leaves at the top to the output at the bottom, each leaf just above the op that reads it. A large graph (a GPT step) is collapsed: each
repeated block of the module (``blocks.0``, ``blocks.1``, ... of one class) becomes one box
with the number of ops it stands for.

``backward()`` frees the graph it went through; to show the gradients, record the graph
first and draw it after::

    graph = draw_graph(loss, None, module=model)   # record only
    loss.backward()
    draw_graph(graph, "graph.svg")                  # with every parameter's |grad|

Examples:
    >>> import tt_core as tt
    >>> x = tt.tensor([1.0, 2.0], requires_grad=True)
    >>> graph = record_graph((x * x + x).sum())
    >>> [node.name for node in graph.ops], len(graph.leaves), len(graph.edges)
    (['mul', 'add', 'sum'], 1, 5)
"""

from __future__ import annotations

import heapq
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tt_core import Module, Parameter
from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry
from tt_core.tensor import Tensor

from .autograd import GraphFreedError, _topological_order

__all__ = ["AUTO_COLLAPSE_OPS", "DrawGraphError", "Graph", "GraphNode", "draw_graph", "record_graph"]

AUTO_COLLAPSE_OPS = 120
"""``collapse="auto"`` collapses the repeated blocks of graphs with more ops than this."""

LAYOUTS = ("auto", "dot", "matplotlib")
SUFFIXES = (".png", ".svg")


class DrawGraphError(TinyTorchError, ValueError):
    """``draw_graph`` was asked for something it cannot do (a file type, a module to collapse
    that is not there, a layout whose program is missing)."""


# ----------------------------------------------------------------------------------------
# The graph as data
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNode:
    """One box of the graph.

    Attributes:
        id: the node's number (unique within its graph; edges refer to it).
        kind: ``"op"``, ``"leaf"``, or ``"module"`` (a collapsed block of ops).
        name: the op's name; the leaf's path in the module (``"0.weight"``), or ``"parameter"``,
            ``"leaf"`` (requires grad), ``"input"`` or the value of a one-element constant; the
            module's path.
        shape: the output's (op, module) or the tensor's (leaf) shape.
        dtype: its dtype, as text.
        kernel_dist: op: the distribution whose kernel ran.
        rule_dist: op: the distribution of its gradient rule (None: the op has none).
        attrs: op: its keyword attributes as text (``"axis=1"``), or ``""``.
        detail: module: its class, which of the repeated blocks it is and how many ops and
            tensors it holds.
        ops: module: how many recorded ops the box stands for.
        requires_grad: leaf: whether it takes a gradient.
        tensors: the leaf itself (leaf), the module's leaves in the graph (module), or nothing.
    """

    id: int
    kind: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    kernel_dist: str | None = None
    rule_dist: str | None = None
    attrs: str = ""
    detail: str = ""
    ops: int = 0
    requires_grad: bool = False
    tensors: tuple[Tensor, ...] = field(default=(), repr=False, compare=False)

    @property
    def grad_norm(self) -> float | None:
        """The L2 norm of the gradient of the node's tensors (a leaf's ``.grad``; for a module,
        of all its leaves' gradients together), or None when none has a gradient (yet)."""
        grads = [t.grad.data for t in self.tensors if t.grad is not None]
        if not grads:
            return None
        return float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads)))

    @property
    def is_builtin(self) -> bool:
        """Whether every provider of the node (kernel, rule) is one of TinyTorch's packages."""
        return all(ComponentRegistry.is_builtin(d) for d in (self.kernel_dist, self.rule_dist) if d is not None)

    def label(self) -> str:
        """The text of the node's box, one line per fact."""
        shape = f"{self.shape} {self.dtype}"
        if self.kind == "op":
            if self.rule_dist is None:
                providers = f"kernel {self.kernel_dist}, no rule"
            elif self.rule_dist == self.kernel_dist:
                providers = f"kernel and rule {self.kernel_dist}"
            else:
                providers = f"kernel {self.kernel_dist}, rule {self.rule_dist}"
            lines = [f"{self.name} {self.attrs}".strip(), shape, providers]
        elif self.kind == "module":
            lines = [self.name, self.detail, shape]
        else:
            lines = [self.name, shape]
        norm = self.grad_norm
        if norm is not None:
            lines.append(f"|grad| {norm:.4g}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _ModuleGroup:
    """A sub-module of the recorded module: its class and the graph's leaves it holds."""

    path: str
    type_name: str
    leaves: frozenset[int]

    @property
    def parent(self) -> str:
        return self.path.rpartition(".")[0]


@dataclass
class Graph:
    """The recorded graph: nodes, edges (``(input id, op id)``, one per input slot) and the
    output's id. ``nodes`` come in topological order: every node after its inputs."""

    nodes: list[GraphNode]
    edges: list[tuple[int, int]]
    output: int
    modules: dict[str, _ModuleGroup] = field(default_factory=dict, repr=False)

    @property
    def ops(self) -> list[GraphNode]:
        """The op nodes, inputs before consumers."""
        return [n for n in self.nodes if n.kind == "op"]

    @property
    def leaves(self) -> list[GraphNode]:
        """The leaf nodes."""
        return [n for n in self.nodes if n.kind == "leaf"]

    @property
    def boxes(self) -> list[GraphNode]:
        """The collapsed modules (empty unless this is a :meth:`collapsed` graph)."""
        return [n for n in self.nodes if n.kind == "module"]

    def node(self, node_id: int) -> GraphNode:
        """The node numbered ``node_id``."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    # -- collapsing ----------------------------------------------------------------------
    def repeated_modules(self) -> list[str]:
        """The outermost repeated blocks: sub-modules of one parent and one class, at least
        two of them, that hold leaves of this graph (``blocks.0``, ``blocks.1``, ...). When
        the module repeats nothing, its direct children that hold leaves."""
        siblings: dict[tuple[str, str], list[str]] = defaultdict(list)
        for group in self.modules.values():
            siblings[(group.parent, group.type_name)].append(group.path)
        repeated = [path for paths in siblings.values() if len(paths) > 1 for path in paths]
        if not repeated:
            repeated = [path for path, group in self.modules.items() if group.parent == ""]
        return _outermost(repeated)

    def collapsed(self, modules: Iterable[str] | None = None) -> "Graph":
        """This graph with each of ``modules`` (paths in the recorded module; default: the
        :meth:`repeated_modules`) drawn as one box.

        A box holds the module's parameters and buffers, and every op between the first and
        the last op that reads them (the ops that depend on one such op and lead to another);
        one-element constants only those ops read go in too. Edges into and out of the box
        become edges of the box (one per pair of nodes). Modules inside another listed one
        are part of the outer box.

        Raises:
            DrawGraphError: the graph was recorded without a module, or a path names no
                sub-module with leaves in the graph.
        """
        if not self.modules:
            raise DrawGraphError("collapsing needs the module: record the graph with module=your_model")
        paths = self.repeated_modules() if modules is None else [str(m) for m in modules]
        unknown = [p for p in paths if p not in self.modules]
        if unknown:
            raise DrawGraphError(
                f"cannot collapse {', '.join(map(repr, unknown))}: no sub-module of that path holds tensors "
                f"of this graph (these do: {', '.join(sorted(self.modules)) or 'none'})"
            )
        paths = _outermost(paths)
        consumers: dict[int, list[int]] = defaultdict(list)
        inputs: dict[int, list[int]] = defaultdict(list)
        for src, dst in self.edges:
            consumers[src].append(dst)
            inputs[dst].append(src)
        owner: dict[int, str] = {}
        for path in paths:
            for node_id in self._members(self.modules[path].leaves, consumers, inputs):
                owner.setdefault(node_id, path)
        return self._merge(paths, owner)

    def _members(self, leaves: frozenset[int], consumers, inputs) -> set[int]:
        """The module's leaves, the ops between its first and last reading op, and the
        one-element constants only those ops read."""
        readers = {op for leaf in leaves for op in consumers[leaf]}
        if not readers:
            return set()
        inside = _reachable(readers, consumers) & _reachable(readers, inputs)
        members = set(leaves) | inside
        by_id = {n.id: n for n in self.nodes}
        for op in inside:
            for src in inputs[op]:
                node = by_id[src]
                if (node.kind == "leaf" and not node.requires_grad and int(np.prod(node.shape)) == 1
                        and all(c in inside for c in consumers[src])):
                    members.add(src)
        return members

    def _merge(self, paths: list[str], owner: dict[int, str]) -> "Graph":
        """The graph with the nodes of each box in ``owner`` replaced by one module node."""
        next_id = max(n.id for n in self.nodes) + 1
        box_ids = {path: next_id + i for i, path in enumerate(paths)}
        rep = {n.id: box_ids[owner[n.id]] if n.id in owner else n.id for n in self.nodes}
        edges = list(dict.fromkeys((rep[s], rep[d]) for s, d in self.edges if rep[s] != rep[d]))
        leaving = {s for s, d in self.edges if rep[s] != rep[d]} | {self.output}
        members: dict[str, list[GraphNode]] = defaultdict(list)
        for node in self.nodes:
            if node.id in owner:
                members[owner[node.id]].append(node)
        kin = defaultdict(list)
        for path in paths:
            kin[(self.modules[path].parent, self.modules[path].type_name)].append(path)
        nodes: list[GraphNode] = []
        for node in self.nodes:
            if node.id not in owner:
                nodes.append(node)
            elif node is members[owner[node.id]][0]:  # the box goes where its first member was
                path = owner[node.id]
                nodes.append(self._box(path, box_ids[path], members[path], leaving, kin))
        return Graph(_topological(nodes, edges), edges, rep[self.output])

    def _box(self, path: str, box_id: int, members: list[GraphNode], leaving: set[int], kin) -> GraphNode:
        """The module node of ``path``, standing for ``members`` (in topological order)."""
        group = self.modules[path]
        ops = [n for n in members if n.kind == "op"]
        outputs = [n for n in ops if n.id in leaving]
        last = (outputs or ops or members)[-1]
        same = kin[(group.parent, group.type_name)]
        which = f" ({same.index(path) + 1} of {len(same)})" if len(same) > 1 else ""
        tensors = tuple(n.tensors[0] for n in members if n.kind == "leaf" and n.id in group.leaves)
        detail = f"{group.type_name}{which}: {len(ops)} ops, {len(tensors)} tensors"
        return GraphNode(box_id, "module", path, last.shape, last.dtype, detail=detail, ops=len(ops),
                         requires_grad=any(t.requires_grad for t in tensors), tensors=tensors)

    # -- output --------------------------------------------------------------------------
    def to_dot(self) -> str:
        """The graph in Graphviz's DOT language (node ``id`` attributes as in the drawings)."""
        lines = [
            "digraph autograd {",
            '  graph [rankdir=TB, nodesep=0.25, ranksep=0.35];',
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=9];',
            '  edge [color="#555555", arrowsize=0.6];',
        ]
        for node in self.nodes:
            face, edge, width = _colours(node, node.id == self.output)
            label = node.label().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'  n{node.id} [id="{_svg_id(node)}", label="{label}", fillcolor="{face}", '
                         f'color="{edge}", penwidth={width}];')
        lines += [f"  n{src} -> n{dst};" for src, dst in dict.fromkeys(self.edges)]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without those inside another of them (``a.b`` is inside ``a``), in order."""
    chosen = list(dict.fromkeys(paths))
    return [p for p in chosen if not any(p.startswith(q + ".") for q in chosen if q != p)]


def _topological(nodes: list[GraphNode], edges: list[tuple[int, int]]) -> list[GraphNode]:
    """``nodes`` reordered so that every node comes after its inputs, otherwise as they were.

    Raises:
        DrawGraphError: the edges make a cycle (collapsed modules that feed each other).
    """
    position = {n.id: i for i, n in enumerate(nodes)}
    waiting = dict.fromkeys(position, 0)
    consumers: dict[int, list[int]] = defaultdict(list)
    for src, dst in edges:
        waiting[dst] += 1
        consumers[src].append(dst)
    ready = [(position[i], i) for i, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(nodes[position[node_id]])
        for nxt in consumers[node_id]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (position[nxt], nxt))
    if len(order) < len(nodes):
        raise DrawGraphError("these modules feed each other, so their boxes would make a cycle: collapse fewer")
    return order


def _reachable(start: set[int], links: dict[int, list[int]]) -> set[int]:
    """``start`` and every node reachable from it along ``links``."""
    seen, stack = set(start), list(start)
    while stack:
        for nxt in links[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


# ----------------------------------------------------------------------------------------
# Recording
# ----------------------------------------------------------------------------------------


def _tensor_names(module: Module | None) -> dict[int, str]:
    """``id(tensor) -> path`` for the module's parameters and buffers."""
    if module is None:
        return {}
    named = list(module.named_parameters()) + list(module.named_buffers())
    return {id(t): name for name, t in named}


def _leaf_name(tensor: Tensor, names: dict[int, str]) -> str:
    if id(tensor) in names:
        return names[id(tensor)]
    if isinstance(tensor, Parameter):
        return "parameter"
    if tensor.requires_grad:
        return "leaf"
    if tensor.data.size == 1 and tensor.data.dtype.kind in "biuf":
        return f"{tensor.data.item():.4g}"
    return "input"


def _value_text(value) -> str:
    """An attribute's value, short: arrays by dtype and shape, slices as ``a:b``."""
    if isinstance(value, np.ndarray):
        return f"<{value.dtype} {value.shape}>"
    if isinstance(value, slice):
        return ":".join("" if v is None else str(v) for v in (value.start, value.stop)) + (
            f":{value.step}" if value.step is not None else "")
    if isinstance(value, tuple):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return repr(value) if isinstance(value, str) else str(value)


def _attrs_text(attrs: dict, limit: int = 30) -> str:
    """``"axis=1 keepdims=True"``: the attributes that are set (not None or False), cut at ``limit``."""
    text = " ".join(f"{k}={_value_text(v)}" for k, v in attrs.items() if v is not None and v is not False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _module_groups(module: Module | None, leaf_of: dict[int, int]) -> dict[str, _ModuleGroup]:
    """Every sub-module (not the module itself) that holds leaves of the graph."""
    if module is None:
        return {}
    groups = {}
    for path, sub in module.named_modules():
        if not path:
            continue
        held = [t for _, t in list(sub.named_parameters()) + list(sub.named_buffers())]
        leaves = frozenset(leaf_of[id(t)] for t in held if id(t) in leaf_of)
        if leaves:
            groups[path] = _ModuleGroup(path, type(sub).__name__, leaves)
    return groups


def record_graph(tensor: Tensor, module: Module | None = None) -> Graph:
    """The graph tt-core recorded on the way to ``tensor``, as data.

    Args:
        tensor: the output (a loss, or any tensor an op made).
        module: the model whose parameters and buffers are leaves of the graph, to name them
            by their path (``"layers.0.weight"``) and to allow collapsing its blocks.

    Returns:
        The :class:`Graph`: an op node per recorded op, a leaf node per tensor the ops read
        that no op made, an edge per op input.

    Raises:
        TinyTorchError: ``tensor`` is not a Tensor, or ``module`` is not a Module.
        GraphFreedError: ``backward()`` already freed the graph (record it before, or pass
            ``retain_graph=True`` to ``backward``).
    """
    if not isinstance(tensor, Tensor):
        raise TinyTorchError(f"record_graph(tensor): expected a Tensor, got {type(tensor).__name__}")
    if module is not None and not isinstance(module, Module):
        raise TinyTorchError(f"record_graph(module=...): expected a Module (your model), got {type(module).__name__}")
    names = _tensor_names(module)
    index: dict[int, int] = {}  # id(tensor) -> node id
    nodes: list[GraphNode] = []
    edges: list[tuple[int, int]] = []

    def add_leaf(leaf: Tensor) -> int:
        if id(leaf) not in index:
            index[id(leaf)] = len(nodes)
            nodes.append(GraphNode(len(nodes), "leaf", _leaf_name(leaf, names), tuple(leaf.shape),
                                   str(leaf.dtype), requires_grad=leaf.requires_grad, tensors=(leaf,)))
        return index[id(leaf)]

    if tensor._node is None:
        return Graph(nodes, edges, add_leaf(tensor))
    for out in _topological_order(tensor):
        node = out._node
        if node.ctx is None:
            raise GraphFreedError(
                f"the graph through op {node.op.name!r} was freed by backward(): record or draw it before "
                "backward() (draw_graph(loss, None) records it; draw the result after), or call "
                "backward(retain_graph=True)"
            )
        sources = [index[id(p)] if p._node is not None else add_leaf(p) for p in node.parents]
        op_id = index[id(out)] = len(nodes)
        attrs = vars(node.ctx).get("attrs") or {}
        nodes.append(GraphNode(op_id, "op", node.op.name, tuple(out.shape), str(out.dtype),
                               kernel_dist=node.op.kernel_dist, rule_dist=node.op.rule_dist,
                               attrs=_attrs_text(attrs)))
        edges.extend((src, op_id) for src in sources)
    leaf_of = {id(n.tensors[0]): n.id for n in nodes if n.kind == "leaf"}
    return Graph(nodes, edges, index[id(tensor)], _module_groups(module, leaf_of))


# ----------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------

_FACE = {"op": "#dbe9f6", "yours": "#fdd9b5", "parameter": "#d9f0d3", "leaf": "#eeeeee", "module": "#e6dcf5"}


def _colours(node: GraphNode, is_output: bool) -> tuple[str, str, float]:
    """Face colour, edge colour and edge width of a node's box."""
    if node.kind == "op":
        face = _FACE["op"] if node.is_builtin else _FACE["yours"]
    elif node.kind == "module":
        face = _FACE["module"]
    else:
        face = _FACE["parameter"] if node.requires_grad else _FACE["leaf"]
    return face, ("#000000" if is_output else "#666666"), (1.8 if is_output else 0.7)


def _svg_id(node: GraphNode) -> str:
    """The id of a node's group in an SVG drawing: ``node3-op``, ``node0-leaf``, ``node9-module``."""
    return f"node{node.id}-{node.kind}"


def _depths(graph: Graph) -> dict[int, int]:
    """Each node's layer, counted from the top: as low as its consumers allow (one above the
    first of them), so that a weight and the ops that only prepare it sit next to their use;
    the output is as deep as the longest chain of ops."""
    consumers: dict[int, list[int]] = defaultdict(list)
    longest: dict[int, int] = {}
    for src, dst in graph.edges:
        consumers[src].append(dst)
    for node in graph.nodes:  # topological order: the longest chain from a leaf to each node
        longest.setdefault(node.id, 0)
        for dst in consumers[node.id]:
            longest[dst] = max(longest.get(dst, 0), longest[node.id] + 1)
    depth: dict[int, int] = {}
    for node in reversed(graph.nodes):
        below = [depth[c] for c in consumers[node.id]]
        depth[node.id] = min(below) - 1 if below else longest[node.id]
    low = min(depth.values())
    return {k: v - low for k, v in depth.items()}


def _order_layers(graph: Graph, depth: dict[int, int], sweeps: int = 4) -> list[list[int]]:
    """The nodes of each layer, left to right, ordered to shorten edges (barycentre sweeps)."""
    layers: list[list[int]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in graph.nodes:
        layers[depth[node.id]].append(node.id)
    neighbours: dict[int, list[int]] = defaultdict(list)
    for src, dst in graph.edges:
        neighbours[src].append(dst)
        neighbours[dst].append(src)

    def place() -> dict[int, float]:
        return {n: i - (len(layer) - 1) / 2 for layer in layers for i, n in enumerate(layer)}

    for sweep in range(sweeps):
        x = place()
        order = layers if sweep % 2 == 0 else layers[::-1]
        for layer in order:
            def centre(n: int) -> float:
                near = [x[m] for m in neighbours[n]]
                return sum(near) / len(near) if near else x[n]

            layer.sort(key=centre)
            x.update({n: i - (len(layer) - 1) / 2 for i, n in enumerate(layer)})
    return layers


def _draw_matplotlib(graph: Graph, path: Path) -> None:
    """Lay ``graph`` out in layers by depth and save it with matplotlib."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise DrawGraphError(
            "draw_graph needs matplotlib (or Graphviz's dot on PATH) to draw: pip install 'tt-learn[plot]'"
        ) from None
    depth = _depths(graph)
    layers = _order_layers(graph, depth)
    by_id = {n.id: n for n in graph.nodes}
    labels = {n.id: n.label() for n in graph.nodes}
    font, layer_in = 7.0, 1.0  # font size in points, inches per layer
    widest = max(len(line) for text in labels.values() for line in text.split("\n"))
    slot_in = max(2.1, widest * 0.6 * font / 72 + 0.35)  # inches per node: the widest label fits
    width = max(max(len(layer) for layer in layers) * slot_in + 0.4, 6.0)
    height = (len(layers) + 1.5) * layer_in
    x = {n: i - (len(layer) - 1) / 2 for layer in layers for i, n in enumerate(layer)}
    y = {n: -float(depth[n]) for n in x}
    half_span = width / slot_in / 2
    y_top, y_bottom = 1.3, -(len(layers) - 1) - 0.6
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-half_span, half_span)
    ax.set_ylim(y_bottom, y_top)
    ax.axis("off")
    per_point = (y_top - y_bottom) / (height * 72)  # data units of y per typographic point

    def half_height(n: int) -> float:
        return (labels[n].count("\n") + 1) * font * 1.2 / 2 * per_point + 0.3 * font * per_point

    for src, dst in dict.fromkeys(graph.edges):
        ax.annotate("", xy=(x[dst], y[dst] + half_height(dst)), xytext=(x[src], y[src] - half_height(src)),
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.7, shrinkA=0, shrinkB=0,
                                    mutation_scale=8), zorder=1)
    for n in x:
        face, edge, lw = _colours(by_id[n], n == graph.output)
        ax.text(x[n], y[n], labels[n], ha="center", va="center", fontsize=font, family="monospace", zorder=3,
                gid=_svg_id(by_id[n]), bbox=dict(boxstyle="round,pad=0.3", fc=face, ec=edge, lw=lw))
    summary = f"autograd graph: {len(graph.ops)} ops, {len(graph.leaves)} leaves" + (
        f", {len(graph.boxes)} collapsed modules ({sum(b.ops for b in graph.boxes)} ops)" if graph.boxes else "")
    ax.text(0.1 / width, 1 - 0.1 / height, summary, ha="left", va="top", fontsize=font + 1, transform=ax.transAxes)
    kinds = [("op (TinyTorch)", _FACE["op"]), ("op (your code)", _FACE["yours"]),
             ("leaf with gradient", _FACE["parameter"]), ("other leaf", _FACE["leaf"])]
    if graph.boxes:
        kinds.append(("module (collapsed)", _FACE["module"]))
    ax.legend(handles=[Patch(fc=c, ec="#666666", label=t) for t, c in kinds], loc="upper left", fontsize=font,
              bbox_to_anchor=(0, 1 - 0.3 / height), ncol=max(1, min(len(kinds), int(width / 1.7))), frameon=False)
    pixels = 20000  # PNGs stay below this size in either direction
    dpi = min(110.0, pixels / max(width, height))
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        fig.savefig(path, dpi=dpi, format=path.suffix[1:])


def _draw_dot(graph: Graph, path: Path, dot: str) -> None:
    result = subprocess.run([dot, f"-T{path.suffix[1:]}", "-o", str(path)], input=graph.to_dot(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise DrawGraphError(f"Graphviz's dot failed on the graph: {result.stderr.strip()}")


def draw_graph(tensor, path=None, module: Module | None = None, collapse="auto", layout: str = "auto") -> Graph:
    """Draw the autograd graph that leads to ``tensor`` into ``path`` (PNG or SVG).

    Args:
        tensor: the output whose graph to draw (usually the loss), or a :class:`Graph`
            recorded earlier (``draw_graph(loss, None)``), e.g. before ``backward()`` freed it.
        path: the file, ``.png`` or ``.svg`` (its folder is created). ``None``: draw nothing,
            only record the graph.
        module: the model, to name its parameters by their path and to collapse its blocks
            (only with a tensor: a recorded graph keeps the module it was recorded with).
        collapse: ``"auto"``: the repeated blocks of the module become one box each when the
            graph has more than :data:`AUTO_COLLAPSE_OPS` ops; ``True``: always; ``False`` or
            ``None``: never; or the paths of the sub-modules to collapse.
        layout: ``"auto"`` (Graphviz's ``dot`` when it is on ``PATH``, else matplotlib),
            ``"dot"`` or ``"matplotlib"``.

    Returns:
        The graph as drawn (collapsed when it was); with ``path=None`` the recorded graph.

    Raises:
        DrawGraphError: a file type other than PNG or SVG, an unknown ``layout``, ``"dot"``
            that is not installed, matplotlib missing, or a module to collapse that is not
            in the graph.
        GraphFreedError: ``backward()`` already freed the graph of ``tensor``.
    """
    if isinstance(tensor, Graph):
        if module is not None:
            raise DrawGraphError("draw_graph(graph, module=...): a recorded graph keeps its module; record it "
                                 "with draw_graph(tensor, None, module=model)")
        graph = tensor
    else:
        graph = record_graph(tensor, module)
    if path is None:
        return graph
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DrawGraphError(f"draw_graph writes .png or .svg files, not {path.name!r}")
    if layout not in LAYOUTS:
        raise DrawGraphError(f"draw_graph(layout=...) must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    dot = shutil.which("dot") if layout != "matplotlib" else None
    if layout == "dot" and dot is None:
        raise DrawGraphError("layout='dot' needs Graphviz's dot on PATH (e.g. apt install graphviz); "
                             "layout='matplotlib' needs nothing else")
    if collapse is True or (not isinstance(collapse, (str, bool)) and collapse is not None):
        graph = graph.collapsed(None if collapse is True else collapse)
    elif collapse == "auto":
        if graph.modules and len(graph.ops) > AUTO_COLLAPSE_OPS:
            graph = graph.collapsed()
    elif collapse not in (False, None):
        raise DrawGraphError(f"draw_graph(collapse=...) must be 'auto', True, False or module paths, got {collapse!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if dot is not None:
        _draw_dot(graph, path, dot)
    else:
        _draw_matplotlib(graph, path)
    return graph

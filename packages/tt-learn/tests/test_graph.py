"""draw_graph: the recorded ops, leaves and edges, drawn as PNG and SVG, collapsed when large."""

import doctest
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest
import tt_core as tt
from tt_core import Linear, Sequential, Tanh, dispatch
from tt_core.errors import TinyTorchError
from tt_learn import DrawGraphError, GraphFreedError, MSELoss, draw_graph, graph, record_graph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def drawn_ids(svg_path) -> Counter:
    """How many boxes of each kind (op, leaf, module) an SVG drawing holds."""
    root = ET.parse(svg_path).getroot()
    assert root.tag.endswith("svg")
    kinds = Counter()
    for element in root.iter():
        match = re.fullmatch(r"node\d+-(op|leaf|module)", element.get("id", ""))
        if match:
            kinds[match.group(1)] += 1
    return kinds


def _mlp():
    tt.manual_seed(0)
    model = Sequential(Linear(2, 8), Tanh(), Linear(8, 1))
    x = tt.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = tt.tensor([[1.0], [1.0], [0.0]])
    return model, x, y


class _Recorder:
    """An op-table wrapper that keeps the context of every op call, to count what was recorded."""

    def __init__(self):
        self.calls = []

    def __call__(self, op):
        def forward(ctx, *arrays, **attrs):
            self.calls.append((op.name, ctx))
            return op.forward(ctx, *arrays, **attrs)

        return dispatch.BoundOp.make(op.name, forward, op.backward, op.saves, op.kernel_dist, op.rule_dist)

    def recorded(self):
        """``(name, number of inputs)`` of every call that apply recorded (it set ``ctx.needs``)."""
        return [(name, len(ctx.inputs)) for name, ctx in self.calls if "needs" in vars(ctx)]


# -- the graph as data --------------------------------------------------------------------


def test_a_small_expression_has_its_ops_leaves_and_edges(tmp_path):
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tt.tensor([4.0, 5.0, 6.0], requires_grad=True)
    z = (x * y + x * 2.0).sum()
    g = draw_graph(z, tmp_path / "small.svg", layout="matplotlib")

    assert Counter(n.name for n in g.ops) == Counter({"mul": 2, "add": 1, "sum": 1})
    assert sorted(n.name for n in g.leaves) == ["2", "leaf", "leaf"]  # x, y and the constant of x * 2
    assert len(g.edges) == 7  # two per mul and add, one for sum
    assert g.node(g.output).name == "sum" and g.node(g.output).shape == ()
    for op in g.ops:
        assert (op.kernel_dist, op.rule_dist) == ("tt-core", "tt-learn")
    constant = next(n for n in g.leaves if n.name == "2")
    assert constant.shape == () and not constant.requires_grad
    assert drawn_ids(tmp_path / "small.svg") == Counter({"op": 4, "leaf": 3})


def test_an_mlp_step_draws_exactly_the_recorded_ops_and_leaves(tmp_path):
    model, x, y = _mlp()
    recorder = _Recorder()
    previous = dispatch.set_wrapper(recorder)
    try:
        loss = MSELoss()(model(x), y)
    finally:
        dispatch.set_wrapper(previous)
    recorded = recorder.recorded()

    g = draw_graph(loss, None, module=model)  # recorded, not drawn
    assert Counter(n.name for n in g.ops) == Counter(name for name, _ in recorded)
    assert len(g.edges) == sum(inputs for _, inputs in recorded)
    names = {n.name for n in g.leaves}
    assert names == {"0.weight", "0.bias", "2.weight", "2.bias", "input"}
    assert len(g.leaves) == 6  # the four parameters, x and y
    assert all(n.grad_norm is None for n in g.leaves)

    loss.backward()
    drawn = draw_graph(g, tmp_path / "mlp.svg", layout="matplotlib")
    assert drawn is g
    params = dict(model.named_parameters())
    for leaf in g.leaves:
        if leaf.name in params:
            assert leaf.grad_norm == pytest.approx(float(np.linalg.norm(params[leaf.name].grad.data)), rel=1e-6)
    assert drawn_ids(tmp_path / "mlp.svg") == Counter({"op": len(recorded), "leaf": 6})
    text = (tmp_path / "mlp.svg").read_text()
    assert all(name in text for name in params) and text.count("|grad|") == 4


def test_the_png_is_a_png(tmp_path):
    model, x, y = _mlp()
    draw_graph(MSELoss()(model(x), y), tmp_path / "step.png", module=model, layout="matplotlib")
    assert (tmp_path / "step.png").read_bytes()[:8] == PNG_MAGIC


def test_a_graph_freed_by_backward_is_an_error_and_recording_first_keeps_it(tmp_path):
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    recorded = record_graph(loss, model)
    loss.backward()
    with pytest.raises(GraphFreedError, match="freed by backward"):
        draw_graph(loss, tmp_path / "late.png")
    draw_graph(recorded, tmp_path / "after.png", layout="matplotlib")
    assert all(leaf.grad_norm > 0 for leaf in recorded.leaves if leaf.requires_grad)


def test_a_leaf_alone_is_a_graph_of_one_leaf():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    g = record_graph(x)
    assert [(n.kind, n.name, n.shape) for n in g.nodes] == [("leaf", "leaf", (2,))] and g.edges == []


def test_labels_name_the_providers_and_flag_code_that_is_not_builtin():
    ours = graph.GraphNode(0, "op", "relu", (2,), "float32", kernel_dist="tt-core", rule_dist="tt-learn")
    yours = graph.GraphNode(1, "op", "relu", (2,), "float32", kernel_dist="my-tinytorch", rule_dist="my-tinytorch")
    assert ours.is_builtin and not yours.is_builtin
    assert "kernel tt-core, rule tt-learn" in ours.label()
    assert "kernel and rule my-tinytorch" in yours.label()
    assert graph._colours(yours, False)[0] != graph._colours(ours, False)[0]


# -- collapsing ----------------------------------------------------------------------------


def test_repeated_modules_collapse_to_one_box_each_with_their_op_count(tmp_path):
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    g = record_graph(loss, model)
    loss.backward()
    assert g.repeated_modules() == ["0", "2"]  # two Linear siblings; Tanh holds no tensor

    collapsed = draw_graph(g, tmp_path / "collapsed.svg", collapse=True, layout="matplotlib")
    boxes = {box.name: box for box in collapsed.boxes}
    assert set(boxes) == {"0", "2"}
    assert all(box.ops == 3 for box in boxes.values())  # transpose, matmul, add
    assert "Linear (1 of 2)" in boxes["0"].detail
    assert len(collapsed.ops) == len(g.ops) - 6
    assert sorted(n.name for n in collapsed.leaves) == ["input", "input"]
    weight, bias = model[0].weight.grad.data, model[0].bias.grad.data
    assert boxes["0"].grad_norm == pytest.approx(float(np.sqrt((weight ** 2).sum() + (bias ** 2).sum())), rel=1e-6)
    # the boxes stand in for their ops: x -> box 0 -> tanh -> box 2 -> sub
    tanh = next(n.id for n in collapsed.ops if n.name == "tanh")
    assert (boxes["0"].id, tanh) in collapsed.edges and (tanh, boxes["2"].id) in collapsed.edges
    assert drawn_ids(tmp_path / "collapsed.svg") == Counter({"op": len(collapsed.ops), "leaf": 2, "module": 2})


def test_auto_collapses_only_large_graphs(tmp_path, monkeypatch):
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    assert not draw_graph(loss, tmp_path / "small.png", module=model, layout="matplotlib").boxes
    monkeypatch.setattr(graph, "AUTO_COLLAPSE_OPS", 5)
    assert len(draw_graph(loss, tmp_path / "large.png", module=model, layout="matplotlib").boxes) == 2
    assert not draw_graph(loss, tmp_path / "kept.png", module=model, collapse=False, layout="matplotlib").boxes
    assert not draw_graph(loss, tmp_path / "no_module.png", layout="matplotlib").boxes  # nothing to collapse by


def test_collapsing_names_what_it_cannot_collapse():
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    with pytest.raises(DrawGraphError, match="needs the module"):
        record_graph(loss).collapsed()
    with pytest.raises(DrawGraphError, match=r"'1'.*these do: 0, 2"):
        record_graph(loss, model).collapsed(["1"])  # Tanh holds no tensor


# -- files and layouts ------------------------------------------------------------------


def test_bad_requests_are_clear_errors(tmp_path, monkeypatch):
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    with pytest.raises(DrawGraphError, match=r"\.png or \.svg"):
        draw_graph(loss, tmp_path / "graph.pdf")
    with pytest.raises(DrawGraphError, match="layout"):
        draw_graph(loss, tmp_path / "graph.png", layout="neato")
    with pytest.raises(DrawGraphError, match="collapse"):
        draw_graph(loss, tmp_path / "graph.png", collapse="blocks")
    with pytest.raises(DrawGraphError, match="keeps its module"):
        draw_graph(record_graph(loss), tmp_path / "graph.png", module=model)
    with pytest.raises(TinyTorchError, match="expected a Tensor"):
        draw_graph(np.ones(2), tmp_path / "graph.png")
    with pytest.raises(TinyTorchError, match="expected a Module"):
        record_graph(loss, module="model")
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(DrawGraphError, match="Graphviz"):
        draw_graph(loss, tmp_path / "graph.png", layout="dot")


def test_without_matplotlib_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    x = tt.tensor([1.0], requires_grad=True)
    with pytest.raises(DrawGraphError, match=r"tt-learn\[plot\]"):
        draw_graph(x * 2.0, tmp_path / "graph.png", layout="matplotlib")


def test_dot_on_path_gets_the_graph_in_dot_language(tmp_path, monkeypatch):
    """A stand-in ``dot`` that copies its input to its -o file shows what Graphviz would be given."""
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[sys.argv.index('-o') + 1], 'w')"
                    ".write(sys.argv[1] + '\\n' + sys.stdin.read())\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    g = draw_graph((x * x).sum(), tmp_path / "graph.svg")
    flag, source = (tmp_path / "graph.svg").read_text().split("\n", 1)
    assert flag == "-Tsvg" and source == g.to_dot()
    assert source.startswith("digraph autograd {")
    assert len(re.findall(r'^  n\d+ \[id="node\d+-op"', source, flags=re.M)) == 2
    assert len(re.findall(r"^  n\d+ -> n\d+;$", source, flags=re.M)) == 2  # x -> mul (twice, drawn once), mul -> sum


@pytest.mark.skipif(graph.shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graphviz_draws_valid_files(tmp_path):
    model, x, y = _mlp()
    loss = MSELoss()(model(x), y)
    g = draw_graph(loss, tmp_path / "graph.svg", module=model, layout="dot")
    assert drawn_ids(tmp_path / "graph.svg") == Counter({"op": len(g.ops), "leaf": len(g.leaves)})
    draw_graph(loss, tmp_path / "graph.png", module=model, layout="dot")
    assert (tmp_path / "graph.png").read_bytes()[:8] == PNG_MAGIC


def test_registered_and_documented():
    registry = tt.get_registry()
    assert registry.get("function", "draw_graph") is draw_graph
    result = doctest.testmod(graph)
    assert result.attempted > 0 and result.failed == 0

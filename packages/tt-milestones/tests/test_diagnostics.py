"""``run ID --graph`` and ``run ID --detect-anomaly``: through the registry, on any milestone."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import tt_core
from tt_core import dispatch
from tt_milestones.cli import main
from tt_milestones.diagnostics import HOOK_DIST

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A learner's package: its own gradient rule for relu, a milestone that trains one step through
# it, and one that makes a NaN.
MINE = """
import tt_core
from tt_core import GradRule, hookimpl


def relu_grad(ctx, grad):
    return (grad * (ctx.out > 0),)


def one_step(ctx):
    layer = ctx.component("layer", "Linear")(2, 3)
    loss = layer(tt_core.tensor([[1.0, -2.0]])).relu().sum()
    loss.backward()
    loss = layer(tt_core.tensor([[3.0, 1.0]])).relu().sum()
    loss.backward()
    ctx.check("steps", 2.0, ">=", 2.0)


def nan(ctx):
    x = tt_core.tensor([1.0, -1.0])
    y = x.log()  # the NaN
    ctx.check("finite", float(y.numpy()[1] == y.numpy()[1]), ">=", 1.0)


@hookimpl
def tt_register_components(registry):
    registry.register("grad_rule", "relu", GradRule(relu_grad))


@hookimpl
def tt_register_milestones(registry):
    from tt_milestones.api import MilestoneSpec, Requirement
    requires = (Requirement("layer", "Linear", "tt-core"),)
    registry.register(MilestoneSpec("g1", "step", 2024, "One step", "One. Two.", requires, "two steps",
                                    f"{__name__}:one_step"))
    registry.register(MilestoneSpec("g2", "nan", 2024, "A NaN", "One. Two.", (), "a finite log", f"{__name__}:nan"))
"""


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def drawn_boxes(svg: Path) -> Counter:
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    return Counter(m.group(1) for e in root.iter() if (m := re.fullmatch(r"node\d+-(op|leaf|module)", e.get("id", ""))))


def assert_engine_restored() -> None:
    registry = tt_core.get_registry()
    assert registry.chosen("autograd", "engine").dist == "tt-learn"
    assert HOOK_DIST not in registry.dists() and ("autograd", "engine") not in registry.choices


def test_run_02_graph_draws_the_first_training_step(tmp_path, capsys):
    pytest.importorskip("tt_learn")
    assert main(["run", "02", "--quick", "--graph", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "graph.png").read_bytes()[:8] == PNG_MAGIC
    report = report_of(tmp_path)
    assert {"graph.png", "graph.svg"} <= set(report["plots"])
    assert report["options"] == {"graph": True}
    figures = report["metrics"]["graph_of_first_step"]
    # the first step trains the single layer: its weight and bias, the inputs and the targets
    assert drawn_boxes(tmp_path / "graph.svg") == Counter({"op": figures["ops"], "leaf": figures["leaves"]})
    svg = (tmp_path / "graph.svg").read_text()
    assert ">weight<" in svg and ">bias<" in svg and svg.count("|grad|") == 2  # named from the model
    assert "graph of the first backward()" in capsys.readouterr().out
    assert_engine_restored()


def test_run_02_detect_anomaly_runs_the_milestone_checked(tmp_path):
    pytest.importorskip("tt_learn")
    assert main(["run", "02", "--quick", "--detect-anomaly", "--out", str(tmp_path)]) == 0
    assert report_of(tmp_path)["options"] == {"detect_anomaly": True}
    assert dispatch.get_wrapper() is None  # the plain ops are back


def test_a_learners_rule_shows_in_the_graph_of_the_first_step_only(fake_plugin, tmp_path):
    pytest.importorskip("tt_learn")
    fake_plugin("my-tinytorch", "my_tinytorch_diag", MINE)
    out = tmp_path / "out"
    assert main(["run", "g1", "--use", "my-tinytorch", "--graph", "--out", str(out)]) == 0
    svg = (out / "graph.svg").read_text()
    assert "relu" in svg and "kernel tt-core, rule my-tinytorch" in svg
    assert report_of(out)["metrics"]["graph_of_first_step"]["ops"] == drawn_boxes(out / "graph.svg")["op"]
    assert report_of(out)["plots"] == ["graph.png", "graph.svg"]  # drawn once, for the first backward()
    assert_engine_restored()


def test_detect_anomaly_stops_a_milestone_at_the_line_that_made_the_nan(fake_plugin, tmp_path, capsys):
    pytest.importorskip("tt_learn")
    fake_plugin("my-tinytorch", "my_tinytorch_diag", MINE)
    line = next(i for i, text in enumerate(MINE.splitlines(), 1) if "# the NaN" in text)
    assert main(["run", "g2", "--detect-anomaly", "--out", str(tmp_path / "out")]) != 0
    error = capsys.readouterr().err
    assert "op 'log' made NaN (1 of 2 values) in forward, kernel from tt-core" in error
    assert f"my_tinytorch_diag.py:{line} in nan: y = x.log()" in error
    assert dispatch.get_wrapper() is None


@pytest.mark.parametrize("flag", ["--graph", "--detect-anomaly"])
def test_without_tt_learn_the_flags_are_usage_errors(only_core, capsys, tmp_path, flag):
    assert main(["run", "01", "--quick", flag, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"{flag} needs tt-learn" in error and "pip install tt-learn" in error
    assert not (tmp_path / "out").exists()  # nothing ran

"""The package through tt-milestones, as a learner uses it: ``check`` grades it, and milestones
01, 02 and 03 reach their targets with ``--use`` and name it in ``report.json``'s providers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tt_milestones", reason="the command-line tests need tt-milestones")

DIST = "tt-learner-example"


def cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    """``tt-milestones ARGS`` in a fresh process (the plugins load as installed), with the
    results of ``check`` kept under ``tmp_path``."""
    env = {**os.environ, "TT_STATE_DIR": str(tmp_path / "state"), "MPLBACKEND": "Agg"}
    env.pop("TT_PROVIDERS", None)
    return subprocess.run([sys.executable, "-m", "tt_milestones", *args], check=False, capture_output=True,
                          text=True, env=env, timeout=900)


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"


def test_check_passes_every_component(tmp_path):
    result = cli("check", DIST, tmp_path=tmp_path)
    assert result.returncode == 0, explain(result)
    assert "8 passed" in result.stdout, explain(result)

    result = cli("check", DIST, "--json", tmp_path=tmp_path)
    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout)
    graded = {(g["kind"], g["name"]): g for g in report["grades"]}
    assert set(graded) == {
        ("layer", "Linear"), ("activation", "ReLU"), ("activation", "Sigmoid"), ("grad_rule", "relu"),
        ("grad_rule", "sigmoid"), ("grad_rule", "matmul"), ("loss", "BCEWithLogitsLoss"), ("optimizer", "SGD"),
    }
    for key, grade in graded.items():
        assert grade["dist"] == DIST
        assert grade["status"] == "passed", (key, [c for c in grade["cases"] if c["status"] != "passed"])
        assert grade["reference"] in {"tt-core", "tt-learn"}, key


def run_with_the_package(milestone: str, tmp_path) -> dict:
    """``run MILESTONE --quick --use tt-learner-example``: it must exit 0; returns its report."""
    out = tmp_path / milestone
    result = cli("run", milestone, "--quick", "--use", DIST, "--out", str(out), tmp_path=tmp_path)
    assert result.returncode == 0, explain(result)
    report = json.loads((out / "report.json").read_text())
    assert all(check["reached"] for check in report["checks"]), report["checks"]
    return report["providers"]


def assert_provided(providers: dict, components: list[str], rules: list[str]) -> None:
    """``components`` came from this package, and the ``rules`` ops ran tt-core's kernel with
    this package's gradient rule."""
    for component in components:
        assert providers[component]["dist"] == DIST, (component, providers.get(component))
        assert providers[component]["builtin"] is False
    for op in rules:
        entry = providers[f"op:{op}"]
        assert entry["dist"] == "tt-core" and entry["rule"]["dist"] == DIST, (op, entry)


def test_milestone_01_runs_on_the_package(tmp_path):
    """The perceptron's Linear, and its logistic-regression comparison (this package's loss,
    SGD and matmul rule)."""
    providers = run_with_the_package("01", tmp_path)
    assert_provided(providers, ["layer:Linear", "loss:BCEWithLogitsLoss", "optimizer:SGD"], ["matmul"])
    # what the package does not provide comes from the built-in Acts (Linear's weight.T)
    assert providers["op:transpose"]["rule"]["dist"] == "tt-learn"


def test_milestone_02_runs_on_the_package(tmp_path):
    """XOR: both networks are built from this package's Linear and trained with its loss and
    SGD through its matmul rule; its Sigmoid (tt-core's kernel, this package's rule) gives the
    probabilities; Tanh, which it does not provide, is tt-core's."""
    providers = run_with_the_package("02", tmp_path)
    assert_provided(
        providers,
        ["layer:Linear", "activation:Sigmoid", "loss:BCEWithLogitsLoss", "optimizer:SGD"],
        ["matmul", "sigmoid"],
    )
    assert providers["activation:Tanh"]["dist"] == "tt-core"
    assert providers["op:tanh"]["rule"]["dist"] == "tt-learn"


@pytest.mark.skipif(importlib.util.find_spec("tt_data") is None, reason="milestone 03 needs tt-data")
def test_milestone_03_runs_on_the_package(tmp_path):
    """The MLPs, and the deep sigmoid and ReLU networks whose gradient flow the report draws,
    are built from this package's Linear, Sigmoid and ReLU and trained through its rules."""
    providers = run_with_the_package("03", tmp_path)
    assert_provided(providers, ["layer:Linear", "activation:ReLU", "activation:Sigmoid"],
                    ["matmul", "relu", "sigmoid"])
    report = json.loads((tmp_path / "03" / "report.json").read_text())
    assert "deep_sigmoid_vs_relu_gradient_flow.png" in report["plots"]
    assert report["metrics"]["deep_sigmoid_over_relu_first_layer_gradient"] <= 1e-3


def test_the_graph_and_anomaly_checks_see_the_package(tmp_path):
    """``run 02 --graph --detect-anomaly``: the graph of the first step names this package's
    rules as a built-in one's, and its code makes no NaN."""
    out = tmp_path / "02"
    result = cli("run", "02", "--quick", "--use", DIST, "--graph", "--detect-anomaly", "--out", str(out),
                 tmp_path=tmp_path)
    assert result.returncode == 0, explain(result)
    report = json.loads((out / "report.json").read_text())
    assert {"graph.png", "graph.svg"} <= set(report["plots"])
    assert report["options"] == {"graph": True, "detect_anomaly": True}
    svg = (out / "graph.svg").read_text()
    assert f"kernel tt-core, rule {DIST}" in svg and "matmul" in svg

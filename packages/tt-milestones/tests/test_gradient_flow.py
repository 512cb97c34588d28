"""Gradient flow in the milestone reports: the shared records-to-figures helpers, and milestone
03's quick run (its gradient-flow plots and records, and the deep sigmoid MLP whose first layer
gets a vanishing gradient beside the same MLP with ReLU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tt_core
from tt_milestones.api import RunContext
from tt_milestones.cli import main
from tt_milestones.history.gradient_flow import report_gradient_flow, series, summary, weight_names

PNG = b"\x89PNG\r\n\x1a\n"


def records(epochs=3):
    """Records as tt-learn writes them, for a weight matrix, its bias and a second matrix."""
    rows = []
    for epoch in range(1, epochs + 1):
        for index, (name, shape) in enumerate((("0.weight", (4, 2)), ("0.bias", (4,)), ("2.weight", (1, 4)))):
            rows.append({"epoch": epoch, "parameter": name, "shape": shape, "grad_norm": 10.0 ** -(index + epoch),
                         "grad_norm_last": 0.0, "update_ratio": math.nan if name == "0.bias" else 1e-3 * epoch,
                         "update_ratio_last": 0.0, "weight_norm": float(epoch), "steps": 5})
    return rows


def test_weight_names_and_series_follow_the_records():
    rows = records()
    assert weight_names(rows) == ["0.weight", "2.weight"]  # matrices only, in the model's order
    epochs, values = series(rows, "grad_norm")
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_allclose(values["2.weight"], [1e-3, 1e-4, 1e-5])
    with pytest.raises(ValueError, match="track_gradients"):
        weight_names([row for row in rows if row["parameter"] == "0.bias"])


def test_summary_is_plain_json_with_one_value_per_epoch():
    compact = summary(records())
    assert json.loads(json.dumps(compact, allow_nan=False)) == compact
    assert compact["epochs"] == [1, 2, 3]
    assert compact["parameters"]["0.bias"] == {"shape": [4], "grad_norm": [0.01, 0.001, 0.0001],
                                               "update_ratio": [None, None, None], "weight_norm": [1.0, 2.0, 3.0]}
    assert compact["parameters"]["0.weight"]["update_ratio"] == [0.001, 0.002, 0.003]


def test_report_gradient_flow_records_and_draws(tmp_path):
    ctx = RunContext(registry=tt_core.get_registry(), out=tmp_path)
    report_gradient_flow(ctx, "toy", records(), "a toy network")
    assert ctx.plots == ["toy_gradient_flow.png"] and (tmp_path / "toy_gradient_flow.png").read_bytes()[:8] == PNG
    assert ctx.metrics["toy_gradient_flow"] == summary(records())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tt_core.reset_plugins()
    registry = tt_core.get_registry()
    if not all(registry.has(*need) for need in (("trainer", "Trainer"), ("loader", "DataLoader"))):
        pytest.skip("milestone 03 needs tt-learn and tt-data")
    out = tmp_path_factory.mktemp("run03")
    code = main(["run", "03", "--quick", "--out", str(out)])
    return code, out, json.loads((out / "report.json").read_text())


def test_quick_run_draws_and_records_the_gradient_flow(quick_run):
    code, out, report = quick_run
    assert code == 0 and report["reached"] is True
    for name in ("tinydigits_gradient_flow.png", "deep_sigmoid_vs_relu_gradient_flow.png"):
        assert name in report["plots"] and (out / name).read_bytes()[:8] == PNG
    flow = report["metrics"]["tinydigits_gradient_flow"]
    epochs = report["configuration"]["tinydigits"]["epochs"]
    assert flow["epochs"] == list(range(1, epochs + 1))
    assert list(flow["parameters"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # every parameter of 64-128-10
    for name, columns in flow["parameters"].items():
        assert all(len(columns[key]) == epochs for key in ("grad_norm", "update_ratio", "weight_norm")), name
        assert all(value > 0 for value in columns["grad_norm"]), name
    assert flow["parameters"]["0.weight"]["shape"] == [128, 64]


def test_quick_run_shows_the_deep_sigmoid_gradient_vanish(quick_run):
    _, _, report = quick_run
    metrics = report["metrics"]
    first = {}
    for activation in ("sigmoid", "relu"):
        parameters = metrics[f"deep_{activation}_gradient_flow"]["parameters"]
        assert len([name for name, p in parameters.items() if len(p["shape"]) == 2]) == 9  # 8 hidden + output
        first[activation] = float(np.mean(parameters["0.weight"]["grad_norm"]))
        assert first[activation] == pytest.approx(metrics[f"deep_{activation}_first_layer_gradient_norm"], rel=1e-3)
        assert 0.0 <= metrics[f"deep_{activation}_test_accuracy"] <= 1.0
    assert first["sigmoid"] < 1e-3 * first["relu"]
    # the sigmoid's gradient shrinks layer by layer towards the input
    sigmoid = metrics["deep_sigmoid_gradient_flow"]["parameters"]
    first_epoch = [sigmoid[f"{2 * layer}.weight"]["grad_norm"][0] for layer in range(9)]
    assert first_epoch == sorted(first_epoch)
    assert metrics["deep_relu_test_accuracy"] > metrics["deep_sigmoid_test_accuracy"]
    check = {c["name"]: c for c in report["checks"]}["deep_sigmoid_over_relu_first_layer_gradient"]
    assert check["reached"] and check["value"] == pytest.approx(first["sigmoid"] / first["relu"], rel=1e-2)


def test_milestone_05s_own_loop_records_a_period_per_tenth_of_training(tmp_path):
    registry = tt_core.get_registry()
    if not registry.has("layer", "TransformerBlock") or not registry.has("function", "GradientWatch"):
        pytest.skip("milestone 05 needs tt-learn and tt-language")
    from tt_milestones.history import m05_transformer as m05

    ctx = RunContext(registry=registry, out=tmp_path)
    tt_core.manual_seed(0)
    model = m05.SequenceModel(ctx, [ctx.component("layer", "TransformerBlock")(8, 2, causal=False)], 8)
    result = m05._train_reversal(ctx, model, 20, np.random.default_rng(0), lambda **fields: None)
    rows = result["gradients"]
    names = [name for name, _ in model.named_parameters()]
    assert [(row["epoch"], row["parameter"]) for row in rows] == [(step, n) for step in range(2, 21, 2) for n in names]
    assert all(row["steps"] == 2 and row["grad_norm"] > 0 for row in rows)
    assert all(0 < row["update_ratio"] < 1 for row in rows if row["parameter"].endswith("weight"))

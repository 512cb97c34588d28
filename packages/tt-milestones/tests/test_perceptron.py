"""Milestone 01: the perceptron rule itself, its data, and a full quick run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tt_core
from tt_milestones.cli import main
from tt_milestones.history.m01_perceptron import Perceptron, digit_pair, separable_points


def silent(**fields) -> None:
    """A stand-in for a progress bar's ``advance``."""


def test_perceptron_learns_and_gate_but_never_xor():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    rng = tt_core.manual_seed(0)
    and_gate = Perceptron(tt_core.Linear(2, 1))
    assert and_gate.accuracy(x, np.array([0, 0, 0, 1])) == 0.75  # zero weights answer 0
    history = and_gate.fit(x, np.array([0, 0, 0, 1]), 50, rng, silent)
    assert history[-1] == 0 and and_gate.accuracy(x, np.array([0, 0, 0, 1])) == 1.0
    xor = Perceptron(tt_core.Linear(2, 1))
    history = xor.fit(x, np.array([0, 1, 1, 0]), 50, rng, silent)
    assert len(history) == 50 and min(history) > 0  # Minsky and Papert's point (milestone 02)
    assert xor.accuracy(x, np.array([0, 1, 1, 0])) <= 0.75


def test_update_rule_adds_or_subtracts_the_input():
    perceptron = Perceptron(tt_core.Linear(3, 1))
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    assert perceptron.epoch(x, np.array([1]), np.random.default_rng(0)) == 1  # answered 0, should be 1
    np.testing.assert_array_equal(perceptron.linear.weight.data, [[1, 2, 3]])
    np.testing.assert_array_equal(perceptron.linear.bias.data, [1])
    assert perceptron.epoch(x, np.array([0]), np.random.default_rng(0)) == 1  # answered 1, should be 0
    np.testing.assert_array_equal(perceptron.linear.weight.data, [[0, 0, 0]])
    assert perceptron.epoch(x, np.array([0]), np.random.default_rng(0)) == 0  # right: no update


def test_separable_points_respect_the_margin_and_the_line():
    x, y, (normal, offset) = separable_points(300, np.random.default_rng(1), margin=0.05)
    distance = x @ normal - offset
    assert x.shape == (300, 2) and x.dtype == np.float32
    assert np.all(np.abs(distance) > 0.05 - 1e-6)
    np.testing.assert_array_equal(y, distance > 0)
    assert 0.2 < y.mean() < 0.8


def test_digit_pair_is_the_fixed_split_of_zeros_and_ones():
    x_train, y_train = digit_pair("train")
    x_test, y_test = digit_pair("test")
    assert x_train.shape[1] == x_test.shape[1] == 64
    assert 0 <= x_train.min() and x_train.max() <= 1
    assert len(y_train) + len(y_test) == 360 and set(np.unique(y_test)) == {0, 1}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tt_core.reset_plugins()
    out = tmp_path_factory.mktemp("run01")
    code = main(["run", "01", "--quick", "--seed", "3", "--out", str(out)])
    return code, out, json.loads((out / "report.json").read_text())


def test_quick_run_reaches_both_targets(quick_run):
    code, _, report = quick_run
    assert code == 0 and report["reached"] is True
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["separable_accuracy"]["value"] == 1.0 and checks["separable_accuracy"]["target"] == 1.0
    assert checks["digits_test_accuracy"]["value"] >= 0.98 and checks["digits_test_accuracy"]["op"] == ">="
    metrics = report["metrics"]
    assert 0.3 < metrics["separable_train_accuracy_before"] < 0.7  # the untrained perceptron guesses one class
    assert 0.3 < metrics["digits_test_accuracy_before"] < 0.7
    assert metrics["separable_mistakes_per_epoch"][-1] == 0 and metrics["digits_mistakes_per_epoch"][-1] == 0


def test_quick_run_writes_a_complete_report_and_plots(quick_run):
    _, out, report = quick_run
    assert report["id"] == "01" and report["seed"] == 3 and report["quick"] is True
    assert report["configuration"]["max_epochs"] == 25 and report["wall_time_s"] > 0
    assert {"python", "numpy", "tt-core", "tt-milestones"} <= set(report["versions"])
    assert report["plots"] == ["decision_boundary.png", "convergence.png", "digit_weights.png"]
    for name in report["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_run(quick_run, tmp_path):
    _, _, first = quick_run
    assert main(["run", "perceptron", "--quick", "--seed", "3", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["metrics"] == first["metrics"]


def test_logistic_regression_comparison_when_tt_learn_is_installed(quick_run):
    _, _, report = quick_run
    registry = tt_core.get_registry()
    needs = [("autograd", "engine"), ("loss", "BCEWithLogitsLoss"), ("optimizer", "SGD")]
    if not all(registry.has(*need) for need in needs):
        assert "digits_logistic_regression_test_accuracy" not in report["metrics"]
        pytest.skip("the autograd comparison comes with tt-learn")
    assert report["metrics"]["digits_logistic_regression_test_accuracy"] >= 0.95

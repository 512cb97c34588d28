import json

import numpy as np
import pytest
import tt_core
from tt_perf import quantize_int8
from tt_perf.olympics import ALL_AROUND, Arena, Scorecard, Submission, run_olympics


@pytest.fixture
def arena(tmp_path, rng):
    x = rng.random((40, 64), dtype=np.float32)
    return Arena(batch=x[:8], out=tmp_path, test_x=x, test_y=rng.integers(0, 10, 40), warmup=1, repeats=3)


def test_baseline_against_int8_in_one_run(mlp, arena, tmp_path):
    qmodel = quantize_int8(mlp, arena.test_x)
    card = run_olympics(Submission("float32", mlp), [Submission("int8", qmodel)], arena, plugins=False)
    names = [e["name"] for e in card.events]
    assert names == ["latency", "memory", "compression", "accuracy"]
    assert card.ratios["float32"]["compression"] == pytest.approx(1.0)
    assert card.ratios["float32"][ALL_AROUND] == pytest.approx(1.0)
    assert card.ratios["int8"]["compression"] > 1.5  # a tiny model: headers and scales weigh a lot
    assert card.values["int8"]["accuracy"] == pytest.approx(card.values["float32"]["accuracy"], abs=10)
    ratios = [card.ratios["int8"][n] for n in names]
    assert card.ratios["int8"][ALL_AROUND] == pytest.approx(np.prod(ratios) ** (1 / len(ratios)))
    saved = json.loads(card.save_json(tmp_path / "card.json").read_text())
    assert saved["baseline"] == "float32" and set(saved["values"]) == {"float32", "int8"}
    assert card.plot(tmp_path / "card.png").read_bytes()[:4] == b"\x89PNG"
    assert card.table().row_count == 5


def test_ratio_direction_and_winner():
    events = [{"name": "latency", "unit": "ms", "higher_is_better": False},
              {"name": "accuracy", "unit": "%", "higher_is_better": True}]
    card = Scorecard("a", events, {"a": {"latency": 10.0, "accuracy": 90.0}, "b": {"latency": 2.5, "accuracy": 81.0}})
    assert card.ratios["b"]["latency"] == pytest.approx(4.0)
    assert card.ratios["b"]["accuracy"] == pytest.approx(0.9)
    assert card.ratios["b"][ALL_AROUND] == pytest.approx((4.0 * 0.9) ** 0.5)
    assert card.winner == "b"


class ParameterCount:
    name, unit, higher_is_better = "parameters", "", False

    def measure(self, submission, arena):
        return float(submission.model.num_parameters())


def test_plugin_events_join_the_games(mlp, arena, plugin_component):
    plugin_component("olympics_event", "parameters", ParameterCount)
    small = tt_core.Sequential(tt_core.Linear(64, 10))
    card = run_olympics(Submission("big", mlp), [Submission("small", small)], arena, events=[])
    assert [e["name"] for e in card.events] == ["parameters"]
    assert card.ratios["small"]["parameters"] == pytest.approx(mlp.num_parameters() / small.num_parameters())


def test_names_must_differ(mlp, arena):
    with pytest.raises(ValueError, match="unique"):
        run_olympics(Submission("x", mlp), [Submission("x", mlp)], arena)

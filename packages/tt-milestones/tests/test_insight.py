"""What the reports let a learner see: what attention and convolution learned, what each model
costs (systems figures), and a description of every picture. Quick runs, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tt_core
from tt_milestones.api import RunContext
from tt_milestones.cli import main
from tt_milestones.registry import get_catalogue
from tt_milestones.systems import peak_bytes, record_systems, systems_table

PNG = b"\x89PNG\r\n\x1a\n"
MILESTONES = ("01", "02", "03", "04", "05", "06")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """``quick_report(id)``: the report of ``run ID --quick`` (run once per module), or a skip
    when the installed Acts leave the milestone locked."""
    done: dict[str, tuple] = {}

    def get(milestone: str) -> tuple:
        if milestone not in done:
            tt_core.reset_plugins()
            spec = get_catalogue().find(milestone)
            if spec.missing(tt_core.get_registry()):
                hint = ", ".join(spec.install_hint(tt_core.get_registry()))
                done[milestone] = (None, f"milestone {milestone} is locked (it needs {hint})")
            else:
                out = tmp_path_factory.mktemp(f"run{milestone}")
                code = main(["run", milestone, "--quick", "--seed", "0", "--out", str(out)])
                done[milestone] = (out, json.loads((out / "report.json").read_text()), code)
        if done[milestone][0] is None:
            pytest.skip(done[milestone][1])
        return done[milestone]

    return get


# -- what attention learned ---------------------------------------------------------------


def test_reversal_heads_attend_to_the_reversed_position(quick_report):
    out, report, code = quick_report("05")
    assert code == 0
    recorded = report["metrics"]["reversal_attention"]
    weights = np.array(recorded["weights"])  # (layers, heads, queries, keys)
    layers, heads, length, keys = weights.shape
    assert (layers, heads, length, keys) == (2, 4, 8, 8) and sorted(recorded["sequence"]) == sorted(set(recorded["sequence"]))
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-3)
    reversed_key = np.arange(length)[::-1]
    hits = weights.argmax(axis=-1) == reversed_key  # (layers, heads, queries)
    # some layer has learned the anti-diagonal: for most query positions, in most of its heads,
    # the most-attended key is the reversed position (the digit the output must copy)
    best = int(np.argmax(hits.mean(axis=(1, 2))))
    assert np.sum(hits[best].mean(axis=1) >= 0.75) > heads / 2
    assert (weights[best].mean(axis=0).argmax(axis=-1) == reversed_key).mean() >= 0.75
    assert (out / "reversal_attention.png").read_bytes()[:8] == PNG
    assert (out / "tinytalks_attention.png").read_bytes()[:8] == PNG


def test_attention_grows_faster_with_context_than_the_mlp(quick_report):
    _, report, _ = quick_report("05")
    rows = report["metrics"]["context_scaling"]["rows"]
    assert [row["length"] for row in rows] == [64, 128, 256]
    attention = rows[-1]["attention_bytes"] / rows[0]["attention_bytes"]
    mlp = rows[-1]["MLP_bytes"] / rows[0]["MLP_bytes"]
    assert attention > 1.5 * mlp and 3 < mlp < 5  # the MLP's memory is proportional to the length (4x)


# -- what convolution learned -------------------------------------------------------------


def test_cnn_quick_writes_filters_feature_maps_and_weight_sharing(quick_report):
    out, report, code = quick_report("04")
    assert code == 0
    for name in ("tinydigits_filters.png", "tinydigits_feature_maps.png", "tinydigits_weight_sharing.png"):
        assert name in report["plots"] and (out / name).read_bytes()[:8] == PNG
    sharing = report["metrics"]["tinydigits_weight_sharing"]
    first, second = sharing["layers"]
    # by hand: conv 1 -> 6 (3x3, padding 1, bias) on 8x8 maps, conv 6 -> 16 on 4x4 maps. Unshared,
    # each output position has a weight for every input pixel it sees: along an axis of n
    # positions a 3-tap window with padding 1 sees 3n - 2 pixels in all (the edges miss one)
    assert first == {"layer": first["layer"], "shared": 6 * 9 + 6, "locally_connected": 6 * 1 * 22 * 22 + 6 * 64,
                     "fully_connected": 64 * (6 * 64) + 6 * 64}
    assert second["shared"] == 16 * 6 * 9 + 16
    assert second["locally_connected"] == 16 * 6 * 10 * 10 + 16 * 16
    assert second["fully_connected"] == (6 * 16) * (16 * 16) + 16 * 16
    totals = sharing["network_totals"]
    assert totals["shared"] == report["configuration"]["lenet"]["parameters"]
    assert totals["shared"] < totals["locally_connected"] < totals["fully_connected"]


# -- what it costs --------------------------------------------------------------------------


@pytest.mark.parametrize("milestone", MILESTONES)
def test_every_report_has_systems_figures(quick_report, milestone):
    _, report, code = quick_report(milestone)
    assert code == 0 and report["systems"], "no systems figures in the report"
    profiled = tt_core.get_registry().has("perf", "profile")
    for label, figures in report["systems"].items():
        assert figures["parameters"] > 0 and figures["batch_size"] > 0, label
        if profiled:
            assert figures["forward_flops_per_example"] > 0 and figures["activation_bytes_per_batch"] > 0, label
        else:
            assert "forward_flops_per_example" not in figures and "tt-perf" in figures["profiler"], label
    trained = [f for f in report["systems"].values() if "train_step_ms" in f]
    assert trained and all(f["train_step_ms"] > 0 for f in trained)


def test_mlp_width_sweep_counts_parameters(quick_report):
    out, report, _ = quick_report("03")
    rows = report["metrics"]["width_sweep"]["rows"]
    assert [row["width"] for row in rows] == [16, 64, 256, 1024, 4096]
    assert all(row["parameters"] == 64 * w + w + w * 10 + 10 for row, w in ((r, r["width"]) for r in rows))
    assert all(0.5 < row["test_accuracy"] <= 1 and row["step_ms"] > 0 for row in rows)
    assert (out / "width_sweep.png").read_bytes()[:8] == PNG


def test_record_systems_profiles_when_the_profiler_is_installed(tmp_path):
    ctx = RunContext(registry=tt_core.get_registry(), out=tmp_path)
    layer = tt_core.Linear(3, 2)
    layer.train()
    figures = record_systems(ctx, "linear", layer, np.zeros((5, 3), dtype=np.float32), step_seconds=0.002, what="a layer")
    assert ctx.systems == {"linear": figures} and layer.training
    assert figures["parameters"] == 8 and figures["batch_size"] == 5 and figures["train_step_ms"] == 2.0
    if ctx.registry.has("perf", "profile"):
        assert figures["forward_flops_per_example"] == 2 * 3 * 2 + 2  # a multiply-add is 2 FLOPs, plus the bias
        assert figures["activation_bytes_per_batch"] == 5 * 2 * 4  # one (5, 2) float32 output
    else:
        assert "forward_flops_per_example" not in figures
    with pytest.raises(ValueError, match="batch axis"):
        record_systems(ctx, "scalar", layer, np.float32(1.0))


def test_record_systems_without_the_profiler(only_core, tmp_path):
    ctx = RunContext(registry=tt_core.get_registry(), out=tmp_path)
    figures = record_systems(ctx, "linear", tt_core.Linear(4, 1), np.zeros((2, 4), dtype=np.float32))
    assert figures == {"model": "Linear", "parameters": 5, "batch_size": 2,
                       "profiler": "not installed: install tt-perf for FLOPs and activation memory"}
    table = systems_table({"systems": ctx.systems})
    assert table.row_count == 1 and "tt-perf" in table.caption
    assert systems_table({"systems": {}}) is None


def test_peak_bytes_sees_numpy_allocations():
    assert peak_bytes(lambda: np.ones(2**20, dtype=np.float32)) >= 4 * 2**20
    assert peak_bytes(lambda: None) < 2**16


# -- every picture described ----------------------------------------------------------------


@pytest.mark.parametrize("milestone", MILESTONES)
def test_every_figure_is_described(quick_report, milestone):
    out, report, _ = quick_report(milestone)
    assert [figure["file"] for figure in report["figures"]] == report["plots"] and report["plots"]
    for figure in report["figures"]:
        assert isinstance(figure["description"], str) and len(figure["description"].split()) >= 5, figure
        assert (out / figure["file"]).read_bytes()[:8] == PNG


def test_save_figure_records_the_description(tmp_path):
    ctx = RunContext(registry=tt_core.get_registry(), out=tmp_path)
    fig, ax = ctx.figure()
    ax.plot([0, 1], [1, 0])
    ctx.save_figure(fig, "line.png", "A falling line.")
    assert ctx.plots == ["line.png"] and ctx.figures == [{"file": "line.png", "description": "A falling line."}]

"""Progress bars and the run context's reporting."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from tt_milestones.api import RunContext
from tt_milestones.progress import progress_bar


def test_progress_bar_shows_fields_and_completes_when_stopped_early():
    stream = io.StringIO()
    console = Console(file=stream, width=120, force_terminal=False)
    with progress_bar(10, "training", console) as advance:
        for epoch in range(3):
            advance(loss=1.0 / (epoch + 1), epoch=epoch)
    text = stream.getvalue()
    assert "training" in text and "3/3" in text  # stopped after 3 of 10: the bar is completed
    assert "loss=0.3333" in text and "epoch=2" in text


def test_progress_bar_refuses_negative_total():
    with pytest.raises(ValueError, match="non-negative"):
        with progress_bar(-1, "x"):
            pass


def test_context_checks_and_reached(tmp_path):
    ctx = RunContext(registry=None, out=tmp_path)
    assert ctx.reached is False  # no check, no claim
    assert ctx.check("accuracy", 0.99, ">=", 0.98) is True
    assert ctx.check("loss", 2.0, "<", 1.5) is False
    assert ctx.reached is False and ctx.metrics == {"accuracy": 0.99, "loss": 2.0}
    with pytest.raises(ValueError, match="op must be one of"):
        ctx.check("x", 1, "==", 1)


@pytest.mark.parametrize("quick", [False, True])
def test_speed_targets_gate_full_runs_only(tmp_path, quick):
    ctx = RunContext(registry=None, out=tmp_path, quick=quick)
    ctx.check("tokens_identical", 1.0, ">=", 1.0)
    ctx.check_speed("speedup", 3.0, ">=", 5.0)
    assert ctx.metrics["speedup"] == 3.0
    assert ctx.reached is quick  # a missed speed target fails a full run, never a quick one
    assert [c.name for c in ctx.checks] == (["tokens_identical"] if quick else ["tokens_identical", "speedup"])

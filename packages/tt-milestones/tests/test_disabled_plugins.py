"""``TT_DISABLE_PLUGINS``: a name that blocks nothing is warned about on every command, and a
milestone locked by a blocked (or broken) package says so instead of "install" it."""

from __future__ import annotations

import json
import os

import pytest
import tt_core
from tt_milestones.cli import main

WIDGETS = """
from tt_core import Module, hookimpl

class Widget(Module):
    def forward(self, x):
        return x

def run(ctx):
    ctx.check("widget", 1.0, ">=", 1.0)

@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Widget", Widget)
"""

NEEDS_WIDGETS = """
from tt_core import hookimpl

@hookimpl
def tt_register_milestones(registry):
    from tt_milestones.api import MilestoneSpec, Requirement
    requires = (Requirement("layer", "Widget", "widget-plugin"),)
    registry.register(MilestoneSpec("w1", "widgets", 2024, "Widgets", "One. Two.", requires, "t", "widget_mod:run"))
    elsewhere = (Requirement("layer", "Gadget", "gadget-plugin"),)
    registry.register(MilestoneSpec("w2", "gadgets", 2024, "Gadgets", "One. Two.", elsewhere, "t", "widget_mod:run"))
"""


def disable(monkeypatch, *names: str) -> None:
    """Add ``names`` to TT_DISABLE_PLUGINS (keeping ``only_core``'s blocks)."""
    monkeypatch.setenv("TT_DISABLE_PLUGINS", ",".join(filter(None, [os.environ.get("TT_DISABLE_PLUGINS"), *names])))


@pytest.mark.parametrize("command", [["list"], ["info", "01"], ["plugins"], ["status", "--json"]])
def test_a_name_that_blocks_nothing_is_warned_about_on_every_command(only_core, capsys, monkeypatch, tmp_path,
                                                                     command):
    monkeypatch.setenv("TT_STATE_DIR", str(tmp_path))
    disable(monkeypatch, "tt-milestons", "no-such-plugin")
    assert main(command) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "tt-milestones: warning: TT_DISABLE_PLUGINS blocks nothing with 'no-such-plugin' (no installed plugin is "
        "called so), 'tt-milestons' (no installed plugin is called so; did you mean 'tt-milestones'?); "
        "the plugins that can be blocked: "
    )
    assert "tt-milestones" in line.rpartition(":")[2]


def test_tt_core_cannot_be_blocked(only_core, capsys, monkeypatch):
    disable(monkeypatch, "tt-core")
    assert main(["list"]) == 0
    assert "TT_DISABLE_PLUGINS blocks nothing with 'tt-core' (tt-core cannot be blocked)" in capsys.readouterr().err


def test_names_of_installed_plugins_give_no_warning(only_core, fake_plugin, capsys, monkeypatch):
    fake_plugin("widget-plugin", "widget_mod", WIDGETS)
    disable(monkeypatch, "Widget_Plugin")  # any spelling of the distribution name
    assert main(["list"]) == 0
    assert capsys.readouterr().err == ""


def test_a_milestone_locked_by_a_blocked_package_says_so(only_core, fake_plugin, capsys, monkeypatch, tmp_path):
    fake_plugin("widget-plugin", "widget_mod", WIDGETS)
    fake_plugin("widget-milestones", "widget_milestones_mod", NEEDS_WIDGETS)
    before = os.environ.get("TT_DISABLE_PLUGINS", "")
    disable(monkeypatch, "widget-plugin")
    assert main(["list", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["w1"]["status"] == "locked" and rows["w1"]["blocked"] == ["widget-plugin"]
    assert rows["w1"]["unlock"] == "widget-plugin is installed but blocked by TT_DISABLE_PLUGINS"
    assert rows["w2"]["blocked"] == [] and rows["w2"]["unlock"] == "install gadget-plugin"

    assert main(["run", "w1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "milestone w1 (widgets) is locked: it needs layer:Widget - widget-plugin is installed but blocked by " \
           "TT_DISABLE_PLUGINS" in err
    assert "install widget-plugin" not in err
    assert main(["info", "w1"]) == 0
    out = capsys.readouterr().out
    assert "[missing] layer:Widget  widget-plugin is installed but blocked by TT_DISABLE_PLUGINS" in out

    monkeypatch.setenv("TT_DISABLE_PLUGINS", before)
    tt_core.reset_plugins()
    assert main(["run", "w1", "--out", str(tmp_path / "out")]) == 0  # unblocked, it runs


def test_a_milestone_locked_by_a_package_that_failed_to_load_says_so(only_core, fake_plugin, capsys):
    fake_plugin("widget-plugin", "widget_mod", "raise RuntimeError('broken on purpose')\n")
    fake_plugin("widget-milestones", "widget_milestones_mod", NEEDS_WIDGETS)
    assert main(["list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("w1"))
    assert "locked - widget-plugin is installed but failed to load (see tt-milestones plugins)" in line


def test_status_says_what_unlocks_a_milestone(only_core, fake_plugin, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("TT_STATE_DIR", str(tmp_path))
    fake_plugin("widget-plugin", "widget_mod", WIDGETS)
    fake_plugin("widget-milestones", "widget_milestones_mod", NEEDS_WIDGETS)
    disable(monkeypatch, "widget-plugin")
    assert main(["status", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)["milestones"]}
    assert rows["w1"]["unlock"] == "widget-plugin is installed but blocked by TT_DISABLE_PLUGINS"
    assert rows["w2"]["unlock"] == "install gadget-plugin" and rows["01"]["unlock"] == ""
    assert main(["status"]) == 0
    assert "w2 gadgets: locked (install gadget-plugin)" in capsys.readouterr().out

"""Third-party plugins: a working one adds a milestone; broken ones are reported, the rest works."""

from __future__ import annotations

import json

from tt_milestones.cli import main
from tt_milestones.registry import get_catalogue
from tt_milestones.specs import MILESTONES

SIX = [s.id for s in MILESTONES]

GOOD = """
from tt_core import Module, hookimpl

class Double(Module):
    def forward(self, x):
        return x * 2

def run(ctx):
    ctx.record("note", "a target this plugin cannot reach")
    ctx.check("always_wrong", 0.0, ">=", 1.0)

@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Double", Double)

@hookimpl
def tt_register_milestones(registry):
    from tt_milestones.api import MilestoneSpec, Requirement
    requires = (Requirement("layer", "Double", "good-plugin"),)
    run = f"{__name__}:run"
    registry.register(MilestoneSpec("y1", "unreachable", 2024, "Unreachable", "One. Two.", requires, "never", run))
    locked = (Requirement("layer", "Nowhere", "nowhere-plugin"),)
    registry.register(MilestoneSpec("y2", "locked", 2024, "Locked", "One. Two.", locked, "never", f"{__name__}:run"))
"""


def plugins_json(capsys) -> dict:
    assert main(["plugins", "--json"]) == 0
    return {p["distribution"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}


def list_json(capsys) -> dict:
    assert main(["list", "--json"]) == 0
    return {row["id"]: row for row in json.loads(capsys.readouterr().out)}


def test_third_party_milestone_runs_and_a_miss_exits_1(only_core, fake_plugin, capsys, tmp_path):
    fake_plugin("good-plugin", "good_plugin_mod", GOOD)
    plugins = plugins_json(capsys)
    assert plugins["good-plugin"]["components"] == {"layer": 1}
    assert plugins["good-plugin"]["milestones"] == ["y1", "y2"] and plugins["good-plugin"]["error"] is None
    rows = list_json(capsys)
    assert rows["y1"]["status"] == "runnable" and rows["y1"]["provider"] == "good-plugin"
    assert rows["y2"]["status"] == "locked" and rows["y2"]["install"] == ["nowhere-plugin"]

    out = tmp_path / "y1"
    assert main(["run", "unreachable", "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["reached"] is False
    assert report["checks"] == [{"name": "always_wrong", "value": 0.0, "op": ">=", "target": 1.0, "reached": False}]
    assert report["versions"]["good-plugin"] == "0.1"


def test_plugin_that_fails_to_import_is_reported_and_the_rest_works(only_core, fake_plugin, capsys):
    fake_plugin("broken-import", "broken_import_mod", "raise RuntimeError('this plugin is broken on purpose')\n")
    plugins = plugins_json(capsys)
    assert "this plugin is broken on purpose" in plugins["broken-import"]["error"]
    assert plugins["broken-import"]["components"] == {} and plugins["broken-import"]["milestones"] == []
    assert plugins["tt-core"]["error"] is None and plugins["tt-core"]["components"]["op"] >= 20
    rows = list_json(capsys)
    assert list(rows) == SIX and rows["01"]["status"] == "runnable"


def test_plugin_whose_milestone_hook_raises_contributes_nothing(only_core, fake_plugin, capsys):
    fake_plugin("broken-hook", "broken_hook_mod", """
        from tt_core import Module, hookimpl

        @hookimpl
        def tt_register_components(registry):
            registry.register("layer", "Fine", Module)

        @hookimpl
        def tt_register_milestones(registry):
            raise ValueError("milestone hook exploded")
    """)
    catalogue = get_catalogue()
    info = next(p for p in catalogue.plugins if p.dist == "broken-hook")
    assert "milestone hook exploded" in info.error
    assert not catalogue.registry.has("layer", "Fine") and info.components == {}
    assert [s.id for s in catalogue.all()] == SIX


def test_plugin_clashing_with_a_builtin_milestone_contributes_nothing(only_core, fake_plugin):
    fake_plugin("clashing", "clashing_mod", """
        from tt_core import hookimpl

        @hookimpl
        def tt_register_milestones(registry):
            from tt_milestones.api import MilestoneSpec
            registry.register(MilestoneSpec("z1", "fine", 2000, "Fine", "One. Two.", (), "t", "a.b:run"))
            registry.register(MilestoneSpec("01", "mine", 2000, "Mine", "One. Two.", (), "t", "a.b:run"))
    """)
    catalogue = get_catalogue()
    info = next(p for p in catalogue.plugins if p.dist == "clashing")
    assert "clashes with '01' (perceptron) registered by tt-milestones" in info.error
    assert [s.id for s in catalogue.all()] == SIX  # staged z1 was dropped with the failure
    assert catalogue.origin["01"] == "tt-milestones"


def test_cli_process_reports_the_broken_plugin(only_core, fake_plugin, cli):
    fake_plugin("broken-import", "broken_import_mod", "import a_module_that_does_not_exist\n")
    result = cli("plugins")
    assert result.returncode == 0
    assert "broken-import 0.1" in result.stdout and "FAILED to load" in result.stdout
    assert "a_module_that_does_not_exist" in result.stdout
    listing = cli("list")
    assert listing.returncode == 0 and "01  1957  The Perceptron" in listing.stdout


MY_LINEAR = """
from tt_core import Linear, hookimpl

class MyLinear(Linear):
    pass

@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Linear", MyLinear)
"""


def test_plugins_shows_provider_choices_and_the_user_pick(only_core, fake_plugin, capsys, monkeypatch):
    fake_plugin("my-linear", "my_linear_mod", MY_LINEAR)
    assert main(["plugins", "--json"]) == 0
    choices = json.loads(capsys.readouterr().out)["choices"]
    assert len(choices) == 1 and choices[0]["component"] == "layer:Linear"
    assert sorted(choices[0]["providers"]) == ["my-linear", "tt-core"] and choices[0]["chosen"] == "tt-core"

    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear=my-linear")
    import tt_core

    tt_core.reset_plugins()
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "layer:Linear:" in line)
    assert "tt-core" in line and line.endswith("-> using my-linear")
    assert get_catalogue().registry.get("layer", "Linear").__name__ == "MyLinear"


TYPO_KIND = """
from tt_core import Module, hookimpl

class Mine(Module):
    def forward(self, x):
        return x

@hookimpl
def tt_register_components(registry):
    registry.register("lyaer", "Mine", Mine)
    registry.register("kind", "widget", "a widget: widget(x) -> x")
    registry.register("widget", "Spinner", Mine)
"""


def test_plugins_warns_about_unknown_kinds_and_lists_the_known_ones(only_core, fake_plugin, capsys):
    from tt_core.kinds import KINDS

    fake_plugin("typo-kind", "typo_kind_mod", TYPO_KIND)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    kinds_line = next(line for line in out.splitlines() if line.startswith("kinds: "))
    listed = kinds_line.removeprefix("kinds: ").split(", ")
    assert set(KINDS) < set(listed) and "widget (from typo-kind)" in listed
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1  # the widget is of a kind the plugin declared
    assert warnings[0].startswith("warning: typo-kind registers components of unknown kind 'lyaer' "
                                  "(did you mean 'layer' or ")

    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (unknown,) = report["unknown_kinds"]
    assert unknown["distribution"] == "typo-kind" and unknown["kind"] == "lyaer" and unknown["close"][0] == "layer"
    assert report["kinds"]["layer"] == {"contract": KINDS["layer"], "dist": "tt-core"}
    assert report["kinds"]["widget"] == {"contract": "a widget: widget(x) -> x", "dist": "typo-kind"}


def test_plugins_without_unknown_kinds_warns_of_nothing(only_core, capsys):
    assert main(["plugins"]) == 0
    assert "warning" not in capsys.readouterr().out

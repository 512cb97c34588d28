"""``tt-milestones check`` and ``status`` on a hand-built registry: a kind ``widget`` with its own
checker, built-in widgets from tt-core and a learner's package with a correct, a wrong and a
stub widget; and the state file's invalidation on a really installed (fake) distribution."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pluggy
import pytest
import tt_core
from tt_core import hookimpl
from tt_core import plugins as tt_plugins
from tt_core.plugins import ComponentRegistry, HookSpecs, PluginInfo, PluginSystem
from tt_milestones import learner
from tt_milestones.api import MilestoneSpec, Requirement
from tt_milestones.cli import main

LEARNER, GOOD = "my-widgets", "good-widgets"


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    """Results go to a folder of the test's own."""
    folder = tmp_path / "state"
    monkeypatch.setenv(learner.STATE_ENV, str(folder))
    return folder


# -- the widgets ------------------------------------------------------------------------


def double(x):
    return 2 * x


def triple(x):
    return 3 * x


def halve(x):
    return x / 2


def my_double(x):
    return x + x


def my_triple(x):  # wrong on purpose: off by x
    return x + x


def my_halve(x):
    """Return x / 2."""
    raise NotImplementedError


def my_square(x):  # a widget with no built-in counterpart
    return x * x


def widget_checker(grader, yours, reference, name):
    """Widgets map an array to an array of its shape; compared with the reference on fresh
    normal inputs (with no reference: only the shape is checked)."""
    x = grader.rng.standard_normal((3, 4))
    with grader.case("keeps the shape"):
        assert np.shape(yours(x)) == x.shape, f"shape {np.shape(yours(x))}, expected {x.shape}"
    if reference is not None:
        with grader.case("values on a (3, 4) normal input"):
            grader.compare(yours(x), reference(x), what="output")


def broken_checker(grader, yours, reference, name):
    raise RuntimeError("the checker itself is broken")


SPECS = (
    MilestoneSpec("t1", "alpha", 2001, "Alpha", "One.", (Requirement("widget", "double", "tt-core"),
                  Requirement("widget", "triple", "tt-core")), "x", "nowhere:run",
                  optional=(Requirement("widget", "halve", "tt-core"),)),
    MilestoneSpec("t2", "beta", 2002, "Beta", "Two.", (Requirement("widget", "double", "tt-core"),
                  Requirement("widget", "missing", "tt-learn")), "x", "nowhere:run"),
    MilestoneSpec("t3", "gamma", 2003, "Gamma", "Three.", (Requirement("gizmo", "spin", "gizmo-pkg"),),
                  "x", "nowhere:run"),
)


class SpecPlugin:
    @hookimpl
    def tt_register_milestones(self, registry):
        for spec in SPECS:
            registry.register(spec)


def install_registry(monkeypatch, components: dict[str, list[tuple[str, str, object]]],
                     errors: dict[str, str] | None = None) -> ComponentRegistry:
    """Make ``{dist: [(kind, name, obj), ...]}`` the loaded plugin system, with SPECS as its
    milestones, and a plugin that failed to load for each ``{dist: error}``."""
    registry = ComponentRegistry()
    for dist, items in components.items():
        registrar = registry.registrar(dist)
        for kind, name, obj in items:
            registrar.register(kind, name, obj)
        registrar.commit()
    manager = pluggy.PluginManager(tt_plugins.PROJECT)
    manager.add_hookspecs(HookSpecs)
    manager.register(SpecPlugin(), name="tt-milestones")
    infos = [PluginInfo("tt-milestones", "tt-milestones", "0.1")]
    infos += [PluginInfo(dist, dist, "0.1") for dist in components if dist != "tt-milestones"]
    infos += [PluginInfo(dist, dist, "0.1", error=error) for dist, error in (errors or {}).items()]
    monkeypatch.setattr(tt_plugins, "_SYSTEM", PluginSystem(manager, registry, infos))
    return registry


BUILTIN = [("checker", "widget", widget_checker), ("widget", "double", double), ("widget", "triple", triple),
           ("widget", "halve", halve)]
MINE = [("widget", "double", my_double), ("widget", "triple", my_triple), ("widget", "halve", my_halve)]


@pytest.fixture
def widgets(monkeypatch):
    return install_registry(monkeypatch, {"tt-core": BUILTIN, LEARNER: MINE})


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def check_json(capsys, *args: str) -> tuple[int, dict]:
    code, out, _ = run_main(capsys, "check", *args, "--json")
    return code, json.loads(out)


def by_component(report: dict) -> dict[str, dict]:
    return {f"{g['kind']}:{g['name']}": g for g in report["grades"]}


# -- check ------------------------------------------------------------------------------


def test_check_a_distribution_shows_each_component_and_the_diagnosis(widgets, capsys):
    code, out, _ = run_main(capsys, "check", LEARNER, "--seed", "11")
    assert code == 1  # my_triple is wrong
    lines = out.splitlines()
    assert lines[0] == "seed 11; --seed 11 reproduces"
    row = {name: next(line for line in lines if f"widget:{name} " in line and LEARNER in line)
           for name in ("double", "triple", "halve")}
    assert "passed" in row["double"] and "failed" in row["triple"] and "not implemented" in row["halve"]
    header = lines.index(f"widget:triple ({LEARNER}): failed")
    diagnosis = lines[header + 1]
    assert diagnosis.startswith("    x values on a (3, 4) normal input: ")
    assert "output" in diagnosis  # the checker's diagnosis, under its component, indented
    assert not any(line.startswith("widget:double (") for line in lines)  # nothing to say about a pass
    assert "1 passed, 1 failed, 1 not implemented" in out


def test_check_passes_when_everything_implemented_passes(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": BUILTIN, GOOD: [("widget", "double", my_double),
                                                               ("widget", "halve", my_halve),
                                                               ("widget", "square", my_square)]})
    code, report = check_json(capsys, GOOD)
    assert code == 0 and report["exit_code"] == 0
    grades = by_component(report)
    assert grades["widget:double"]["status"] == "passed"
    assert grades["widget:halve"]["status"] == "not implemented"
    assert grades["widget:square"]["status"] == "no reference"
    assert report["summary"] == "1 passed, 1 no reference, 1 not implemented"


def test_check_with_no_argument_grades_every_non_builtin_distribution(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": BUILTIN, LEARNER: MINE, GOOD: [("widget", "double", my_double)]})
    code, report = check_json(capsys)
    assert code == 1
    assert sorted((g["dist"], g["name"]) for g in report["grades"]) == [
        (GOOD, "double"), (LEARNER, "double"), (LEARNER, "halve"), (LEARNER, "triple"),
    ]
    assert "checker" not in {g["kind"] for g in report["grades"]}


def test_check_kind_name_grades_the_provider_in_use(widgets, capsys, monkeypatch):
    code, report = check_json(capsys, "widget:triple", "--seed", "3")
    assert code == 0 and [(g["dist"], g["status"]) for g in report["grades"]] == [("tt-core", "passed")]
    code, out, _ = run_main(capsys, "check", "widget:triple", "--seed", "3")
    assert f"add --use {LEARNER}" in out  # says how to grade the learner's instead
    code, report = check_json(capsys, "widget:triple", "--use", LEARNER)
    assert code == 1 and [(g["dist"], g["status"]) for g in report["grades"]] == [(LEARNER, "failed")]


def test_a_broken_checker_is_an_error_not_a_traceback(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": [("checker", "widget", broken_checker), ("widget", "double", double)],
                                   LEARNER: [("widget", "double", my_double)]})
    code, out, _ = run_main(capsys, "check", LEARNER)
    assert code == 1
    assert "error" in out and "the checker itself is broken" in out and "1 error" in out


def test_a_kind_without_checker_fails_its_components(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": [("widget", "double", double)], LEARNER: [("widget", "double", my_double)]})
    code, report = check_json(capsys, LEARNER)
    assert code == 1
    assert "no checker for kind widget" in json.dumps(report["grades"][0]["cases"])


def test_grading_that_breaks_is_an_error_grade(widgets, capsys, monkeypatch):
    def broken_grade(component, registry, seed):
        raise ValueError("grading broke")

    monkeypatch.setattr(learner, "grade", broken_grade)
    code, report = check_json(capsys, LEARNER)
    assert code == 1 and {g["status"] for g in report["grades"]} == {"error"}
    assert report["grades"][0]["cases"][0]["detail"] == "grading raised ValueError: grading broke"


def test_a_package_that_failed_to_load_fails_the_check(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": BUILTIN, GOOD: [("widget", "double", my_double)]},
                     errors={"broken-widgets": "SyntaxError: invalid syntax (widgets.py, line 3)"})
    code, out, _ = run_main(capsys, "check")
    assert code == 1
    assert "broken-widgets 0.1 failed to load, so none of it is used:" in out
    assert "    SyntaxError: invalid syntax (widgets.py, line 3)" in out
    assert "1 passed; 1 with load problems" in out
    code, report = check_json(capsys, "broken-widgets")  # named: its error, not "unknown distribution"
    assert code == 1 and report["grades"] == [] and "SyntaxError" in report["load_errors"]["broken-widgets"]
    code, report = check_json(capsys, GOOD)  # another package's problems are not this check's
    assert code == 0 and report["load_errors"] == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (("widget:tripel",), "no installed package provides widget:tripel; did you mean widget:triple?"),
        (("my-widget",), "no installed distribution 'my-widget' provides components; did you mean my-widgets?"),
        (("widget:",), "is not KIND:NAME"),
    ],
)
def test_unknown_targets_are_usage_errors_naming_close_names(widgets, capsys, args, message):
    code, out, err = run_main(capsys, "check", *args)
    assert code == 2 and message in err and out == ""


def test_nothing_to_check_says_how_to_start(monkeypatch, capsys):
    install_registry(monkeypatch, {"tt-core": BUILTIN})
    code, _, err = run_main(capsys, "check")
    assert code == 2 and "nothing to check" in err and "tt-milestones new" in err


def test_bad_seed_is_a_usage_error(widgets, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--seed", "-1"])
    assert exit_.value.code == 2


def test_the_seed_is_fresh_each_run_and_reproduces_the_inputs(widgets, capsys):
    assert len({learner.draw_seed() for _ in range(8)}) > 1
    _, first = check_json(capsys, LEARNER)
    _, again = check_json(capsys, LEARNER, "--seed", str(first["seed"]))
    _, other = check_json(capsys, LEARNER, "--seed", str((first["seed"] + 1) % learner.SEED_RANGE))

    def diagnosis(report):
        return [c["detail"] for c in by_component(report)["widget:triple"]["cases"] if c["status"] == "failed"]

    assert diagnosis(first) and diagnosis(first) == diagnosis(again)
    assert diagnosis(other) != diagnosis(first)  # other inputs: other numbers in the diagnosis


def test_check_prints_the_seed_it_drew(widgets, capsys, monkeypatch):
    monkeypatch.setattr(learner, "draw_seed", lambda: 48213)
    _, out, _ = run_main(capsys, "check", LEARNER)
    assert out.splitlines()[0] == "seed 48213; --seed 48213 reproduces"


# -- the state file ---------------------------------------------------------------------


def test_check_saves_its_results_by_distribution(widgets, capsys, state_dir):
    run_main(capsys, "check", LEARNER, "--seed", "5")
    state = json.loads((state_dir / learner.STATE_FILE).read_text())
    entry = state["distributions"][LEARNER]
    assert entry["fingerprint"] is None  # not really installed
    statuses = {key: record["status"] for key, record in entry["components"].items()}
    assert statuses == {"widget:double": "passed", "widget:triple": "failed", "widget:halve": "not implemented"}
    assert entry["components"]["widget:double"]["seed"] == 5
    assert not [p for p in state_dir.iterdir() if p.name != learner.STATE_FILE]  # no temporary file left


def test_a_damaged_state_file_reads_as_empty_and_is_rewritten(widgets, capsys, state_dir):
    state_dir.mkdir()
    (state_dir / learner.STATE_FILE).write_text("{not json")
    assert learner.load_state() == learner.empty_state()
    run_main(capsys, "check", LEARNER)
    assert LEARNER in learner.load_state()["distributions"]


INSTALLED = """
from tt_core import hookimpl

def square(x):
    return x * x

def check_widget(grader, yours, reference, name):
    x = grader.rng.standard_normal(4)
    with grader.case("keeps the shape"):
        assert yours(x).shape == x.shape

@hookimpl
def tt_register_components(registry):
    registry.register("kind", "widget", "maps an array to an array of the same shape")
    registry.register("checker", "widget", check_widget)
    registry.register("widget", "square", square)
"""


def test_results_go_stale_when_the_package_files_or_version_change(only_core, fake_plugin, capsys, tmp_path):
    fake_plugin("widget-pkg", "widget_pkg_mod", INSTALLED)
    first = learner.dist_identity("widget-pkg")
    assert first.version == "0.1" and first.fingerprint == learner.dist_identity("widget_pkg").fingerprint

    registry = tt_core.get_registry()
    square = registry.chosen("widget", "square")
    assert learner.dist_components(registry, "widget-pkg") == [square]  # its checker is not graded
    grades = learner.grade_components([square], registry, seed=1)
    assert [g.status for g in grades] == ["no reference"]
    learner.record_grades(grades, seed=1)
    state = learner.load_state()
    assert learner.last_result(state, square, {}) == "no reference"

    source = tmp_path / "widget_pkg_mod.py"
    source.write_text(source.read_text() + "\n# edited\n")
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert learner.dist_identity("widget-pkg").fingerprint != first.fingerprint
    assert learner.last_result(state, square, {}) == "stale"

    learner.record_grades(grades, seed=1)  # checked again: valid again
    assert learner.last_result(learner.load_state(), square, {}) == "no reference"

    metadata_file = tmp_path / "widget_pkg-0.1.dist-info" / "METADATA"
    metadata_file.write_text(metadata_file.read_text().replace("Version: 0.1", "Version: 0.2"))
    assert learner.dist_identity("widget-pkg").version == "0.2"
    assert learner.last_result(learner.load_state(), square, {}) == "stale"


def test_an_editable_install_fingerprints_its_package_sources(tmp_path, monkeypatch):
    package = tmp_path / "src" / "editable_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_plugin.py").write_text("")
    site = tmp_path / "site"
    info = site / "editable_pkg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: editable-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tinytorch]\neditable-pkg = editable_pkg._plugin\n")
    (info / "direct_url.json").write_text(json.dumps({"url": f"file://{tmp_path}", "dir_info": {"editable": True}}))
    (info / "RECORD").write_text("editable_pkg-1.0.dist-info/METADATA,,\neditable_pkg-1.0.dist-info/RECORD,,\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    before = learner.dist_identity("editable-pkg").fingerprint
    assert before is not None
    (package / "layers.py").write_text("class Linear: pass\n")  # a new source file
    assert learner.dist_identity("editable-pkg").fingerprint != before


# -- status -----------------------------------------------------------------------------


def status_json(capsys, *args: str) -> dict:
    code, out, _ = run_main(capsys, "status", *args, "--json")
    assert code == 0
    return json.loads(out)


def rows(report: dict) -> dict[str, dict]:
    return {row["component"]: row for act in report["acts"] for row in act["components"]}


def test_status_groups_by_act_and_counts_yours_per_milestone(widgets, capsys):
    report = status_json(capsys)
    assert [act["act"] for act in report["acts"]] == ["tt-core", "tt-learn", "gizmo-pkg"]
    assert [row["component"] for row in report["acts"][0]["components"]] == [
        "widget:double", "widget:triple", "widget:halve",
    ]
    table = rows(report)
    assert table["widget:double"]["provider"] == "tt-core" and not table["widget:double"]["yours"]
    assert table["widget:double"]["check"] == "not checked" and table["widget:double"]["learner"] == LEARNER
    assert table["widget:halve"]["check"] == "not implemented"
    assert table["widget:missing"]["provider"] is None
    milestones = {m["id"]: m for m in report["milestones"]}
    assert (milestones["t1"]["status"], milestones["t1"]["yours"], milestones["t1"]["components"]) == ("runnable", 0, 3)
    assert report["unused"] == {LEARNER: ["widget:double", "widget:triple"]}

    report = status_json(capsys, "--use", LEARNER)
    table = rows(report)
    assert table["widget:double"]["yours"] and table["widget:double"]["provider"] == LEARNER
    assert not table["widget:halve"]["yours"]  # a stub is never used: the built-in one runs
    milestones = {m["id"]: m for m in report["milestones"]}
    assert (milestones["t1"]["yours"], milestones["t1"]["components"]) == (2, 3)
    assert milestones["t1"]["your_components"] == ["widget:double", "widget:triple"]
    assert (milestones["t2"]["status"], milestones["t2"]["yours"], milestones["t2"]["components"]) == ("locked", 1, 1)
    assert report["unused"] == {}


def test_status_shows_the_last_check(widgets, capsys):
    run_main(capsys, "check", LEARNER)
    table = rows(status_json(capsys, "--use", LEARNER))
    assert [table[f"widget:{n}"]["check"] for n in ("double", "triple", "halve")] == [
        "passed", "failed", "not implemented",
    ]


def test_status_text(widgets, capsys):
    run_main(capsys, "check", LEARNER)
    code, out, _ = run_main(capsys, "status", "--use", LEARNER)
    assert code == 0
    line = {name: next(line for line in out.splitlines() if f"widget:{name} " in line) for name in ("double", "triple", "halve")}
    assert f"yours: {LEARNER}" in line["double"] and "passed" in line["double"]
    assert "failed" in line["triple"]
    assert "built-in: tt-core" in line["halve"] and f"not implemented ({LEARNER})" in line["halve"]
    assert "  t1 alpha: runnable, 2 of 3 components yours" in out
    assert "  t2 beta: locked (install tt-learn), 1 of 1 components yours" in out
    assert "missing: install tt-learn" in out


def test_status_rejects_an_unknown_distribution(widgets, capsys):
    code, _, err = run_main(capsys, "status", "--use", "my-widgts")
    assert code == 2 and "my-widgets" in err


LINEAR = """
from tt_core import hookimpl
from tt_core.layers import Linear

class MyLinear(Linear):
    pass

@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Linear", MyLinear)
"""


def test_status_honours_tt_providers(only_core, fake_plugin, capsys, monkeypatch):
    fake_plugin("lin-pkg", "lin_pkg_mod", LINEAR)
    before = {m["id"]: m for m in status_json(capsys)["milestones"]}
    assert before["01"]["yours"] == 0 and rows(status_json(capsys))["layer:Linear"]["provider"] == "tt-core"

    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear=lin-pkg")
    tt_core.reset_plugins()
    report = status_json(capsys)
    row = rows(report)["layer:Linear"]
    assert (row["provider"], row["yours"], row["check"]) == ("lin-pkg", True, "not checked")
    after = {m["id"]: m for m in report["milestones"]}
    assert after["01"]["your_components"] == ["layer:Linear"]
    assert after["01"]["components"] == before["01"]["components"]


def _square_kernel(ctx, x):
    return x * x


def _square_rule(ctx, grad):
    return (grad * 2 * ctx.inputs[0],)


def _my_square_rule(ctx, grad):
    return (2 * ctx.inputs[0] * grad,)


def test_status_shows_a_learners_gradient_rule_and_counts_it_for_the_milestones_using_its_op(monkeypatch, capsys):
    from tt_core import GradRule, Op

    spec = MilestoneSpec("t9", "squares", 2009, "Squares", "Nine.", (Requirement("op", "square", "tt-core"),),
                         "x", "nowhere:run")
    monkeypatch.setattr(sys.modules[__name__], "SPECS", (spec,))
    install_registry(monkeypatch, {
        "tt-core": [("op", "square", Op(_square_kernel))],
        "tt-learn": [("grad_rule", "square", GradRule(_square_rule))],
        LEARNER: [("grad_rule", "square", GradRule(_my_square_rule))],
    })
    report = status_json(capsys, "--use", LEARNER)
    table = rows(report)
    assert table["op:square"]["provider"] == "tt-core" and not table["op:square"]["yours"]
    assert table["grad_rule:square"]["provider"] == LEARNER and table["grad_rule:square"]["yours"]
    milestone = report["milestones"][0]
    assert (milestone["yours"], milestone["components"]) == (1, 2)
    assert milestone["your_components"] == ["grad_rule:square"]

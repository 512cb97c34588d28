"""A spec's ``run`` path is resolved when the milestone runs: what fails is named, exit 2."""

from __future__ import annotations

import pytest
from tt_milestones.api import MilestoneSpec
from tt_milestones.cli import main
from tt_milestones.runner import RunPathError, resolve


def spec(run: str) -> MilestoneSpec:
    return MilestoneSpec("p1", "paths", 2024, "Paths", "One. Two.", (), "nothing", run)


def test_a_good_path_gives_the_function():
    from tt_milestones.history import m01_perceptron

    assert resolve(spec("tt_milestones.history.m01_perceptron:run")) is m01_perceptron.run


def test_a_module_that_is_not_there():
    with pytest.raises(RunPathError) as error:
        resolve(spec("no_such_module_for_tt:run"), provider="my-plugin")
    assert str(error.value) == (
        "milestone p1 (paths, registered by my-plugin): its run path 'no_such_module_for_tt:run' does not resolve: "
        "importing 'no_such_module_for_tt' failed with ModuleNotFoundError: No module named 'no_such_module_for_tt'"
    )


def test_a_module_that_raises_when_imported_names_the_line(tmp_path, monkeypatch):
    (tmp_path / "explodes_on_import.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RunPathError, match=r"importing 'explodes_on_import' failed with RuntimeError: boom "
                                           r"\(at .*explodes_on_import\.py:2\)"):
        resolve(spec("explodes_on_import:run"))


def test_a_missing_function_lists_the_module_functions():
    with pytest.raises(RunPathError, match=r"module 'tt_milestones.history.m01_perceptron' has no 'runn' "
                                           r"\(its functions: .*\brun\b"):
        resolve(spec("tt_milestones.history.m01_perceptron:runn"))


def test_an_attribute_that_is_not_a_function():
    with pytest.raises(RunPathError, match=r"'__doc__' is a str, not a function"):
        resolve(spec("tt_milestones.history.m01_perceptron:__doc__"))


BAD_PATHS = """
from tt_core import hookimpl

@hookimpl
def tt_register_milestones(registry):
    from tt_milestones.api import MilestoneSpec
    registry.register(MilestoneSpec("b1", "nomodule", 2024, "No module", "One.", (), "t", "bad_paths_gone:run"))
    registry.register(MilestoneSpec("b2", "nofunction", 2024, "No function", "One.", (), "t", f"{__name__}:nowhere"))
"""


@pytest.mark.parametrize("milestone, message", [
    ("b1", "milestone b1 (nomodule, registered by bad-paths): its run path 'bad_paths_gone:run' does not resolve: "
           "importing 'bad_paths_gone' failed with ModuleNotFoundError"),
    ("b2", "milestone b2 (nofunction, registered by bad-paths): its run path 'bad_paths_mod:nowhere' does not "
           "resolve: module 'bad_paths_mod' has no 'nowhere'"),
])
def test_run_exits_2_with_the_reason_and_no_traceback(only_core, fake_plugin, capsys, tmp_path, milestone, message):
    fake_plugin("bad-paths", "bad_paths_mod", BAD_PATHS)
    code = main(["run", milestone, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and message in err
    assert "Traceback" not in out + err and not (tmp_path / "out").exists()

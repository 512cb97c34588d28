"""The check of tt-data's function ``require_data``, found by tt-core's ``function`` checker
under ``checker:function:require_data``: a learner's correct version passes under several
seeds; wrong ones fail with the diagnosis a learner needs; the environment is left as it was.
Registries are built by hand."""

from __future__ import annotations

import os

import pytest
from tt_core import TinyTorchError
from tt_core.grading import FAILED, PASSED, check_function, grade
from tt_core.plugins import ComponentRegistry
from tt_data import grading
from tt_data.datasets import find, require
from tt_data.download import locate, sha256_of

SEEDS = (0, 1, 2)
MINE = "my-data"


def grade_mine(yours, seed: int = 0):
    registry = ComponentRegistry()
    core = registry.registrar("tt-core")
    core.register("checker", "function", check_function)
    core.commit()
    builtin = registry.registrar("tt-data")
    grading.register(builtin)
    builtin.register("function", "require_data", require)
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register("function", "require_data", yours)
    learner.commit()
    return grade(next(c for c in registry.providers("function", "require_data") if c.dist == MINE), registry, seed)


def failed(result) -> dict[str, str]:
    return {c.name: c.detail for c in result.cases if c.status == FAILED}


def make_require(all_problems: bool = True, checksums: bool = True, unknown_raises: bool = True):
    """A learner's require_data (files looked up, checked, never downloaded here); the options
    make it wrong."""

    def require_data(*names, download=True, progress=True, registry=None):
        if not names:
            raise TinyTorchError("name the data sets to check")
        found, problems = {}, []
        for name in names:
            try:
                dataset = find(name, registry)
            except TinyTorchError:
                if not unknown_raises:
                    continue
                raise
            listing = getattr(dataset, "data_files", None)
            paths = []
            for remote in listing() if listing else ():
                path = locate(remote)
                if path is None:
                    problems.append(f"{remote.relative} is missing")
                elif checksums and sha256_of(path) != remote.sha256:
                    problems.append(f"{remote.relative} is corrupt")
                else:
                    paths.append(path)
                if problems and not all_problems:
                    raise TinyTorchError(problems[0])
            found[name] = tuple(paths)
        if problems:
            raise TinyTorchError("; ".join(problems))
        return found

    return require_data


@pytest.mark.parametrize("seed", SEEDS)
def test_the_built_in_and_a_correct_require_data_pass(seed):
    for yours in (require, make_require()):
        result = grade_mine(yours, seed)
        assert result.status == PASSED, failed(result)
        assert len(result.cases) == 4 and all(c.status == PASSED for c in result.cases)


@pytest.mark.parametrize(("options", "case", "diagnosis"), [
    ({"all_problems": False}, "one error naming every missing and corrupt file",
     "the error does not name graded/part3.bin: graded/part2.bin is missing"),
    ({"checksums": False}, "one error naming every missing and corrupt file", "does not name graded/part3.bin"),
    ({"unknown_raises": False}, "an unknown data set", "require_data('no-such-set'): it returned without an error"),
])
def test_each_wrong_require_data_fails_with_its_diagnosis(options, case, diagnosis):
    result = grade_mine(make_require(**options))
    assert result.status == FAILED
    assert diagnosis in failed(result)[next(name for name in failed(result) if name.startswith(case))]


def test_the_check_leaves_the_data_folders_as_they_were(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TT_CACHE_DIR", raising=False)
    grade_mine(make_require())
    assert os.environ["TT_DATA_DIR"] == str(tmp_path) and "TT_CACHE_DIR" not in os.environ
    assert list(tmp_path.iterdir()) == []

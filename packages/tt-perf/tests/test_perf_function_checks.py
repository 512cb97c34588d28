"""The checks of tt-perf's functions (``blas_threads``, ``threadpoolctl_available``), found by
tt-core's ``function`` checker under ``checker:function:<name>``: a learner's correct versions
pass; wrong ones fail with the diagnosis a learner needs, whether or not threadpoolctl is
installed. Registries are built by hand."""

from __future__ import annotations

import contextlib
import importlib.util

import pytest
from tt_core import TinyTorchError
from tt_core.grading import FAILED, PASSED, check_function, grade
from tt_core.plugins import ComponentRegistry
from tt_perf import grading
from tt_perf.accelerate import blas_threads, threadpoolctl_available

MINE = "my-perf"
BUILTIN = {"blas_threads": blas_threads, "threadpoolctl_available": threadpoolctl_available}
INSTALLED = importlib.util.find_spec("threadpoolctl") is not None


def grade_mine(name: str, yours, seed: int = 0):
    registry = ComponentRegistry()
    core = registry.registrar("tt-core")
    core.register("checker", "function", check_function)
    core.commit()
    builtin = registry.registrar("tt-perf")
    grading.register(builtin)
    builtin.register("function", name, BUILTIN[name])
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register("function", name, yours)
    learner.commit()
    return grade(next(c for c in registry.providers("function", name) if c.dist == MINE), registry, seed)


def failed(result) -> dict[str, str]:
    return {c.name: c.detail for c in result.cases if c.status == FAILED}


def my_threadpoolctl_available():
    return importlib.util.find_spec("threadpoolctl") is not None


@contextlib.contextmanager
def my_blas_threads(count):
    if count is None:
        yield
        return
    if importlib.util.find_spec("threadpoolctl") is None:
        raise TinyTorchError("limiting BLAS threads needs threadpoolctl")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield


@contextlib.contextmanager
def blas_threads_doing_nothing(count):
    yield


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_built_in_functions_and_correct_ones_pass(name):
    mine = {"blas_threads": my_blas_threads, "threadpoolctl_available": my_threadpoolctl_available}[name]
    for yours in (BUILTIN[name], mine):
        result = grade_mine(name, yours)
        assert result.status == PASSED, failed(result)
        assert all(c.status == PASSED for c in result.cases)


def test_a_wrong_answer_about_threadpoolctl_fails():
    result = grade_mine("threadpoolctl_available", lambda: not INSTALLED)
    installed = "is" if INSTALLED else "is not"
    assert list(failed(result).values()) == [f"it returned {not INSTALLED}, but threadpoolctl {installed} installed"]
    result = grade_mine("threadpoolctl_available", lambda: "yes")
    assert list(failed(result).values()) == ["it returned 'yes': the answer is True or False"]


def test_a_blas_threads_that_changes_nothing_fails():
    if INSTALLED and grading._blas_threads() in ([], [1]):
        pytest.skip("BLAS already runs on one thread (or is not seen): a block doing nothing looks right")
    result = grade_mine("blas_threads", blas_threads_doing_nothing)
    assert result.status == FAILED
    if INSTALLED:
        assert "inside blas_threads(1) BLAS uses" in failed(result)[
            "inside blas_threads(1) BLAS uses one thread, after it as many as before"]
    else:
        assert failed(result) == {"without threadpoolctl, entering blas_threads(2) raises": (
            "blas_threads(2) ran without threadpoolctl, so the thread count did not change: raise an error saying "
            "that threadpoolctl is needed (or OPENBLAS_NUM_THREADS before starting)")}


def test_a_blas_threads_without_the_count_argument_is_named():
    result = grade_mine("blas_threads", lambda n: contextlib.nullcontext())
    assert failed(result)["takes the reference's arguments"].startswith("blas_threads lacks the argument(s) count")

"""Shared fixtures of tt-learn's tests: grading a component of a learner's distribution
("my-dist") on a registry built by hand from tt-core's and tt-learn's own registrations."""

from __future__ import annotations

import pytest
from tt_core import _plugin as core_plugin
from tt_core.grading import FAILED, PASSED, SKIPPED, Grade, grade
from tt_core.plugins import ComponentRegistry
from tt_learn import _plugin as learn_plugin


def _grade_mine(kind: str, name: str, obj, seed: int = 0) -> Grade:
    """Grade ``obj`` as component ``kind:name`` of my-dist against tt-learn's (or tt-core's)."""
    registry = ComponentRegistry()
    for dist, plugin in (("tt-core", core_plugin), ("tt-learn", learn_plugin)):
        registrar = registry.registrar(dist, "1.0")
        plugin.tt_register_components(registrar)
        registrar.commit()
    mine = registry.registrar("my-dist", "0.1")
    mine.register(kind, name, obj)
    mine.commit()
    component = next(c for c in registry.providers(kind, name) if c.dist == "my-dist")
    return grade(component, registry, seed)


def _assert_passes(result: Grade) -> None:
    assert result.status == PASSED, [(c.name, c.detail) for c in result.cases if not c.passed]
    assert result.cases and all(c.status in (PASSED, SKIPPED) for c in result.cases)


def _assert_fails(result: Grade, case_starts: str, diagnosis: str) -> str:
    """The grade failed, and a case whose name starts with ``case_starts`` failed with a
    detail containing ``diagnosis``; returns that detail."""
    failed = {c.name: c.detail for c in result.cases if c.status == FAILED}
    assert result.status == FAILED and failed, result.cases
    matching = [detail for name, detail in failed.items() if name.startswith(case_starts)]
    assert matching, f"no failed case starts with {case_starts!r}: {failed}"
    found = [detail for detail in matching if diagnosis in detail]
    assert found, matching
    return found[0]


@pytest.fixture
def grade_mine():
    """``grade_mine(kind, name, obj, seed=0) -> Grade``."""
    return _grade_mine


@pytest.fixture
def assert_passes():
    """``assert_passes(grade)``: passed, every case passed or skipped."""
    return _assert_passes


@pytest.fixture
def assert_fails():
    """``assert_fails(grade, case_starts, diagnosis) -> detail``."""
    return _assert_fails

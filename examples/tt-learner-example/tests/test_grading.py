"""What ``tt-milestones check`` does, without the command: tt-core's grader on every component
of the package, against the built-in one, on inputs drawn from several seeds."""

from __future__ import annotations

import pytest
from tt_core import grading

DIST = "tt-learner-example"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_component_passes_its_check(registry, seed):
    grades = grading.grade_all(registry.from_dist(DIST), registry, seed)
    assert len(grades) == 8
    for grade in grades:
        failed = [(case.name, case.status, case.detail) for case in grade.cases if case.status != grading.PASSED]
        assert grade.status == grading.PASSED, (grade.kind, grade.name, failed)
        assert grade.reference in {"tt-core", "tt-learn"}

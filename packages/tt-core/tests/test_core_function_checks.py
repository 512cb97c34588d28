"""The checker of kind ``function`` (it hands a function to the check registered for its name,
else calls it on its example like the reference) and :func:`compare_values`, on registries
built by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core as tt
from tt_core import _plugin
from tt_core.grading import (
    ERROR,
    FAILED,
    NO_REFERENCE,
    PASSED,
    SKIPPED,
    Example,
    Grader,
    Mismatch,
    check_function,
    compare_values,
    grade,
)
from tt_core.plugins import ComponentRegistry

SEEDS = (0, 1, 2)


def normalized(x, scale=1.0):
    """The reference: ``x`` scaled to unit sum, times ``scale``; and its total."""
    x = np.asarray(x, dtype=np.float64)
    return {"values": scale * x / x.sum(), "total": float(x.sum())}


def example(rng):
    return Example(args=(rng.uniform(0.5, 2.0, 5),), kwargs={"scale": float(rng.uniform(1, 3))})


def registry_with(*components, reference=normalized, with_example: bool = True) -> ComponentRegistry:
    """tt-core's checkers, ``function:normalized`` from tt-core (the reference) with its example,
    and ``(kind, name, obj)`` from my-dist."""
    registry = ComponentRegistry()
    core = registry.registrar("tt-core", tt.__version__)
    _plugin.tt_register_components(core)
    if reference is not None:
        core.register("function", "normalized", reference)
    if with_example:
        core.register("example", "function:normalized", example)
    core.commit()
    mine = registry.registrar("my-dist", "0.1")
    for kind, name, obj in components:
        mine.register(kind, name, obj)
    mine.commit()
    return registry


def grade_mine(registry: ComponentRegistry, name: str = "normalized", seed: int = 0):
    component = next(c for c in registry.providers("function", name) if c.dist == "my-dist")
    return grade(component, registry, seed)


def statuses(result) -> dict[str, str]:
    return {case.name: case.status for case in result.cases}


def test_tt_core_registers_the_function_checker():
    assert registry_with().get("checker", "function") is check_function


@pytest.mark.parametrize("seed", SEEDS)
def test_a_function_equal_to_the_reference_on_its_example_passes(seed):
    def mine(x, scale=1.0):
        x = np.asarray(x, dtype=np.float64)
        total = np.add.reduce(x)
        return {"total": float(total), "values": x * (scale / total)}

    result = grade_mine(registry_with(("function", "normalized", mine)), seed=seed)
    assert result.status == PASSED, result.cases
    assert statuses(result) == {"takes the reference's arguments": PASSED,
                                "normalized called on its example's arguments gives the reference's result": PASSED}


def test_a_wrong_result_on_the_example_is_diagnosed_by_key_and_element():
    def ignores_scale(x, scale=1.0):
        x = np.asarray(x, dtype=np.float64)
        return {"values": x / x.sum(), "total": float(x.sum())}

    result = grade_mine(registry_with(("function", "normalized", ignores_scale)))
    assert result.status == FAILED
    detail = result.cases[-1].detail
    assert detail.startswith("the result of normalized['values'] differs at [0]: yours ")
    assert "yours is " in detail and "times the reference everywhere" in detail


def test_a_missing_argument_is_named_with_the_reference_signature():
    def no_scale(x):
        return normalized(x)

    result = grade_mine(registry_with(("function", "normalized", no_scale)))
    assert result.status == FAILED
    assert result.cases[0].name == "takes the reference's arguments"
    assert result.cases[0].detail == "normalized lacks the argument(s) scale: the reference's signature is " \
                                     "normalized(x, scale=1.0)"


def test_without_an_example_only_the_signature_is_checked_and_the_results_are_skipped():
    result = grade_mine(registry_with(("function", "normalized", lambda x, scale=1.0: None), with_example=False))
    assert statuses(result) == {"takes the reference's arguments": PASSED, "results": SKIPPED}
    assert "no check of function 'normalized' is known" in result.cases[1].detail
    assert "checker:function:normalized" in result.cases[1].detail
    assert result.status == PASSED


def test_a_function_without_a_reference_is_no_reference_and_a_non_callable_fails():
    result = grade_mine(registry_with(("function", "normalized", normalized), reference=None, with_example=False))
    assert statuses(result) == {"can be called": PASSED, "results": SKIPPED}
    assert result.status == NO_REFERENCE and result.reference is None

    result = grade_mine(registry_with(("function", "normalized", normalized), reference=None))
    assert statuses(result) == {"can be called": PASSED, "normalized called on its example's arguments gives a "
                                                         "result": PASSED}
    assert result.status == NO_REFERENCE

    result = grade_mine(registry_with(("function", "normalized", 42), reference=None, with_example=False))
    assert result.status == FAILED
    assert result.cases[0].detail == "function:normalized is a int, which cannot be called"


def test_the_check_registered_for_the_name_is_the_one_used():
    seen = []

    def check_normalized(grader, yours, reference, name):
        seen.append((yours, reference, name))
        with grader.case("its own contract"):
            grader.compare(yours([1.0, 3.0])["total"], 5.0, "the total")

    registry = registry_with(("function", "normalized", normalized), ("checker", "function:normalized",
                                                                      check_normalized))
    result = grade_mine(registry)
    assert seen == [(normalized, normalized, "normalized")]
    assert [(c.name, c.status, c.detail) for c in result.cases] == [
        ("its own contract", FAILED, "the total differs: yours 4, reference 5")]


def test_an_example_call_that_raises_fails_the_case_and_a_broken_example_is_an_error():
    def broken(x, scale=1.0):
        raise ValueError("no")

    result = grade_mine(registry_with(("function", "normalized", broken)))
    assert result.cases[-1].status == FAILED
    assert result.cases[-1].detail.startswith("raised ValueError: no")

    registry = registry_with(("function", "normalized", normalized), with_example=False)
    bad = registry.registrar("tt-core")
    bad.register("example", "function:normalized", lambda rng: (1, 2))
    bad.commit()
    result = grade_mine(registry)
    assert result.status == ERROR
    assert "example function:normalized returned a tuple, not an Example" in result.cases[-1].detail


# -- compare_values --------------------------------------------------------------------------


def diagnosis(yours, reference, **options) -> str | None:
    grader = Grader(ComponentRegistry(), 0)
    try:
        compare_values(grader, yours, reference, "the result", **options)
    except Mismatch as error:
        return str(error)
    return None


def test_compare_values_walks_dicts_sequences_and_plain_values():
    assert diagnosis({"a": [1, np.ones(2)], "b": "x"}, {"a": (1, np.ones(2)), "b": "x"}) is None
    assert diagnosis({"a": 1}, {"a": 1, "b": 2}) == "the result has no 'b' (the reference's keys: 'a', 'b')"
    assert diagnosis([1, 2], {"a": 1}) == "the result is a list, the reference's a dict"
    assert diagnosis([1, 2], [1, 2, 3]) == "the result is a list of 2, the reference's a list of 3"
    assert diagnosis(np.ones(3), [1, 2]) == "the result is a ndarray, the reference's a list of 2"
    assert diagnosis({"a": [0.0, np.array([1.0, 2.0])]}, {"a": [0.0, np.array([1.0, 2.5])]}) == \
        "the result['a'][1] differs at [1]: yours 2, reference 2.5 (1 of 2 elements differ)"
    assert diagnosis(3, None) == "the result is a int, the reference gives None"
    assert diagnosis("mean", "sum") == "the result is 'mean', the reference's 'sum'"
    assert diagnosis(np.float32(0.5), 0.5) == "the result is float32, the reference float64"
    assert diagnosis(np.float32(0.5), 0.5, check_dtype=False) is None
    assert diagnosis(1.0 + 1e-7, 1.0) is None

"""The checks of tt-language's functions (``generate``, ``random_windows``), found by tt-core's
``function`` checker under ``checker:function:<name>``: a learner's correct versions (written
here, differently from the built-ins) pass under several seeds; each deliberately wrong one
fails with the diagnosis a learner needs. Registries are built by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core
from tt_core import set_grad_enabled
from tt_core.grading import FAILED, PASSED, check_function, grade
from tt_core.plugins import ComponentRegistry
from tt_language import grading
from tt_language.corpora import random_windows as builtin_random_windows
from tt_language.generation import generate as builtin_generate

SEEDS = (0, 1, 2)
MINE = "my-language"
BUILTIN = {"generate": builtin_generate, "random_windows": builtin_random_windows}


def grade_mine(name: str, yours, seed: int = 0):
    """Grade function ``name`` of my-language against tt-language's, with tt-core's function
    checker and tt-language's checks."""
    registry = ComponentRegistry()
    core = registry.registrar("tt-core")
    core.register("checker", "function", check_function)
    core.commit()
    builtin = registry.registrar("tt-language")
    grading.register(builtin)
    builtin.register("function", name, BUILTIN[name])
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register("function", name, yours)
    learner.commit()
    return grade(next(c for c in registry.providers("function", name) if c.dist == MINE), registry, seed)


def assert_passes(result) -> None:
    assert result.status == PASSED, [(c.name, c.detail) for c in result.cases if not c.passed]
    assert all(c.status == PASSED for c in result.cases)


def assert_fails(result, case_contains: str, diagnosis: str) -> None:
    """The grade failed, and a case whose name contains ``case_contains`` failed with ``diagnosis``."""
    failed = {c.name: c.detail for c in result.cases if c.status == FAILED}
    assert result.status == FAILED, result.cases
    matching = [detail for name, detail in failed.items() if case_contains in name]
    assert matching, f"no failed case names {case_contains!r}: {failed}"
    assert any(diagnosis in detail for detail in matching), matching


# -- generate --------------------------------------------------------------------------------


def make_generate(window: bool = True, stops: bool = True, restore_mode: bool = True, use_seed: bool = True):
    """A learner's generate: softmax sampling with rng.choice, greedy at temperature 0; the
    options make it wrong."""

    def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, stop=None, seed=None):
        ids = np.atleast_2d(np.asarray(prompt_ids)).astype(np.int64)
        rng = np.random.default_rng(seed) if seed is not None and use_seed else tt_core.rng.generator()
        stop_ids = [] if stop is None or not stops else [stop] if np.isscalar(stop) else list(stop)
        done = np.zeros(len(ids), dtype=bool)
        was_training = model.training
        model.eval()
        previous = set_grad_enabled(False)
        try:
            for _ in range(max_new_tokens):
                context = ids[:, -model.block_size:] if window else ids
                logits = model(context).data[:, -1].astype(np.float64)
                if temperature == 0:
                    new = logits.argmax(axis=-1)
                else:
                    logits = logits / temperature
                    if top_k is not None:
                        logits[logits < np.sort(logits, axis=-1)[:, [-top_k]]] = -np.inf
                    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
                    p /= p.sum(axis=-1, keepdims=True)
                    new = np.array([rng.choice(len(row), p=row) for row in p])
                if stop_ids:
                    new = np.where(done, ids[:, -1], new)
                    done |= np.isin(new, stop_ids)
                ids = np.concatenate([ids, new[:, None]], axis=1)
                if stop_ids and done.all():
                    break
        finally:
            set_grad_enabled(previous)
            if restore_mode:
                model.train(was_training)
        return ids[0] if np.ndim(prompt_ids) == 1 else ids

    return generate


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_generate_passes(seed):
    result = grade_mine("generate", make_generate(), seed)
    assert_passes(result)
    assert len(result.cases) == 7


@pytest.mark.parametrize(("options", "case", "diagnosis"), [
    ({"window": False}, "greedy: 6 ids and 10 new tokens, past block_size 8", "raised ShapeError"),
    ({"stops": False}, "greedy with a stop id", "the ids of one prompt with stop="),
    ({"restore_mode": False}, "no new tokens give the prompt back", "after generate the model is in eval mode"),
    ({"use_seed": False}, "sampling (temperature=1", "the ids of a second call with the same seed differs"),
])
def test_each_wrong_generate_fails_with_its_diagnosis(options, case, diagnosis):
    assert_fails(grade_mine("generate", make_generate(**options)), case, diagnosis)


def test_the_stop_id_chosen_cuts_a_row_short():
    new = np.array([[3, 3, 3], [5, 2, 2]])
    assert grading._stop_id(new) == 5
    assert grading._stop_id(np.array([[4, 4]])) == 4


# -- random_windows --------------------------------------------------------------------------


def make_random_windows(last_start: bool = True, shifted: bool = True):
    def random_windows(ids, block_size, batch_size, rng):
        if len(ids) < block_size + 1:
            raise ValueError(f"{len(ids)} ids are too few for windows of {block_size} and a next token")
        starts = rng.integers(0, len(ids) - block_size + (0 if last_start else -1), batch_size)
        x = np.stack([ids[s:s + block_size] for s in starts])
        y = np.stack([ids[s + shifted:s + shifted + block_size] for s in starts])
        return x, y

    return random_windows


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_random_windows_passes(seed):
    assert_passes(grade_mine("random_windows", make_random_windows(), seed))


@pytest.mark.parametrize(("options", "case", "diagnosis"), [
    ({"last_start": False}, "over 2000 windows every one of the", "windows never start at ["),
    ({"shifted": False}, "y the next ids", "row 0 of y differs"),
])
def test_each_wrong_random_windows_fails_with_its_diagnosis(options, case, diagnosis):
    assert_fails(grade_mine("random_windows", make_random_windows(**options)), case, diagnosis)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_built_in_functions_pass_under_several_seeds(name):
    for seed in SEEDS:
        assert_passes(grade_mine(name, BUILTIN[name], seed))

"""tt-perf's checker: the built-in quantization, pruning, KV cache and profiler pass under
several seeds; wrong ones fail, each with the diagnosis that names what is wrong. Registries
are built by hand."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import tt_core
import tt_core.grading
from tt_core.grading import FAILED, NO_REFERENCE, PASSED, SKIPPED, grade
from tt_core.plugins import ComponentRegistry
from tt_perf import CachedDecoder, QuantizedLinear, distill, grading, kv_generate, profile, prune, quantize_int8

SEEDS = (0, 1, 2)
MINE = "my-perf"


def grade_mine(name: str, yours, reference, seed: int = 0):
    """Grade ``yours`` (perf component ``name`` of my-perf) against ``reference`` (tt-perf's)."""
    registry = ComponentRegistry()
    builtin = registry.registrar("tt-perf")
    grading.register(builtin)
    if reference is not None:
        builtin.register("perf", name, reference)
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register("perf", name, yours)
    learner.commit()
    component = next(c for c in registry.providers("perf", name) if c.dist == MINE)
    return grade(component, registry, seed)


def failures(result) -> dict[str, str]:
    return {case.name: case.detail for case in result.cases if case.status == FAILED}


def assert_fails(result, case_contains: str, diagnosis: str) -> None:
    """The grade failed, and a case whose name contains ``case_contains`` failed with ``diagnosis``."""
    failed = failures(result)
    assert result.status == FAILED and failed, result.cases
    matching = {name: detail for name, detail in failed.items() if case_contains in name}
    assert matching, f"no failed case names {case_contains!r}: {failed}"
    assert any(diagnosis in detail for detail in matching.values()), matching


BUILTIN = {"quantize_int8": quantize_int8, "prune": prune, "kv_generate": kv_generate, "profile": profile}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", BUILTIN)
def test_the_built_in_components_pass(name, seed):
    result = grade_mine(name, BUILTIN[name], BUILTIN[name], seed)
    assert result.status == PASSED, failures(result)
    assert len(result.cases) >= 4 and all(case.status == PASSED for case in result.cases)


# -- wrong implementations ---------------------------------------------------------------------


def float_copy(model, calibration, **options):
    """'Quantizes' by copying: nothing is int8."""
    return copy.deepcopy(model)


def in_place(model, calibration, **options):
    return quantize_int8(model, calibration, inplace=True)


def unscaled(model, calibration, **options):
    """int8 codes without a scale: every weight rounded to an integer."""
    quantized = quantize_int8(model, calibration, **options)
    for layer in quantized.modules():
        if hasattr(layer, "weight_scale"):
            layer.weight_scale.data = np.ones_like(layer.weight_scale.data)
    return quantized


def per_layer(model, sparsity, **options):
    return prune(model, sparsity, scope="layer")


def returns_nothing(model, sparsity, **options):
    prune(model, sparsity, **options)


def forgetful(model, sparsity, **options):
    """Prunes, but its pruner's apply() no longer zeroes anything."""
    pruner = prune(model, sparsity, **options)
    pruner.apply = lambda: pruner
    return pruner


def also_biases(model, sparsity, **options):
    pruner = prune(model, sparsity, **options)
    for layer in pruner.layers.values():
        layer.bias.data[:2] = 0
    return pruner


def one_token_short(model, prompts, count, **options):
    return kv_generate(model, prompts, max(count - 1, 0), **options)


class PositionBlind(CachedDecoder):
    def step(self, ids, positions, cache):
        return super().step(ids, np.zeros_like(positions), cache)


def position_blind(model, prompts, count, **options):
    return PositionBlind(model).generate(prompts, count, **options)


def half_linear_flops(model, example_input, **options):
    """Counts a multiply-add of Linear as one FLOP."""
    def count(module, input_shapes, output_shape):
        return int(np.prod(output_shape)) * module.in_features

    return profile(model, example_input, counters={"Linear": count}, **options)


@pytest.mark.parametrize("name, wrong, case, diagnosis", [
    ("quantize_int8", float_copy, "int8 codes really stored", "holds 0 int8 values for the 976 weights"),
    ("quantize_int8", in_place, "the float model left as it was", "quantizing changed the float model's layers"),
    ("quantize_int8", unscaled, "outputs close to the float model's", "the outputs differ from the float model's by"),
    ("prune", per_layer, "the smallest", "was pruned while one of"),
    ("prune", returns_nothing, "the zeros stay zero", "prune() returned NoneType: return the pruner"),
    ("prune", forgetful, "the zeros stay zero", "after apply() differs at"),
    ("prune", also_biases, "the smallest", "the bias of layer 0 differs at [0]"),
    ("kv_generate", one_token_short, "one prompt", "the generated ids has shape"),
    ("kv_generate", position_blind, "a list of prompts", "differs at"),
    ("profile", half_linear_flops, "MLP", "layer 0 (Linear): 1536 FLOPs, the reference's 3200"),
])
def test_a_wrong_component_fails_with_its_diagnosis(name, wrong, case, diagnosis):
    assert_fails(grade_mine(name, wrong, BUILTIN[name]), case, diagnosis)


# -- components without a contract check -------------------------------------------------------


def test_a_component_without_a_contract_check_is_checked_for_its_arguments():
    result = grade_mine("distill", distill, distill)
    assert [case.status for case in result.cases] == [PASSED, PASSED, SKIPPED]
    assert "milestone 06 measures what it gives" in result.cases[-1].detail

    def short_distill(student, teacher, batches, optimizer, *, epochs=1):
        return []

    assert_fails(grade_mine("distill", short_distill, distill), "takes the reference's arguments",
                 "distill lacks the argument(s) temperature, alpha, on_epoch")


def test_a_perf_tool_without_a_built_in_counterpart_is_reported_without_reference():
    result = grade_mine("fuse_everything", lambda model: model, None)
    assert result.status == NO_REFERENCE
    assert [case.status for case in result.cases] == [PASSED, SKIPPED]
    assert_fails(grade_mine("fuse_everything", 0.5, None), "can be called", "perf:fuse_everything is a float")


@pytest.mark.parametrize("key", sorted(grading.EXAMPLES))
def test_the_quantized_layers_pass_the_layer_checker_with_their_examples(key):
    registry = tt_core.get_registry()
    kind, name = key.split(":")
    result = grade(registry.reference(kind, name), registry, seed=0)
    assert result.status == PASSED, failures(result)
    assert any(case.name.startswith("forward in eval mode") and case.passed for case in result.cases)


class IgnoresZeroPoint(QuantizedLinear):
    def _quantized_input(self, x):
        return np.clip(np.round(x / self.input_scale.data), 0, 255)


def test_a_wrong_quantized_layer_fails_the_layer_checker():
    registry = ComponentRegistry()
    builtin = registry.registrar("tt-perf")
    builtin.register("checker", "layer", tt_core.grading.check_module)
    builtin.register("layer", "QuantizedLinear", QuantizedLinear)
    grading.register(builtin)
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register("layer", "QuantizedLinear", IgnoresZeroPoint)
    learner.commit()
    mine = next(c for c in registry.providers("layer", "QuantizedLinear") if c.dist == MINE)
    assert_fails(grade(mine, registry, 0), "forward in eval mode", "output in eval mode differs")


def test_the_plugin_registers_the_checker_and_every_milestone_component():
    registry = tt_core.get_registry()
    assert registry.chosen("checker", "perf").dist == "tt-perf"
    from tt_perf._plugin import FUNCTIONS, PERF

    for kind, table in (("perf", PERF), ("function", FUNCTIONS)):
        for name, obj in table.items():
            assert registry.get(kind, name) is obj

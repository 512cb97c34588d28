"""The checkers of tt-learn's kinds: what a correct gradient rule, loss, optimizer and
scheduler does, written as checks against the built-in one (see :mod:`tt_core.grading` for
how grading works).

* ``grad_rule`` (:func:`check_grad_rule`): the rule paired with the built-in kernel of its op,
  each input's gradient against central differences in float64 and against the built-in rule,
  on the op's sample calls (broadcast shapes too); a rule for an op without a built-in kernel
  gets the central differences only.
* ``loss`` (:func:`check_loss`): values and input gradients against the reference's, for every
  reduction the reference accepts, and on inputs 100 times larger where the reference is finite.
* ``optimizer`` (:func:`check_optimizer`): 25 steps on identical parameters and gradients, for
  the defaults and for each option the reference's constructor accepts, two parameter groups,
  and a state-dict round trip.
* ``scheduler`` (:func:`check_scheduler`): the learning rates (and momenta) over 30 steps, and
  a state-dict round trip.

:data:`EXAMPLES` says how to build and feed tt-learn's losses and schedulers.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from tt_core import Parameter, Tensor
from tt_core.grading import (
    Example,
    Grader,
    Mismatch,
    as_tensors,
    call_text,
    central_differences,
    describe_difference,
    format_value,
    op_samples,
    reference_rule_of,
    rule_cases,
    run_kernel,
)

from .optim import SGD

__all__ = ["EXAMPLES", "check_grad_rule", "check_loss", "check_optimizer", "check_scheduler"]

# ----------------------------------------------------------------------------------------
# Gradient rules
# ----------------------------------------------------------------------------------------


def check_grad_rule(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``grad_rule``: the rule with the built-in kernel of its op.

    Each sample call of the op (:func:`tt_core.grading.op_samples`) is run through the kernel
    in float64 and the rule's gradients are checked: one per input, each of its input's shape
    (a broadcast operand's gradient summed back), equal to the built-in rule's (the built-in
    ``grad_rule``, or the rule inside the built-in ``Op``) and to central differences; then
    the dtype kept in float32. A rule for an op without a built-in kernel runs with the kernel
    of its own distribution and is checked against central differences only (no reference).
    """
    kernel = grader.registry.reference("op", name)
    if kernel is None:
        own = [c for c in grader.registry.providers("op", name) if c.dist == grader.dist]
        kernel = own[0] if own else (grader.registry.chosen("op", name) if grader.registry.has("op", name) else None)
    if kernel is None:
        with grader.case("a kernel of the same name exists"):
            known = ", ".join(grader.registry.names("op")) or "none"
            raise Mismatch(f"no op named {name!r} is registered, so this rule never runs (a misspelt name? "
                           f"known ops: {known})")
        return
    builtin = grader.registry.is_builtin(kernel.dist)
    rule, rule_dist = reference_rule_of(grader.registry, name) if builtin else (None, None)
    grader.reference = rule_dist
    samples = op_samples(grader, name, kernel.obj.forward)
    if not samples:
        grader.skip("gradients", f"no sample call of op {name!r} is known and probing it failed: register "
                                 f"example:op:{name} to describe a call")
        return
    rule_cases(grader, yours.backward, kernel.obj.forward, name, samples, rule)
    if rule is not None:
        arrays = samples[0].arrays(grader.rng, np.float64)
        (mine_ctx, out), (ref_ctx, _) = (run_kernel(kernel.obj.forward, arrays, samples[0].attrs) for _ in range(2))
        grad = grader.rng.standard_normal(out.shape)
        grader.time(lambda: yours.backward(mine_ctx, grad), lambda: rule(ref_ctx, grad))


# ----------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


def _accepted_reductions(cls, kwargs: dict) -> list[str]:
    """The reductions ``cls`` can be built with (``[""]``: it takes no ``reduction`` at all)."""
    accepted = []
    for reduction in REDUCTIONS:
        try:
            cls(**kwargs, reduction=reduction)
        except (TypeError, ValueError):
            continue
        accepted.append(reduction)
    return accepted or [""]


def _loss_value_and_gradient(grader: Grader, cls, kwargs: dict, inputs: tuple, weights) -> tuple:
    """The loss of ``inputs`` and, with an autograd engine, its gradient with respect to the
    first input (of ``sum(loss * weights)``)."""
    loss = cls(**kwargs)
    tensors = as_tensors(inputs)
    tensors[0].requires_grad_(True)
    value = loss(*tensors)
    if not isinstance(value, Tensor):
        raise Mismatch(f"the loss returned a {type(value).__name__}, not a Tensor")
    engine = grader.autograd
    if engine is None:
        return value.data, None
    if not value.requires_grad:
        raise Mismatch("the loss does not require grad: the graph was cut (an operation on .data or a NumPy "
                       "array instead of on Tensors?)")
    engine.backward(value, np.broadcast_to(weights, value.shape).astype(value.dtype))
    return value.data, tensors[0].grad


def _loss_case(grader: Grader, yours, reference, kwargs: dict, inputs: tuple, title: str) -> None:
    with grader.case(title):
        weights = grader.rng.standard_normal(reference(**kwargs)(*as_tensors(inputs)).shape)
        expected, expected_grad = _loss_value_and_gradient(grader, reference, kwargs, inputs, weights)
        value, grad = _loss_value_and_gradient(grader, yours, kwargs, inputs, weights)
        grader.compare(value, expected, what="the loss", rtol=1e-4, atol=1e-6)
        if expected_grad is not None:
            grader.compare(grad, expected_grad, what="gradient of the input", rtol=1e-4, atol=1e-6,
                           check_dtype=False)


def check_loss(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``loss``: values and input gradients equal to the reference's.

    With the loss's example (inputs and target of the right kinds): for the default
    constructor and the example's options (e.g. ``label_smoothing``), for every reduction the
    reference accepts, the value and (with an autograd engine) the gradient with respect to
    the input; then the input 100 times larger, where naive formulas overflow, when the
    reference's value is finite there. Without a reference: finite values, and the gradient
    against central differences in float64.
    """
    example = grader.example("loss", name)
    if example is None:
        grader.skip("values and gradients", f"no example is registered as example:loss:{name}, so the checker "
                                            "does not know what inputs and targets it takes")
        return
    if grader.autograd is None:
        grader.skip("gradients", "no autograd engine is installed: values only")
    if reference is None:
        _check_loss_alone(grader, yours, example, name)
        return
    configs = [{}] + ([dict(example.kwargs)] if example.kwargs else [])
    for kwargs in configs:
        for reduction in _accepted_reductions(reference, kwargs):
            options = {**kwargs, "reduction": reduction} if reduction else kwargs
            _loss_case(grader, yours, reference, options, example.inputs,
                       f"value and input gradient of {call_text(name, Example(kwargs=options))}")
    large = (np.asarray(example.inputs[0]) * 100, *example.inputs[1:])
    options = dict(example.kwargs)
    try:
        with np.errstate(all="ignore"):
            finite = bool(np.isfinite(reference(**options)(*as_tensors(large)).data).all())
    except Exception:  # the reference does not take such inputs (probabilities above 1)
        finite = False
    if finite:
        _loss_case(grader, yours, reference, options, large,
                   f"inputs 100 times larger (up to {format_value(np.abs(large[0]).max())}; naive formulas overflow)")
    tensors_mine, tensors_ref = as_tensors(example.inputs), as_tensors(example.inputs)
    mine_loss, ref_loss = yours(**options), reference(**options)
    grader.time(lambda: mine_loss(*tensors_mine), lambda: ref_loss(*tensors_ref))


def _check_loss_alone(grader: Grader, yours, example: Example, name: str) -> None:
    with grader.case(f"{call_text(name, example)} gives a finite value"):
        value = yours(**example.kwargs)(*as_tensors(example.inputs))
        if not np.isfinite(np.asarray(value.data)).all():
            raise Mismatch(f"the loss is {format_value(np.asarray(value.data).ravel()[0])}")
    engine = grader.autograd
    if engine is None:
        return
    with grader.case("gradient of the input equals central differences (float64)"):
        tensors = as_tensors(example.inputs, dtype=np.float64)
        tensors[0].requires_grad_(True)
        loss = yours(**example.kwargs)
        value = loss(*tensors)
        weights = grader.rng.standard_normal(value.shape)
        engine.backward(value, weights)
        x = tensors[0].data

        def total() -> float:
            return float(np.sum(np.asarray(loss(*tensors).data, dtype=np.float64) * weights))

        grader.compare(tensors[0].grad, central_differences(total, x), what="gradient of the input",
                       against="central differences", rtol=1e-4, atol=1e-6, check_dtype=False)


# ----------------------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------------------

STEPS = 25
LR = 0.05  # large enough that 25 steps move the parameters well beyond float32 rounding


def _options(cls) -> tuple[dict[str, Any], list[str]]:
    """The keyword options of an optimizer class after ``params`` with their defaults, and the
    names of those without a default."""
    parameters = list(inspect.signature(cls).parameters.values())[1:]
    keyword = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ({p.name: p.default for p in keyword if p.default is not p.empty},
            [p.name for p in keyword if p.default is p.empty])


def _varied(value):
    """Another valid value of a hyper-parameter, far enough from ``value`` to change the
    trajectory: a flipped flag, a rate moved within [0, 1), a tolerance made visible; None
    when there is no obvious other value (strings, None)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        if value == 0:
            return 0.5
        if value < 1e-4:
            return 0.01  # eps: visible against gradients of order 1
        if value < 0.5:
            return min(10 * value, 0.5)
        return value**2 if value < 1 else 2 * value
    if isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
        return tuple(_varied(v) for v in value)
    return None


def _text(options: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


class _Run:
    """Identical starting parameters and per-step gradients for every optimizer compared."""

    def __init__(self, rng: np.random.Generator, steps: int = STEPS) -> None:
        self.start = [rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)]
        self.grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in self.start] for _ in range(steps)]

    def params(self, values=None) -> list[Parameter]:
        return [Parameter(np.array(v)) for v in (values or self.start)]


def _steps(optimizer, params: list[Parameter], grads: list[list], skip: tuple = ()) -> list[list[np.ndarray]]:
    """Run ``optimizer`` over ``grads`` (one list per step); ``skip`` holds ``(step, index)`` of
    parameters left without a gradient. Returns the parameters' values after every step."""
    history = []
    for step, step_grads in enumerate(grads, start=1):
        for index, (p, g) in enumerate(zip(params, step_grads)):
            p.grad = None if (step, index) in skip else Tensor(np.array(g))
        optimizer.step()
        history.append([np.array(p.data) for p in params])
    return history


def _first_difference(yours: list, expected: list, first_step: int = 1, rtol: float = 1e-4,
                      atol: float = 1e-5) -> str | None:
    """The first step at which a parameter differs: ``"parameter 0 after step 3 differs ..."``."""
    for step, (mine, theirs) in enumerate(zip(yours, expected), start=first_step):
        for index, (a, b) in enumerate(zip(mine, theirs)):
            problem = describe_difference(a, b, f"parameter {index} after step {step}", rtol, atol)
            if problem is not None:
                return problem
    return None


def _trajectory(cls, options: dict, run: _Run) -> list:
    params = run.params()
    return _steps(cls(params, **options), params, run.grads)


def _buildable(cls, options: dict, run: _Run) -> bool:
    try:
        cls(run.params(), **options)
    except (TypeError, ValueError):
        return False
    return True


def _configurations(reference, run: _Run) -> list[dict]:
    """The option sets to compare: the defaults, then each option changed. An option that is
    invalid alone (nesterov without momentum) or changes nothing alone (dampening without
    momentum) is combined with another changed option that makes it count."""
    defaults, _ = _options(reference)
    base = {"lr": LR} if "lr" in defaults else {}
    configs = [base]
    varied = {k: _varied(v) for k, v in defaults.items() if k != "lr" and _varied(v) is not None}
    for option, value in varied.items():
        partners = [{}] + [{other: v} for other, v in varied.items() if other != option]
        for partner in partners:
            config, without = {**base, option: value, **partner}, {**base, **partner}
            if not _buildable(reference, config, run):
                continue
            if _buildable(reference, without, run) and not _changes(reference, config, without, run):
                continue  # the option changes nothing with this partner
            configs.append(config)
            break
    return configs


def _changes(reference, config: dict, without: dict, run: _Run) -> bool:
    """Whether the steps with ``config`` differ from those with ``without``."""
    return _first_difference(_trajectory(reference, config, run), _trajectory(reference, without, run)) is not None


def _state_dict_round_trip(cls, options: dict, run: _Run) -> str | None:
    """Run 10 steps, load the state dict into a fresh optimizer built with another lr, run the
    rest on both: the restored one must follow the original exactly."""
    half = len(run.grads) // 2
    params = run.params()
    original = cls(params, **options)
    _steps(original, params, run.grads[:half])
    restored_params = run.params([p.data for p in params])
    restored = cls(restored_params, **{**options, "lr": options.get("lr", LR) * 0.1})
    restored.load_state_dict(copy.deepcopy(original.state_dict()))
    expected = _steps(original, params, run.grads[half:])
    got = _steps(restored, restored_params, run.grads[half:])
    problem = _first_difference(got, expected, first_step=half + 1, rtol=1e-6, atol=1e-7)
    if problem is not None:
        return (f"after load_state_dict, {problem} (the state dict must restore the state and every "
                "hyper-parameter)")
    return None


def check_optimizer(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``optimizer``: the same steps as the reference's.

    For the defaults (with ``lr`` = 0.05) and for each option the reference's constructor
    accepts, changed on its own (or with the option that makes it count): 25 steps from the
    same parameters with the same gradients, compared after every step. Then two parameter
    groups (the second with its own ``lr``, and once without a gradient, which must be
    skipped), and a state-dict round trip for every option set. Without a reference: the
    state-dict round trip for your own options.
    """
    run = _Run(grader.rng)
    if reference is None:
        defaults, required = _options(yours)
        if set(required) - {"lr"}:
            grader.skip("state dict round trip", f"{name} needs {', '.join(required)} without defaults: the "
                                                 "checker cannot build it")
            return
        configs = [{"lr": LR} if "lr" in defaults or "lr" in required else {}]
        with grader.case(f"state dict round trip with {_text(configs[0]) or 'the defaults'}"):
            if (problem := _state_dict_round_trip(yours, configs[0], run)) is not None:
                raise Mismatch(problem)
        return
    configs = _configurations(reference, run)
    for options in configs:
        with grader.case(f"{STEPS} steps with {_text(options)}"):
            problem = _first_difference(_trajectory(yours, options, run), _trajectory(reference, options, run))
            if problem is not None:
                raise Mismatch(f"with {_text(options)}: {problem}")
    with grader.case("two parameter groups (the second with its own lr), a parameter without a gradient skipped"):
        results = []
        for cls in (yours, reference):
            params = run.params()
            groups = [{"params": params[:1]}, {"params": params[1:], "lr": LR / 5}]
            results.append(_steps(cls(groups, **configs[0]), params, run.grads, skip={(3, 1), (4, 0)}))
        if (problem := _first_difference(*results)) is not None:
            raise Mismatch(f"{problem} (parameter 1 is in the second group; it has no gradient at step 3, "
                           "parameter 0 none at step 4)")
    for options in configs:
        with grader.case(f"state dict round trip with {_text(options)}"):
            if (problem := _state_dict_round_trip(yours, options, run)) is not None:
                raise Mismatch(problem)
    mine_params, ref_params = run.params(), run.params()
    mine, ref = yours(mine_params, **configs[0]), reference(ref_params, **configs[0])
    for p, q, g in zip(mine_params, ref_params, run.grads[0]):
        p.grad, q.grad = Tensor(np.array(g)), Tensor(np.array(g))
    grader.time(mine.step, ref.step)


# ----------------------------------------------------------------------------------------
# Schedulers
# ----------------------------------------------------------------------------------------

SCHEDULER_STEPS = 30
TRACKED = ("lr", "momentum", "betas")  # the hyper-parameters a schedule may set


def _optimizer(rng_values: list[np.ndarray]) -> SGD:
    """The optimizer every schedule drives: two groups with different learning rates, momentum."""
    params = [Parameter(np.array(v)) for v in rng_values]
    return SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.02}], lr=0.1, momentum=0.9)


def _schedule(scheduler, optimizer, steps: int) -> list[list[dict]]:
    """The tracked hyper-parameters of every group now and after each of ``steps`` steps."""
    def snapshot() -> list[dict]:
        return [{k: group[k] for k in TRACKED if k in group} for group in optimizer.param_groups]

    history = [snapshot()]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        history.append(snapshot())
    return history


def _schedule_difference(yours: list, expected: list, first_step: int = 0) -> str | None:
    """The first step, group and hyper-parameter at which two schedules differ."""
    for step, (mine, theirs) in enumerate(zip(yours, expected), start=first_step):
        for group, (a, b) in enumerate(zip(mine, theirs)):
            for key, value in b.items():
                if key not in a:
                    return f"after {step} steps, group {group} has no {key!r} (the reference sets it to {value!r})"
                if not np.allclose(a[key], value, rtol=1e-6, atol=1e-12):
                    return (f"{key} of group {group} after {step} steps: yours {a[key]!r}, reference {value!r}")
    return None


def check_scheduler(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``scheduler``: the same learning rates as the reference's.

    Built with the scheduler's example arguments over an SGD with two parameter groups: the
    learning rate (and momentum, where the schedule sets it) of each group at construction and
    after each of 30 steps; then a state-dict round trip (10 steps, load into a fresh
    scheduler, 20 more on both). Without a reference: the round trip only.
    """
    example = grader.example("scheduler", name)
    if example is None:
        grader.skip("learning rates", f"no example is registered as example:scheduler:{name}, so the checker "
                                      "does not know its arguments")
        return
    values = [grader.rng.standard_normal((3, 2)).astype(np.float32), grader.rng.standard_normal(2).astype(np.float32)]
    call = call_text(name, example, first="optimizer")
    if reference is not None:
        with grader.case(f"learning rates over {SCHEDULER_STEPS} steps of {call}"):
            opt, ref_opt = _optimizer(values), _optimizer(values)
            got = _schedule(yours(opt, *example.args, **example.kwargs), opt, SCHEDULER_STEPS)
            expected = _schedule(reference(ref_opt, *example.args, **example.kwargs), ref_opt, SCHEDULER_STEPS)
            if (problem := _schedule_difference(got, expected)) is not None:
                raise Mismatch(problem)
    with grader.case(f"state dict round trip of {call}"):
        opt = _optimizer(values)
        original = yours(opt, *example.args, **example.kwargs)
        _schedule(original, opt, 10)
        restored_opt = _optimizer(values)
        restored = yours(restored_opt, *example.args, **example.kwargs)
        restored.load_state_dict(copy.deepcopy(original.state_dict()))
        expected = _schedule(original, opt, SCHEDULER_STEPS - 10)[1:]
        got = _schedule(restored, restored_opt, SCHEDULER_STEPS - 10)[1:]
        if (problem := _schedule_difference(got, expected, first_step=11)) is not None:
            raise Mismatch(f"after load_state_dict: {problem}")


# ----------------------------------------------------------------------------------------
# Examples of tt-learn's losses and schedulers
# ----------------------------------------------------------------------------------------


def _classes(rng: np.random.Generator, n: int = 5, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return (2 * rng.standard_normal((n, c))).astype(np.float32), rng.integers(0, c, n)


def _log_probabilities(rng: np.random.Generator) -> Example:
    logits, target = _classes(rng)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return Example(inputs=(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)), target))


EXAMPLES: dict[str, Callable[[np.random.Generator], Example]] = {
    "loss:MSELoss": lambda rng: Example(inputs=(rng.standard_normal((4, 3)).astype(np.float32),
                                                rng.standard_normal((4, 3)).astype(np.float32))),
    "loss:BCELoss": lambda rng: Example(inputs=(rng.uniform(0.05, 0.95, 6).astype(np.float32),
                                                rng.random(6).astype(np.float32))),
    "loss:BCEWithLogitsLoss": lambda rng: Example(inputs=((2 * rng.standard_normal(6)).astype(np.float32),
                                                          rng.random(6).astype(np.float32))),
    "loss:CrossEntropyLoss": lambda rng: Example(kwargs={"label_smoothing": 0.1}, inputs=_classes(rng)),
    "loss:NLLLoss": _log_probabilities,
    "scheduler:StepLR": lambda rng: Example(kwargs={"step_size": int(rng.integers(2, 6)),
                                                    "gamma": round(float(rng.uniform(0.3, 0.9)), 2)}),
    "scheduler:CosineAnnealingLR": lambda rng: Example(kwargs={"T_max": int(rng.integers(8, 16)), "eta_min": 0.001}),
    "scheduler:LinearWarmup": lambda rng: Example(kwargs={"warmup_steps": int(rng.integers(5, 12)),
                                                          "start_factor": 0.1}),
    "scheduler:OneCycleLR": lambda rng: Example(kwargs={"max_lr": 0.5, "total_steps": int(rng.integers(32, 45))}),
}

"""The checkers of what trains a model: metrics (kind ``metric``), the trainer (kind
``trainer``), and the functions ``clip_grad_norm_``, ``clip_grad_value_`` and ``batches``
(``function:<name>``), written as checks against the built-in ones (see :mod:`tt_core.grading`
for how grading works).

* ``metric`` (:func:`check_metric`): the value on every form of outputs and targets the
  reference accepts (class scores, scores over a sequence, Tensors, predicted labels, binary
  logits, probabilities with a threshold), and an error where the reference raises one.
* ``trainer`` (:func:`check_trainer`): runs of a few epochs on a tiny random problem from the
  same start as the reference's (same weights, same shuffling): the history (loss per epoch,
  metrics, validation, learning rate) and the trained parameters equal the reference's, with
  metrics and validation, a scheduler stepped per epoch and per batch, gradient clipping and
  early stopping; ``evaluate`` in eval mode; a checkpoint and resume continuing exactly.
* ``function:clip_grad_norm_`` and ``function:clip_grad_value_`` (:func:`check_clip_grad_norm`,
  :func:`check_clip_grad_value`): the clipped gradients (and the norm returned) for several
  limits and norm types, parameters given as a generator or as one Tensor, and the errors.
* ``function:batches`` (:func:`check_batches`): batch shapes and dtypes in order, ``drop_last``,
  every sample once per shuffled epoch, the same order for the same seed, Tensors as inputs,
  and the errors.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tt_core import Dropout, Linear, Parameter, ReLU, Sequential, Tensor
from tt_core.grading import (
    Grader,
    compare_values,
    epoch_arrays,
    expect,
    format_value,
    raises,
    signature_parameters,
)
from tt_core.rng import manual_seed

from .losses import CrossEntropyLoss
from .metrics import accuracy
from .optim import SGD
from .schedulers import StepLR
from .train import batches

__all__ = ["check_batches", "check_clip_grad_norm", "check_clip_grad_value", "check_metric", "check_trainer"]


def _array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


# ----------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Form:
    """One way of giving a metric outputs and targets: ``draw(rng) -> (output, target)``."""

    title: str
    classes: int
    draw: Callable[[np.random.Generator], tuple]
    options: dict = field(default_factory=dict)


def _scores(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return (2 * rng.standard_normal(shape)).astype(np.float32)


METRIC_FORMS = (
    _Form("class scores (12, 4) and integer labels (12,)", 4,
          lambda rng: (_scores(rng, 12, 4), rng.integers(0, 4, 12))),
    _Form("class scores over a sequence (2, 5, 3) and labels (2, 5)", 3,
          lambda rng: (_scores(rng, 2, 5, 3), rng.integers(0, 3, (2, 5)))),
    _Form("Tensors: class scores (10, 3) and labels (10,)", 3,
          lambda rng: (Tensor(_scores(rng, 10, 3)), Tensor(rng.integers(0, 3, 10), dtype=np.int64))),
    _Form("predicted labels (12,) and labels (12,)", 4,
          lambda rng: (rng.integers(0, 4, 12), rng.integers(0, 4, 12))),
    _Form("binary logits (10,) and 0/1 float targets (10,)", 2,
          lambda rng: (_scores(rng, 10), rng.integers(0, 2, 10).astype(np.float32))),
    _Form("binary probabilities (10,) with threshold=0.5", 2,
          lambda rng: (rng.random(10).astype(np.float32), rng.integers(0, 2, 10).astype(np.float32)),
          {"threshold": 0.5}),
)
"""The forms of outputs and targets a metric is checked on (those the reference accepts)."""


def _metric_options(reference, form: _Form) -> dict | None:
    """The keyword arguments for ``form``: its own options the reference takes, and
    ``num_classes`` when the reference needs it; None when the reference needs anything else."""
    parameters = signature_parameters(reference)
    if parameters is None:
        return dict(form.options)
    options = {k: v for k, v in form.options.items() if k in parameters}
    if len(options) < len(form.options):
        return None  # (a form that needs an option the reference does not take)
    if "num_classes" in parameters:
        options["num_classes"] = form.classes
    required = [n for i, (n, p) in enumerate(parameters.items()) if i >= 2 and p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return options if set(required) <= set(options) else None


def _accepts(reference, output, target, options: dict) -> bool:
    try:
        reference(output, target, **options)
    except Exception:  # noqa: BLE001 (a form the reference refuses is not checked)
        return False
    return True


def check_metric(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``metric``: ``metric(output, target, ...)`` equal to the reference's.

    On every form of :data:`METRIC_FORMS` the reference accepts (``num_classes`` given when
    it takes one), the value equals the reference's; class scores (12, 4) with 11 labels
    must raise where the reference raises. Without a reference: a finite value on class
    scores and labels.
    """
    if reference is None:
        form = METRIC_FORMS[0]
        with grader.case(f"a finite value on {form.title}"):
            value = _array(yours(*form.draw(grader.rng)))
            expect(value.dtype.kind in "biuf" and np.isfinite(value).all(),
                    f"{name} gives {value!r}: a metric gives a number (or an array of numbers)")
        return
    checked = 0
    for form in METRIC_FORMS:
        options = _metric_options(reference, form)
        output, target = form.draw(grader.rng)
        if options is None or not _accepts(reference, output, target, options):
            continue
        checked += 1
        with grader.case(f"{form.title}: the reference's value"):
            compare_values(grader, yours(output, target, **options), reference(output, target, **options),
                           f"{name} of {form.title}", check_dtype=False)
    if not checked:
        grader.skip("values", f"the reference {name} takes none of the forms of outputs and targets the checker "
                              "knows (class scores, labels, binary logits or probabilities)")
        return
    options = _metric_options(reference, METRIC_FORMS[0]) or {}
    scores, labels = _scores(grader.rng, 12, 4), grader.rng.integers(0, 4, 11)
    if not _accepts(reference, scores, labels, options):
        with grader.case("class scores (12, 4) with 11 labels raise an error"):
            expect(raises(lambda: yours(scores, labels, **options)),
                    f"{name} of 12 outputs and 11 targets gave a value: raise an error naming both shapes")
    output, target = METRIC_FORMS[0].draw(grader.rng)
    grader.time(lambda: yours(output, target, **options), lambda: reference(output, target, **options))


# ----------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------

SAMPLES, FEATURES, CLASSES, BATCH, EPOCHS = 24, 4, 3, 8, 3
TIMING = frozenset({"seconds", "samples_per_s"})  # history keys that are measurements, not results
SCHEDULE = frozenset({"epoch", "lr"})  # history keys that say where the run was, not what it gave


class _Problem:
    """A tiny random classification problem, and everything a run starts from: the model's
    weights (from ``seed``), the shuffling (a loader generator seeded with ``seed``)."""

    def __init__(self, rng: np.random.Generator) -> None:
        x = rng.standard_normal((SAMPLES + BATCH, FEATURES)).astype(np.float32)
        y = (x @ rng.standard_normal((FEATURES, CLASSES))).argmax(axis=1).astype(np.int64)
        self.x, self.y, self.val_x, self.val_y = x[:SAMPLES], y[:SAMPLES], x[SAMPLES:], y[SAMPLES:]
        self.seed = int(rng.integers(2**31))

    def model(self, dropout: bool = False, seed: int | None = None) -> Sequential:
        manual_seed(self.seed if seed is None else seed)
        middle = [ReLU(), Dropout(0.5)] if dropout else [ReLU()]
        return Sequential(Linear(FEATURES, 8), *middle, Linear(8, CLASSES))

    def loader(self, seed: int | None = None):
        return batches(self.x, self.y, BATCH, shuffle=True,
                       generator=np.random.default_rng(self.seed if seed is None else seed))

    def val_loader(self):
        return batches(self.val_x, self.val_y, BATCH)


@dataclass(frozen=True)
class _Config:
    """One way of running the trainer: constructor options, ``fit`` options (with the
    validation loader when ``validate``), a scheduler factory, and the number of epochs."""

    title: str
    options: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)
    scheduler: Callable | None = None
    validate: bool = False
    epochs: int = EPOCHS


CONFIGS = (
    _Config(f"{EPOCHS} epochs of SGD with momentum (batch {BATCH}, shuffled)"),
    _Config("metrics={'accuracy': accuracy} and a validation loader", {"metrics": {"accuracy": accuracy}},
            validate=True),
    _Config("a StepLR scheduler stepped every epoch", scheduler=lambda opt: StepLR(opt, step_size=1, gamma=0.5)),
    _Config("scheduler_interval='batch' (StepLR(step_size=2) stepped every batch)", {"scheduler_interval": "batch"},
            scheduler=lambda opt: StepLR(opt, step_size=2, gamma=0.7)),
    _Config("max_grad_norm=0.1 (gradients clipped before every step)", {"max_grad_norm": 0.1}),
    _Config("early stopping: patience=1, monitor='loss', mode='max' (a falling loss never improves)",
            fit={"patience": 1, "monitor": "loss", "mode": "max"}, epochs=5),
)


def _trainer(cls, problem: _Problem, config: _Config, model=None):
    model = problem.model() if model is None else model
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    options = {**config.options, "progress": False}
    if config.scheduler is not None:
        options["scheduler"] = config.scheduler(optimizer)
    return cls(model, optimizer, CrossEntropyLoss(), **options), model


def _fit(trainer, problem: _Problem, config: _Config, epochs: int, loader=None, checkpoint=None) -> list:
    fit = dict(config.fit)
    if config.validate:
        fit["val_loader"] = problem.val_loader()
    if checkpoint is not None:
        fit["checkpoint"] = checkpoint
    history = trainer.fit(problem.loader() if loader is None else loader, epochs=epochs, **fit)
    expect(isinstance(history, list), f"fit returned a {type(history).__name__}: it returns the history, a list "
                                       "of one dict per epoch")
    return history


def _run(cls, problem: _Problem, config: _Config) -> tuple[list, dict]:
    """The history and the trained parameters of one run of ``config``."""
    trainer, model = _trainer(cls, problem, config)
    manual_seed(problem.seed)  # the global generator as the run finds it
    return _fit(trainer, problem, config, config.epochs), model.state_dict()


def _compare_runs(grader: Grader, got: tuple[list, dict], expected: tuple[list, dict]) -> None:
    """The histories (first the schedule, epoch and lr, of every row: a wrong learning rate
    shows as itself rather than as the losses it changes; then the results, measured times
    left out), then the trained parameters."""
    history, state = got
    expected_history, expected_state = expected
    expect(len(history) == len(expected_history),
            f"the history has {len(history)} rows, the reference's {len(expected_history)} (one per finished epoch)")
    for schedule in (True, False):
        for index, (row, expected_row) in enumerate(zip(history, expected_history)):
            part = {key: value for key, value in expected_row.items()
                    if key not in TIMING and (key in SCHEDULE) == schedule}
            compare_values(grader, row, part, f"history[{index}]", rtol=1e-4, atol=1e-6, check_dtype=False)
    for key, value in expected_state.items():
        grader.compare(state.get(key), value, f"parameter {key} after training", rtol=1e-4, atol=1e-6)


def _check_evaluate(grader: Grader, yours, reference, problem: _Problem) -> None:
    config = _Config("evaluate", {"metrics": {"accuracy": accuracy}})
    results = []
    for cls in (yours, reference):
        model = problem.model(dropout=True)
        trainer, _ = _trainer(cls, problem, config, model)
        model.train()
        results.append(trainer.evaluate(problem.val_loader()))
        expect(model.training, "after evaluate() the model is in eval mode: put it back in the mode it was in")
        expect(all(p.grad is None for p in model.parameters()),
                "evaluate() gave the parameters gradients: it must not run backward")
    compare_values(grader, results[0], results[1], "evaluate()", rtol=1e-4, atol=1e-6, check_dtype=False)


def _check_resume(grader: Grader, yours, reference, problem: _Problem) -> None:
    """Two epochs with a checkpoint, then a fresh trainer (other weights, other shuffling and
    global generator) resumed from it for two more: the reference's four uninterrupted epochs."""
    config = _Config("resume", {"metrics": {"accuracy": accuracy}},
                     scheduler=lambda opt: StepLR(opt, step_size=1, gamma=0.5), epochs=4)
    expected = _run(reference, problem, config)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trainer.npz"
        first, _ = _trainer(yours, problem, config)
        manual_seed(problem.seed)
        _fit(first, problem, config, 2, checkpoint=path)
        expect(path.exists(), f"fit(checkpoint={str(path)!r}) wrote no file there")
        second, model = _trainer(yours, problem, config, problem.model(seed=problem.seed + 1))
        manual_seed(problem.seed + 1)
        second.resume(path)
        history = _fit(second, problem, config, 4, loader=problem.loader(seed=problem.seed + 1))
    _compare_runs(grader, (history, model.state_dict()), expected)


def check_trainer(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``trainer``: the reference's training runs, epoch by epoch.

    ``Trainer(model, optimizer, loss_fn, scheduler=None, metrics=None, scheduler_interval=
    "epoch", max_grad_norm=None, progress=False)`` and ``fit(loader, val_loader=None, epochs,
    patience, monitor, mode, checkpoint)`` on a tiny random problem (24 samples, 4 features,
    3 classes; a Linear-ReLU-Linear model with the reference's starting weights; the same
    shuffled batches): for each of :data:`CONFIGS`, every history row (loss, metrics,
    val_*, lr, epoch; the measured times left out) and the trained parameters equal the
    reference's. Then ``evaluate(loader)`` of a model with Dropout (eval mode inside, the
    mode restored, no gradients), and, when the reference has ``save_checkpoint`` and
    ``resume``, 2 epochs with a checkpoint resumed into a fresh trainer for 2 more, equal to
    4 uninterrupted epochs. Without a reference: one history row per epoch, finite losses.
    """
    problem = _Problem(grader.rng)
    if reference is None:
        with grader.case(f"{EPOCHS} epochs give {EPOCHS} history rows with finite losses"):
            history, _ = _run(yours, problem, CONFIGS[0])
            expect(len(history) == EPOCHS, f"the history has {len(history)} rows after {EPOCHS} epochs")
            losses = [row.get("loss") if isinstance(row, dict) else None for row in history]
            expect(all(isinstance(v, (int, float)) and math.isfinite(v) for v in losses),
                    f"the losses per epoch are {losses}: each row needs a finite 'loss'")
        return
    for config in CONFIGS:
        with grader.case(f"{config.title}: history and trained parameters equal the reference's"):
            _compare_runs(grader, _run(yours, problem, config), _run(reference, problem, config))
    with grader.case("evaluate(loader): the reference's loss and metrics, in eval mode (Dropout off), mode restored"):
        _check_evaluate(grader, yours, reference, problem)
    if hasattr(reference, "save_checkpoint") and hasattr(reference, "resume"):
        with grader.case("2 epochs with a checkpoint, resumed into a fresh trainer for 2 more: the reference's "
                         "4 uninterrupted epochs"):
            _check_resume(grader, yours, reference, problem)
    once = _Config("one epoch", epochs=1)
    grader.time(lambda: _run(yours, problem, once), lambda: _run(reference, problem, once))


# ----------------------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------------------

GRAD_SHAPES = ((4, 3), (3,), (2, 2))
NORM_TYPES = (2.0, 1.0, math.inf, 3.0)


def _gradients(rng: np.random.Generator, scale: float = 2.0) -> list[np.ndarray]:
    return [(scale * rng.standard_normal(shape)).astype(np.float32) for shape in GRAD_SHAPES]


def _clipped(fn, grads: list[np.ndarray], *args, given: str = "list", **kwargs) -> tuple[object, list]:
    """Call ``fn(parameters, *args, **kwargs)`` on parameters holding copies of ``grads`` (and
    one without a gradient) given as a list, a generator or one Tensor; returns the result
    and the gradients after the call."""
    params = [Parameter(np.zeros(g.shape, np.float32)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = Tensor(g.copy())
    bare = Parameter(np.zeros(2, np.float32))
    everything = [*params, bare]
    argument = {"list": everything, "generator": (p for p in everything), "tensor": params[0]}[given]
    result = fn(argument, *args, **kwargs)
    expect(bare.grad is None, "a parameter without a gradient was given one: skip parameters whose .grad is None")
    return result, [p.grad for p in params][: 1 if given == "tensor" else None]


def _compare_clipped(grader: Grader, got: tuple, expected: tuple, setting: str, result: bool) -> None:
    if result:
        compare_values(grader, got[0], expected[0], f"the norm returned ({setting})", rtol=1e-5, check_dtype=False)
    for i, (mine, theirs) in enumerate(zip(got[1], expected[1])):
        grader.compare(mine, theirs, f"gradient {i} {GRAD_SHAPES[i]} after clipping ({setting})")


def check_clip_grad_norm(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:clip_grad_norm_``: ``clip_grad_norm_(parameters, max_norm,
    norm_type=2.0, error_if_nonfinite=False)``.

    For each norm type of :data:`NORM_TYPES` and a limit half and twice the gradients' joint
    norm: the norm returned and the gradients after clipping equal the reference's; the
    parameters given as a generator (as ``model.parameters()`` is) or as one Tensor; an
    error for a negative ``max_norm`` and, with ``error_if_nonfinite=True``, for an
    infinite gradient.
    """
    if reference is None:
        grader.skip("clipped gradients", "no built-in clip_grad_norm_ to compare with")
        return
    for norm_type in NORM_TYPES:
        grads = _gradients(grader.rng)
        norm = float(_clipped(reference, grads, math.inf, norm_type=norm_type)[0])  # (an infinite limit clips nothing)
        with grader.case(f"norm_type={norm_type:g}: the norm returned and the gradients, for max_norm half and twice "
                         "the norm"):
            for max_norm in (0.5 * norm, 2.0 * norm):
                setting = f"max_norm={format_value(max_norm)}, norm_type={norm_type:g}"
                _compare_clipped(grader, _clipped(yours, grads, max_norm, norm_type=norm_type),
                                 _clipped(reference, grads, max_norm, norm_type=norm_type), setting, result=True)
    for given, title in (("generator", "parameters given as a generator (as model.parameters() is)"),
                         ("tensor", "one Tensor instead of a list")):
        with grader.case(f"{title}: clipped like a list"):
            grads = _gradients(grader.rng)
            _compare_clipped(grader, _clipped(yours, grads, 0.5, given=given),
                             _clipped(reference, grads, 0.5, given=given), f"max_norm=0.5, {given}", result=True)
    with grader.case("errors: max_norm < 0, and an infinite gradient with error_if_nonfinite=True"):
        grads = _gradients(grader.rng)
        infinite = [g.copy() for g in grads]
        infinite[1][0] = np.inf
        problems = []
        if not raises(lambda: _clipped(yours, grads, -1.0)):
            problems.append("max_norm=-1 was accepted")
        if not raises(lambda: _clipped(yours, infinite, 1.0, error_if_nonfinite=True)):
            problems.append("an infinite gradient with error_if_nonfinite=True was clipped")
        expect(not problems, "; ".join(problems) + ": raise an error saying what is wrong")
    grads = _gradients(grader.rng)
    grader.time(lambda: _clipped(yours, grads, 0.5), lambda: _clipped(reference, grads, 0.5))


def _watched(cls, rng_seed: int, periods: int = 2, steps: int = 3) -> list[dict]:
    """The records of ``cls`` watching a small MLP trained by plain SGD steps on fixed data."""
    rng = np.random.default_rng(rng_seed)
    model = Sequential(Linear(4, 3), Linear(3, 2))
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32)
    x, y = Tensor(rng.standard_normal((8, 4)).astype(np.float32)), rng.standard_normal((8, 2)).astype(np.float32)
    watch = cls(model)
    for period in range(periods):
        for _ in range(steps):
            for p in model.parameters():
                p.grad = None
            ((model(x) - Tensor(y)) * (model(x) - Tensor(y))).mean().backward()
            with watch.step():
                for p in model.parameters():
                    p.data -= 0.1 * p.grad.data
        watch.end_epoch(period)
    return watch.records


def check_gradient_watch(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:GradientWatch``: on a two-layer model trained for two periods
    of three SGD steps, one record per parameter per period, with the reference's names,
    gradient norms (on entering the step) and update ratios (``||w_after - w_before|| /
    ||w_before||``), each the mean over the period's steps."""
    if reference is None:
        grader.skip("records", "no built-in GradientWatch to compare with")
        return
    seed = int(grader.rng.integers(2**31))
    with grader.case("records of two periods of three steps: names, gradient norms, update ratios"):
        got, expected = _watched(yours, seed), _watched(reference, seed)
        expect(len(got) == len(expected), f"{len(got)} records, the reference writes {len(expected)} "
                                           "(one per parameter per period)")
        for mine, theirs in zip(got, expected):
            for key in ("epoch", "parameter", "grad_norm", "update_ratio"):
                expect(key in mine, f"a record has no {key!r} (it has {', '.join(mine)})")
            expect(mine["parameter"] == theirs["parameter"],
                   f"parameter {mine['parameter']!r} where the reference has {theirs['parameter']!r}")
            for key in ("grad_norm", "update_ratio"):
                grader.compare(np.float64(mine[key]), np.float64(theirs[key]), what=f"{key} of {theirs['parameter']} "
                               f"in period {theirs['epoch']}", rtol=1e-4, check_dtype=False)


def check_clip_grad_value(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:clip_grad_value_``: ``clip_grad_value_(parameters, clip_value)``.

    Every gradient element clamped into ``[-clip_value, clip_value]`` like the reference's,
    for two limits; the parameters given as a generator or as one Tensor; an error for a
    negative ``clip_value``.
    """
    if reference is None:
        grader.skip("clipped gradients", "no built-in clip_grad_value_ to compare with")
        return
    for clip_value in (0.5, 1.5):
        with grader.case(f"clip_value={clip_value}: every gradient element clamped into [-{clip_value}, "
                         f"{clip_value}]"):
            grads = _gradients(grader.rng)
            _compare_clipped(grader, _clipped(yours, grads, clip_value), _clipped(reference, grads, clip_value),
                             f"clip_value={clip_value}", result=False)
    for given, title in (("generator", "parameters given as a generator (as model.parameters() is)"),
                         ("tensor", "one Tensor instead of a list")):
        with grader.case(f"{title}: clipped like a list"):
            grads = _gradients(grader.rng)
            _compare_clipped(grader, _clipped(yours, grads, 0.5, given=given),
                             _clipped(reference, grads, 0.5, given=given), f"clip_value=0.5, {given}", result=False)
    with grader.case("clip_value < 0 raises"):
        expect(raises(lambda: _clipped(yours, _gradients(grader.rng), -1.0)),
                "clip_value=-1 was accepted: raise an error saying it must be >= 0")


# ----------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------


def _order(epoch: list) -> np.ndarray:
    """The sample indices an epoch visited (each sample carries its index in x[:, 0] and y)."""
    return np.concatenate([y for _, y in epoch] + [np.zeros(0, np.int64)])


def _check_shuffled(epoch: list, n: int, what: str) -> np.ndarray:
    for number, (x, y) in enumerate(epoch):
        expect(np.array_equal(x[:, 0], y), f"{what}: in batch {number} the inputs and labels no longer belong "
                                             "together: shuffle both with one order")
    order = _order(epoch)
    expect(np.array_equal(np.sort(order), np.arange(n)), f"{what}: the epoch visited {len(order)} samples, "
            f"{len(np.unique(order))} of them different, out of {n}: every sample exactly once per epoch")
    return order


def check_batches(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:batches``: ``batches(x, y, batch_size, shuffle=False,
    generator=None, drop_last=False)``.

    Without shuffling: the reference's batches in order (sizes, Tensors of the inputs'
    dtypes, ``len``), with and without ``drop_last``; Tensors as ``x`` and ``y``. Shuffled:
    every sample exactly once per epoch with its label, a new order each epoch, the same
    order for the same generator seed, and (without a generator) for the same
    ``tt_core.manual_seed``. Errors for ``x`` and ``y`` of different lengths and a batch
    size of 0.
    """
    rng = grader.rng
    size = int(rng.integers(3, 7))
    n = size * int(rng.integers(3, 6)) + int(rng.integers(1, size))  # a smaller last batch
    x = rng.standard_normal((n, 3)).astype(np.float32)
    x[:, 0] = np.arange(n)
    y = np.arange(n, dtype=np.int64)
    for drop_last in (False, True):
        sizes = [size] * (n // size) + ([] if drop_last else [n % size])
        with grader.case(f"in order, drop_last={drop_last} ({n} samples, batch_size={size}): batches of sizes "
                         f"{sizes}, Tensors of the inputs' dtypes, len() {len(sizes)}"):
            loader = yours(x, y, size, drop_last=drop_last)
            epoch = epoch_arrays(loader, "without shuffle")
            expect([len(b[0]) for b in epoch] == sizes, f"the batch sizes are {[len(b[0]) for b in epoch]}, "
                                                         f"the reference's {sizes}")
            expect(len(loader) == len(sizes), f"len() of the loader is {len(loader)}, the number of batches "
                                               f"{len(sizes)}")
            if reference is not None:
                expected = epoch_arrays(reference(x, y, size, drop_last=drop_last), "the reference")
                for number, (mine, theirs) in enumerate(zip(epoch, expected)):
                    grader.compare(mine[0], theirs[0], f"the inputs of batch {number}")
                    grader.compare(mine[1], theirs[1], f"the labels of batch {number}")
    with grader.case("Tensors as x and y: the same batches as arrays"):
        got, expected = epoch_arrays(yours(Tensor(x), Tensor(y, dtype=np.int64), size), "from Tensors"), \
            epoch_arrays(yours(x, y, size), "from arrays")
        expect(len(got) == len(expected), f"{len(got)} batches from Tensors, {len(expected)} from arrays")
        for number, (mine, theirs) in enumerate(zip(got, expected)):
            grader.compare(mine[0], theirs[0], f"the inputs of batch {number}", against="the batch from arrays")
            grader.compare(mine[1], theirs[1], f"the labels of batch {number}", against="the batch from arrays")
    seed = int(rng.integers(2**31))
    with grader.case("shuffle=True: every sample once per epoch with its label, a new order each epoch"):
        loader = yours(x, y, size, shuffle=True, generator=np.random.default_rng(seed))
        first = _check_shuffled(epoch_arrays(loader, "epoch 1"), n, "epoch 1")
        second = _check_shuffled(epoch_arrays(loader, "epoch 2"), n, "epoch 2")
        expect(not np.array_equal(first, np.arange(n)), "the shuffled epoch is in the original order")
        expect(not np.array_equal(first, second), "two epochs visit the samples in the same order: draw a new "
                                                   "order at the start of every pass")
    with grader.case("the same generator seed gives the same order; without one, the same tt_core.manual_seed"):
        orders = [_order(epoch_arrays(yours(x, y, size, shuffle=True, generator=np.random.default_rng(seed)), "seeded"))
                  for _ in range(2)]
        expect(np.array_equal(*orders), "two loaders with generators of the same seed shuffle differently: take "
                                         "the order from the generator given")
        orders = []
        for _ in range(2):
            manual_seed(seed)
            orders.append(_order(epoch_arrays(yours(x, y, size, shuffle=True), "global seed")))
        expect(np.array_equal(*orders), "after the same tt_core.manual_seed two loaders shuffle differently: "
                                         "without a generator, shuffle with tt_core's global one")
    with grader.case("errors: x and y of different lengths, batch_size=0"):
        problems = []
        if not raises(lambda: list(yours(x, y[:-1], size))):
            problems.append(f"x of {n} samples with y of {n - 1} was accepted")
        if not raises(lambda: list(yours(x, y, 0))):
            problems.append("batch_size=0 was accepted")
        expect(not problems, "; ".join(problems) + ": raise an error saying what is wrong")
    if reference is not None:
        grader.time(lambda: list(yours(x, y, size, shuffle=True)), lambda: list(reference(x, y, size, shuffle=True)))


def check_time_budget(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:TimeBudget``: ``TimeBudget(seconds, final_evaluations=0,
    clock=None)`` counts from its creation by ``clock``, ``elapsed()`` and ``remaining()``
    follow that clock, and a budget that is not positive raises."""
    now = [100.0]
    with grader.case("elapsed() and remaining() follow the clock from the moment of creation"):
        budget = yours(60, final_evaluations=2, clock=lambda: now[0])
        for moment, elapsed in ((100.0, 0.0), (145.0, 45.0), (170.0, 70.0)):
            now[0] = moment
            grader.compare(np.float64(budget.elapsed()), np.float64(elapsed), what=f"elapsed() at clock {moment}",
                           check_dtype=False)
            grader.compare(np.float64(budget.remaining()), np.float64(60 - elapsed),
                           what=f"remaining() at clock {moment}", check_dtype=False)
        expect(float(budget.final_evaluations) == 2.0, f"final_evaluations is {budget.final_evaluations!r}, not 2")
    for seconds in (0, -5):
        with grader.case(f"TimeBudget({seconds}) raises"):
            expect(raises(lambda: yours(seconds)), f"TimeBudget({seconds}) gave a budget; a budget must be positive")


def _averaged(average_class, values: list[np.ndarray]) -> dict:
    """The averaged state of a Linear(3, 2) whose weight takes each of ``values`` in turn."""
    model = Linear(3, 2)
    model.weight.data[...] = 0.0
    average = average_class(model, decay=0.5, every=2)
    for value in values:
        model.weight.data[...] = value
        average.update()
    model.weight.data[...] = 7.0
    average.copy_to()
    return {"state": {k: np.array(v) for k, v in average.state.items()}, "copied": model.weight.data.copy()}


def check_weight_average(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:WeightAverage``: ``WeightAverage(model, decay, every)`` folds the
    model's values into its ``state`` on every ``every``-th ``update()``, like the reference,
    and ``copy_to()`` loads the average into the model; a decay outside [0, 1) raises."""
    if reference is None:
        grader.skip("averages", "no built-in WeightAverage to compare with")
        return
    values = [grader.rng.standard_normal((2, 3)).astype(np.float32) for _ in range(6)]
    with grader.case("decay=0.5, every=2: the averaged weight after six updates, and copy_to()"):
        got, expected = _averaged(yours, values), _averaged(reference, values)
        grader.compare(got["state"]["weight"], expected["state"]["weight"], what="the averaged weight", rtol=1e-5)
        grader.compare(got["copied"], expected["state"]["weight"], what="the weight after copy_to()", rtol=1e-5)
    with grader.case("decay outside [0, 1) raises"):
        expect(raises(lambda: yours(Linear(2, 2), decay=1.5)), "decay=1.5 was accepted; it must lie in [0, 1)")

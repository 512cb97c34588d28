"""The checkers of metrics, the trainer, gradient clipping and ``batches``: a learner's correct
versions (written here, differently from the built-ins) pass under several seeds; each
deliberately wrong one fails with the diagnosis a learner needs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tt_core
from tt_core import Tensor, TinyTorchError
from tt_core.grading import NO_REFERENCE, PASSED, SKIPPED
from tt_learn.train import Trainer

SEEDS = (0, 1, 2)


def as_array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


# -- metrics ---------------------------------------------------------------------------------


def predicted(output, target, threshold=0.0):
    output, target = as_array(output), as_array(target)
    if output.ndim == target.ndim + 1:
        return np.argmax(output, axis=-1)
    if output.shape != target.shape:
        raise ValueError(f"outputs {output.shape} do not fit targets {target.shape}")
    return output if output.dtype.kind in "iu" else (output > threshold).astype(np.int64)


def accuracy(output, target, threshold=0.0):
    target = as_array(target)
    return float((predicted(output, target, threshold) == target).sum() / target.size)


def confusion_matrix(output, target, num_classes, threshold=0.0):
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (as_array(target).astype(np.int64).ravel(), predicted(output, target, threshold).ravel()), 1)
    return counts


def accuracy_at_one_half(output, target, threshold=0.5):
    return accuracy(output, target, threshold)


def confusion_transposed(output, target, num_classes, threshold=0.0):
    return confusion_matrix(output, target, num_classes, threshold).T


def accuracy_without_shape_check(output, target, threshold=0.0):
    output, target = as_array(output), as_array(target)
    guess = output.argmax(-1) if output.ndim == target.ndim + 1 else (output > threshold)
    return float(np.mean(guess[: len(target)] == target[: len(guess)]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "mine"), [("accuracy", accuracy), ("confusion_matrix", confusion_matrix)])
def test_correct_metrics_pass(name, mine, seed, grade_mine, assert_passes):
    result = grade_mine("metric", name, mine, seed)
    assert_passes(result)
    assert len(result.cases) == 7


@pytest.mark.parametrize(("name", "wrong", "case", "diagnosis"), [
    ("accuracy", accuracy_at_one_half, "binary logits (10,) and 0/1 float targets (10,)",
     "accuracy of binary logits (10,) and 0/1 float targets (10,) differs: yours "),
    ("confusion_matrix", confusion_transposed, "class scores (12, 4) and integer labels (12,)",
     "confusion_matrix of class scores (12, 4) and integer labels (12,) differs at ["),
    ("accuracy", accuracy_without_shape_check, "class scores (12, 4) with 11 labels raise",
     "accuracy of 12 outputs and 11 targets gave a value"),
])
def test_each_wrong_metric_fails_with_its_diagnosis(name, wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("metric", name, wrong), case, diagnosis)


def test_a_metric_without_a_reference_is_checked_for_a_finite_value(grade_mine):
    result = grade_mine("metric", "top_2_accuracy", lambda output, target: 0.5)
    assert result.status == NO_REFERENCE
    assert [(c.name, c.status) for c in result.cases] == [
        ("a finite value on class scores (12, 4) and integer labels (12,)", PASSED)]


# -- the trainer -----------------------------------------------------------------------------


class MyTrainer(Trainer):
    """A learner's trainer: the built-in loop with its own training step."""

    def train_step(self, x, y):
        output = self.model(Tensor(as_array(x)))
        loss = self.loss_fn(output, y)
        for p in self.model.parameters():
            p.grad = None
        loss.backward()
        if self.max_grad_norm is not None:
            from tt_learn.clip import clip_grad_norm_

            clip_grad_norm_(list(self.model.parameters()), self.max_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        return {"loss": float(loss.data), **{k: float(fn(output, y)) for k, fn in self.metrics.items()}}


class ForgetsZeroGrad(MyTrainer):
    def train_step(self, x, y):
        output = self.model(Tensor(as_array(x)))
        loss = self.loss_fn(output, y)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.data)}


class EvaluatesInTrainingMode(Trainer):
    """Evaluates without switching the model to eval mode: its Dropout stays on."""

    def evaluate(self, loader):
        totals, count = dict.fromkeys(["loss", *self.metrics], 0.0), 0
        for x, y in loader:
            output = self.model(x)
            totals["loss"] += self.loss_fn(output, y).item() * len(y)
            for name, fn in self.metrics.items():
                totals[name] += fn(output, y) * len(y)
            count += len(y)
        return {name: total / count for name, total in totals.items()}


class IgnoresResume(Trainer):
    def resume(self, path):
        return self


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_trainer_passes(seed, grade_mine, assert_passes):
    result = grade_mine("trainer", "Trainer", MyTrainer, seed)
    assert_passes(result)
    assert len(result.cases) == 8


@pytest.mark.parametrize(("wrong", "case", "diagnosis"), [
    (ForgetsZeroGrad, "3 epochs of SGD with momentum", "history[0]['loss'] differs: yours "),
    (EvaluatesInTrainingMode, "evaluate(loader)", "evaluate()['loss'] differs"),
    (IgnoresResume, "2 epochs with a checkpoint", "history[0]['loss'] differs: yours "),
])
def test_each_wrong_trainer_fails_with_its_diagnosis(wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("trainer", "Trainer", wrong), case, diagnosis)


def test_a_trainer_stepping_the_scheduler_every_batch_fails_on_the_learning_rates(grade_mine, assert_fails):
    class StepsEveryBatch(MyTrainer):
        def train_step(self, x, y):
            result = super().train_step(x, y)
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            return result

    detail = assert_fails(grade_mine("trainer", "Trainer", StepsEveryBatch), "a StepLR scheduler stepped every epoch",
                          "history[1]['lr'] differs: yours ")
    assert "reference 0.05" in detail


def test_a_trainer_without_a_reference_gets_one_history_row_per_epoch(grade_mine):
    result = grade_mine("trainer", "MyLoop", MyTrainer)
    assert result.status == NO_REFERENCE
    assert [(c.name, c.status) for c in result.cases] == [("3 epochs give 3 history rows with finite losses", PASSED)]


# -- clip_grad_norm_ and clip_grad_value_ ------------------------------------------------------


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """A learner's version: one flat vector of every gradient."""
    if max_norm < 0:
        raise ValueError("max_norm must be >= 0")
    params = [parameters] if isinstance(parameters, Tensor) else [p for p in parameters if p.grad is not None]
    flat = np.concatenate([p.grad.data.ravel() for p in params]).astype(np.float64)
    total = float(np.abs(flat).max() if math.isinf(norm_type) else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise TinyTorchError(f"the gradients' norm is {total}")
    if total > max_norm:
        for p in params:
            p.grad = Tensor((p.grad.data * (max_norm / (total + 1e-6))).astype(p.grad.dtype))
    return total


def clip_twice_over_a_generator(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Reads ``parameters`` twice: a generator is empty the second time."""
    if max_norm < 0:
        raise ValueError("max_norm must be >= 0")
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    total = float(np.linalg.norm([np.linalg.norm(p.grad.data.ravel(), norm_type) for p in parameters
                                  if p.grad is not None], norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise TinyTorchError("not finite")
    for p in parameters:
        if p.grad is not None and total > max_norm:
            p.grad.data *= max_norm / (total + 1e-6)
    return total


def clip_always_two_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    return clip_grad_norm_(parameters, max_norm, 2.0, error_if_nonfinite)


def clip_always_scales(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = clip_grad_norm_(params, math.inf, norm_type, error_if_nonfinite)
    if max_norm < 0:
        raise ValueError("max_norm must be >= 0")
    for p in params:
        if p.grad is not None:
            p.grad = Tensor(p.grad.data * np.float32(max_norm / (total + 1e-6)))
    return total


def clip_grad_value_(parameters, clip_value):
    if clip_value < 0:
        raise ValueError("clip_value must be >= 0")
    for p in [parameters] if isinstance(parameters, Tensor) else parameters:
        if p.grad is not None:
            p.grad = Tensor(np.minimum(np.maximum(p.grad.data, -clip_value), clip_value))


def clip_value_above_only(parameters, clip_value):
    for p in [parameters] if isinstance(parameters, Tensor) else parameters:
        if p.grad is not None:
            p.grad = Tensor(np.minimum(p.grad.data, clip_value))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("name", "mine"), [("clip_grad_norm_", clip_grad_norm_), ("clip_grad_value_", clip_grad_value_)])
def test_correct_clipping_passes(name, mine, seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", name, mine, seed))


@pytest.mark.parametrize(("name", "wrong", "case", "diagnosis"), [
    ("clip_grad_norm_", clip_twice_over_a_generator, "parameters given as a generator",
     "gradient 0 (4, 3) after clipping (max_norm=0.5, generator) differs"),
    ("clip_grad_norm_", clip_always_two_norm, "norm_type=1:", "the norm returned (max_norm="),
    ("clip_grad_norm_", clip_always_scales, "norm_type=2:", "yours is 2 times the reference everywhere"),
    ("clip_grad_value_", clip_value_above_only, "clip_value=0.5", "after clipping (clip_value=0.5) differs"),
    ("clip_grad_value_", clip_value_above_only, "clip_value < 0 raises", "clip_value=-1 was accepted"),
])
def test_each_wrong_clipping_fails_with_its_diagnosis(name, wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("function", name, wrong), case, diagnosis)


# -- batches ---------------------------------------------------------------------------------


class Batches:
    """A learner's loader over arrays."""

    def __init__(self, x, y, batch_size, shuffle=False, generator=None, drop_last=False):
        self.x, self.y = as_array(x), as_array(y)
        if len(self.x) != len(self.y) or batch_size < 1:
            raise ValueError("x and y need the same length, batch_size at least 1")
        self.size, self.shuffle, self.generator, self.drop_last = batch_size, shuffle, generator, drop_last

    def __len__(self):
        return len(self.x) // self.size if self.drop_last else -(-len(self.x) // self.size)

    def order(self):
        rng = self.generator if self.generator is not None else tt_core.rng.generator()
        return rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def __iter__(self):
        order = self.order()
        for number in range(len(self)):
            index = order[number * self.size:(number + 1) * self.size]
            yield Tensor(self.x[index]), Tensor(self.y[index])


class ShufflesApart(Batches):
    def __iter__(self):
        x_order, y_order = self.order(), self.order()
        for number in range(len(self)):
            part = slice(number * self.size, (number + 1) * self.size)
            yield Tensor(self.x[x_order[part]]), Tensor(self.y[y_order[part]])


class ShufflesOnce(Batches):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed = super().order()

    def order(self):
        return self.fixed


class AlwaysDropsLast(Batches):
    def __len__(self):
        return len(self.x) // self.size


class IgnoresGenerator(Batches):
    def order(self):
        return np.random.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_batches_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "batches", Batches, seed))


@pytest.mark.parametrize(("wrong", "case", "diagnosis"), [
    (ShufflesApart, "shuffle=True", "the inputs and labels no longer belong together"),
    (ShufflesOnce, "shuffle=True", "two epochs visit the samples in the same order"),
    (AlwaysDropsLast, "in order, drop_last=False", "the batch sizes are "),
    (IgnoresGenerator, "the same generator seed", "two loaders with generators of the same seed shuffle differently"),
])
def test_each_wrong_batches_fails_with_its_diagnosis(wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("function", "batches", wrong), case, diagnosis)


def test_a_function_without_a_check_or_reference_is_no_reference(grade_mine):
    result = grade_mine("function", "shuffle_rows", lambda x: x)
    assert result.status == NO_REFERENCE
    assert [c.status for c in result.cases] == [PASSED, SKIPPED]


# -- GradientWatch ----------------------------------------------------------------------------


class MyWatch:
    """A learner's GradientWatch: gradient norms on entry, the weights' change on exit relative to
    the weights before the step."""

    def __init__(self, model, relative=True):
        self.named = list(model.named_parameters())
        self.records, self.relative = [], relative
        self._grads, self._updates = [], []

    def step(self):
        import contextlib

        @contextlib.contextmanager
        def measured():
            self._grads.append([float(np.linalg.norm(p.grad.data)) for _, p in self.named])
            before = [p.data.copy() for _, p in self.named]
            yield
            self._updates.append([
                float(np.linalg.norm(p.data - b)) / (float(np.linalg.norm(b)) if self.relative else 1.0)
                for (_, p), b in zip(self.named, before)
            ])

        return measured()

    def end_epoch(self, epoch=None):
        grads, updates = np.mean(self._grads, axis=0), np.mean(self._updates, axis=0)
        rows = [{"epoch": epoch, "parameter": name, "grad_norm": g, "update_ratio": u}
                for (name, _), g, u in zip(self.named, grads, updates)]
        self.records += rows
        self._grads, self._updates = [], []
        return rows


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_gradient_watch_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "GradientWatch", MyWatch, seed))


def test_an_update_ratio_not_divided_by_the_weight_norm_fails(grade_mine, assert_fails):
    def absolute(model):
        return MyWatch(model, relative=False)

    assert_fails(grade_mine("function", "GradientWatch", absolute), "records of two periods",
                 "update_ratio of 0.weight in period 0 differs")

"""The training loop: :class:`Trainer`, with progress, evaluation, early stopping, checkpoints
and bit-identical resume; and :func:`batches`, a minimal loader over in-memory arrays.

With a :class:`TimeBudget` the Trainer fits its epochs into a wall-clock budget: after every
epoch it re-plans how many more fit at the measured speed of whole epochs (training and
evaluation), re-plans the scheduler's length to match (``replan``, as :class:`OneCycleLR` has),
and stops when another epoch would not fit; inside an epoch it stops early if the budget runs
out anyway (a machine that suddenly gets slower). ``step_hooks`` run after every optimizer
step (e.g. :class:`WeightAverage`'s ``update``).

With ``track_gradients=True`` the Trainer also records how the gradients flow: per epoch and per
parameter, the gradient norm and the update-to-weight ratio (``Trainer.gradient_stats``).

A *loader* is anything that yields ``(x, y)`` batches on each pass (a list of pairs,
:func:`batches`, tt-data's ``DataLoader``). If it has a ``generator`` attribute (a NumPy
``Generator`` used for shuffling), its state goes into checkpoints with the global one.

Examples:
    >>> import numpy as np
    >>> import tt_core as tt
    >>> from tt_learn.losses import CrossEntropyLoss
    >>> from tt_learn.metrics import accuracy
    >>> from tt_learn.optim import SGD
    >>> tt.manual_seed(0)  # doctest: +ELLIPSIS
    Generator(PCG64) at 0x...
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> model = tt.Linear(2, 2)
    >>> trainer = Trainer(model, SGD(model.parameters(), lr=0.5), CrossEntropyLoss(),
    ...                   metrics={"accuracy": accuracy}, progress=False)
    >>> history = trainer.fit(batches(x, y, batch_size=16, shuffle=True), epochs=20)
    >>> history[-1]["accuracy"] > 0.9
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import tt_core
from tt_core import CheckpointError, Module, Tensor, TinyTorchError

from . import _state
from .autograd import no_grad
from .clip import clip_grad_norm_
from .optim import Optimizer
from .schedulers import LRScheduler
from .watch import GradientWatch

CHECKPOINT_FORMAT = "tt-learn-trainer-1"
CHECKPOINT_KEYS = ("format", "epoch", "model", "optimizer", "scheduler", "rng", "loader_rng", "trainer")
TRAINER_KEYS = ("history", "best", "bad_epochs")
TRAINER_OPTIONAL_KEYS = ("gradient_stats",)  # absent from checkpoints written before it existed

__all__ = ["TimeBudget", "Trainer", "WeightAverage", "batches"]


class _ArrayBatches:
    """Mini-batches of in-memory arrays; a fresh order (from ``generator``) on every pass."""

    def __init__(self, x, y, batch_size: int, shuffle: bool, generator, drop_last: bool) -> None:
        self.x = x.data if isinstance(x, Tensor) else np.asarray(x)
        self.y = y.data if isinstance(y, Tensor) else np.asarray(y)
        if len(self.x) != len(self.y):
            raise tt_core.ShapeError(f"batches: x has {len(self.x)} samples but y has {len(self.y)}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = (self.generator or tt_core.rng.generator()).permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            yield Tensor(self.x[index]), Tensor(self.y[index])


def batches(x, y, batch_size: int, shuffle: bool = False, generator: np.random.Generator | None = None,
            drop_last: bool = False) -> _ArrayBatches:
    """A re-iterable loader of ``(x, y)`` mini-batches (as Tensors) over arrays ``x`` and ``y``.

    Args:
        batch_size: samples per batch (the last one may be smaller unless ``drop_last``).
        shuffle: a new random order on every pass (epoch).
        generator: the NumPy Generator that shuffles (default: tt-core's global one).

    Raises:
        ShapeError: ``x`` and ``y`` hold different numbers of samples.

    Examples:
        >>> import numpy as np
        >>> loader = batches(np.zeros((5, 2)), np.arange(5), batch_size=2)
        >>> [(tuple(x.shape), y.tolist()) for x, y in loader]
        [((2, 2), [0, 1]), ((2, 2), [2, 3]), ((1, 2), [4])]
    """
    return _ArrayBatches(x, y, batch_size, shuffle, generator, drop_last)


class TimeBudget:
    """A wall-clock budget of ``seconds`` for :meth:`Trainer.fit`, counted from the moment
    it is created (so time spent before ``fit`` counts too).

    Args:
        seconds: the budget.
        final_evaluations: keep time for this many more passes over the validation loader
            after training (e.g. 2 for a test-time-augmented final evaluation), at the speed
            measured on the per-epoch evaluations.
        clock: the clock in seconds (None: ``time.perf_counter``; tests pass a fake one).

    Examples:
        >>> now = [0.0]
        >>> budget = TimeBudget(60, clock=lambda: now[0])
        >>> now[0] = 45.0
        >>> budget.elapsed(), budget.remaining()
        (45.0, 15.0)
    """

    def __init__(self, seconds: float, final_evaluations: float = 0.0, clock: Callable[[], float] | None = None) -> None:
        if not seconds > 0:
            raise ValueError(f"a time budget needs a positive number of seconds, got {seconds!r}")
        if not final_evaluations >= 0:
            raise ValueError(f"final_evaluations must be >= 0, got {final_evaluations!r}")
        clock = time.perf_counter if clock is None else clock
        self.seconds, self.final_evaluations, self.clock = float(seconds), float(final_evaluations), clock
        self.started = clock()

    def elapsed(self) -> float:
        """Seconds since the budget was created."""
        return self.clock() - self.started

    def remaining(self) -> float:
        """Seconds left (negative once overrun)."""
        return self.seconds - self.elapsed()


class WeightAverage:
    """An exponential moving average of a model's parameters and floating-point buffers
    (batch norm's running statistics, averaged alongside the weights they belong to), updated
    every ``every`` calls of :meth:`update`: ``avg = decay * avg + (1 - decay) * current``.
    Early on the decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the first
    weights are soon forgotten. Integer buffers are copied.

    Pass ``step_hooks=[average.update]`` to a :class:`Trainer`, then :meth:`copy_to` the model
    to evaluate with the averaged weights.

    Examples:
        >>> import tt_core as tt
        >>> model = tt.Linear(1, 1)
        >>> model.weight.data[...] = 0.0
        >>> average = WeightAverage(model, decay=0.05)
        >>> model.weight.data[...] = 1.0; average.update()  # 0.05 * 0 + 0.95 * 1
        >>> model.weight.data[...] = 2.0; average.update()  # 0.05 * 0.95 + 0.95 * 2
        >>> round(float(average.state["weight"][0, 0]), 4)
        1.9475
    """

    def __init__(self, model: Module, decay: float = 0.9, every: int = 1) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model, self.decay, self.every = model, decay, every
        self.calls = self.updates = 0
        self.state = {name: np.array(value, copy=True) for name, value in model.state_dict().items()}

    def update(self, *_) -> None:
        """Count a step; on every ``every``-th, fold the model's current values into the average
        (extra arguments, such as the Trainer a step hook receives, are ignored)."""
        self.calls += 1
        if self.calls % self.every:
            return
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for name, tensor in self.model.named_tensors().items():  # a tied weight under each name
            average, current = self.state[name], tensor.data
            if np.issubdtype(average.dtype, np.floating):
                average *= decay
                average += (1 - decay) * current
            else:
                average[...] = current

    def copy_to(self, model: Module | None = None) -> None:
        """Load the averaged values into ``model`` (default: the averaged model itself)."""
        (model or self.model).load_state_dict(self.state)


def _batch_size(y) -> int:
    return len(y.data if isinstance(y, Tensor) else y)


class _Running:
    """Sample-weighted running means of the loss and the metrics over one pass."""

    def __init__(self, names: Iterable[str]) -> None:
        self.totals = dict.fromkeys(["loss", *names], 0.0)
        self.samples = 0

    def add(self, size: int, values: dict[str, float]) -> None:
        self.samples += size
        for name, value in values.items():
            self.totals[name] += value * size

    def means(self) -> dict[str, float]:
        return {name: total / max(self.samples, 1) for name, total in self.totals.items()}


_EMPTY_HINT = ("it holds no samples, or fewer than one batch with drop_last=True, or it is a one-shot "
               "iterator that an earlier pass used up (pass a list, batches(...) or a DataLoader)")


def _require_samples(running: _Running, what: str) -> None:
    if running.samples == 0:
        raise TinyTorchError(f"{what} yielded no samples: {_EMPTY_HINT}")


class Trainer:
    """Fit a model: the training loop with progress, evaluation, early stopping and checkpoints.

    Args:
        model: the Module to train.
        optimizer: an :class:`~tt_learn.optim.Optimizer` over the model's parameters.
        loss_fn: ``loss_fn(output, y) -> scalar Tensor`` (e.g. ``CrossEntropyLoss()``).
        scheduler: an optional learning-rate scheduler, stepped every epoch, or every batch
            with ``scheduler_interval="batch"`` (as :class:`OneCycleLR` wants).
        metrics: ``{name: fn(output, y) -> float}``, computed on every batch and averaged
            (e.g. ``{"accuracy": accuracy}``).
        max_grad_norm: clip the gradients' joint norm to this before each step (default off).
        progress: show a rich progress bar with loss, metrics and speed (default True).
        console: the rich Console to draw on (default: a new one).
        track_gradients: record, per epoch and per parameter, the gradient norm and the
            update-to-weight ratio in ``gradient_stats`` (default False: nothing is measured).
        budget: a :class:`TimeBudget`: ``fit`` re-plans its epochs (and the scheduler's length)
            to end inside it; see the module docstring. The first epoch is always trained.
        step_hooks: callables, each called with the trainer after every optimizer step.

    Attributes:
        history: one dict per finished epoch: ``epoch``, ``loss``, the metrics, ``val_loss``
            and ``val_<metric>`` when there is a validation loader, ``lr``, ``seconds`` and
            ``samples_per_s``.
        epoch: the number of finished epochs.
        planned_epochs: with a budget, the epochs ``fit`` plans to finish in all (re-planned
            after every epoch); else the ``epochs`` of the last ``fit``.
        gradient_stats: with ``track_gradients``, one dict per parameter per finished epoch
            (``epoch``, ``parameter`` -- its name in ``model.named_parameters()`` --, ``shape``,
            ``grad_norm`` and ``grad_norm_last``: the mean over the epoch's steps and the last
            step's ``||grad||``, measured before clipping; ``update_ratio`` and
            ``update_ratio_last``: the same for ``||Δw|| / ||w||`` across the optimizer step;
            ``weight_norm`` and ``steps``), as :class:`~tt_learn.watch.GradientWatch` writes
            them; an empty list without it.
    """

    def __init__(self, model: Module, optimizer: Optimizer, loss_fn: Callable, scheduler: LRScheduler | None = None,
                 metrics: dict[str, Callable] | None = None, scheduler_interval: str = "epoch",
                 max_grad_norm: float | None = None, progress: bool = True, console=None,
                 track_gradients: bool = False, budget: TimeBudget | None = None,
                 step_hooks: Iterable[Callable[[Trainer], Any]] = ()) -> None:
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        self.model, self.optimizer, self.loss_fn, self.scheduler = model, optimizer, loss_fn, scheduler
        self.metrics = dict(metrics or {})
        self.scheduler_interval = scheduler_interval
        self.max_grad_norm = max_grad_norm
        self.progress, self.console = progress, console
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.best: float | None = None
        self.bad_epochs = 0
        self._loader_rng: dict | None = None
        self._watch = GradientWatch(model) if track_gradients else None
        self.budget, self.step_hooks = budget, list(step_hooks)
        self.planned_epochs = 0
        self._epoch_seconds: list[float] = []  # whole epochs (training and evaluation), by the budget's clock
        self._eval_seconds = 0.0

    @property
    def gradient_stats(self) -> list[dict[str, Any]]:
        """The per-epoch, per-parameter gradient records (empty unless ``track_gradients``)."""
        return [] if self._watch is None else self._watch.records

    # -- one step and one pass -----------------------------------------------------------
    def _measure(self, output: Tensor, y, loss: Tensor) -> dict[str, float]:
        return {"loss": loss.item(), **{name: float(fn(output, y)) for name, fn in self.metrics.items()}}

    def train_step(self, x, y) -> dict[str, float]:
        """Forward, loss, backward and one optimizer step on a batch; returns its loss and metrics."""
        output = self.model(x if isinstance(x, Tensor) else Tensor(x))
        loss = self.loss_fn(output, y)
        self.optimizer.zero_grad()
        loss.backward()
        with nullcontext() if self._watch is None else self._watch.step():
            if self.max_grad_norm is not None:
                clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "batch":
            self.scheduler.step()
        for hook in self.step_hooks:
            hook(self)
        return self._measure(output, y, loss)

    @no_grad()
    def evaluate(self, loader) -> dict[str, float]:
        """The mean loss and metrics over ``loader`` in eval mode, without recording a graph.

        Raises:
            TinyTorchError: ``loader`` yielded no samples (a mean of nothing is no result).
        """
        was_training = self.model.training
        self.model.eval()
        running = _Running(self.metrics)
        try:
            for x, y in loader:
                output = self.model(x if isinstance(x, Tensor) else Tensor(x))
                running.add(_batch_size(y), self._measure(output, y, self.loss_fn(output, y)))
        finally:
            self.model.train(was_training)
        _require_samples(running, "the evaluation loader")
        return running.means()

    def _train_epoch(self, loader, bar) -> dict[str, float]:
        self.model.train()
        running = _Running(self.metrics)
        started = time.perf_counter()
        step_started = self._clock()
        for x, y in loader:
            running.add(_batch_size(y), self.train_step(x, y))
            if bar is not None:
                bar(running.means(), running.samples / max(time.perf_counter() - started, 1e-9))
            now = self._clock()
            step_seconds, step_started = now - step_started, now  # with loading the batch
            if self._budget_spent(step_seconds):
                self.planned_epochs = self.epoch + 1
                self._log_text(f"time budget: stopping epoch {self.epoch + 1} early, the budget is nearly spent")
                break
        _require_samples(running, f"the training loader (epoch {self.epoch + 1})")
        seconds = time.perf_counter() - started
        return {**running.means(), "seconds": seconds, "samples_per_s": running.samples / max(seconds, 1e-9)}

    # -- the loop ------------------------------------------------------------------------
    def fit(self, train_loader, val_loader=None, epochs: int = 1, patience: int | None = None,
            monitor: str | None = None, mode: str | None = None, checkpoint: str | Path | None = None
            ) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are done in total (so after :meth:`resume` the same
        call carries on where the saved run stopped).

        Args:
            train_loader: yields ``(x, y)`` training batches, once per epoch.
            val_loader: evaluated after every epoch (``val_loss``, ``val_<metric>``).
            epochs: total number of epochs.
            patience: stop after this many epochs without improvement of ``monitor``.
            monitor: the history key to watch (default ``val_loss``, or ``loss`` without a
                validation loader).
            mode: "min" or "max" (default: "min" for losses, else "max").
            checkpoint: write a checkpoint (see :meth:`save_checkpoint`) here after every epoch.

        Returns:
            ``history``, one dict per epoch.

        Raises:
            ValueError: a bad ``monitor``, ``mode`` or ``patience``.
            TinyTorchError: a loader that yields no samples (an empty one, or an iterator the
                previous epoch used up); the epochs finished before stay in ``history``.
        """
        if hasattr(train_loader, "__len__") and len(train_loader) == 0:
            raise TinyTorchError(f"the training loader is empty: {_EMPTY_HINT}")
        monitor = monitor or ("val_loss" if val_loader is not None else "loss")
        mode = mode or ("min" if monitor.endswith("loss") else "max")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be a positive number of epochs, got {patience}")
        watchable = ["loss", *self.metrics]
        watchable += [f"val_{name}" for name in watchable] if val_loader is not None else []
        if monitor not in watchable:
            raise ValueError(f"cannot monitor {monitor!r}: choose one of {', '.join(watchable)}")
        self._restore_loader_rng(train_loader)
        self.planned_epochs = epochs
        with self._progress_bar() as new_bar:
            while self.epoch < self.planned_epochs:
                lr = self.optimizer.param_groups[0]["lr"]
                row: dict[str, Any] = {"epoch": self.epoch + 1}
                started = self._clock()
                row.update(self._train_epoch(train_loader, new_bar(self.epoch + 1, self.planned_epochs, train_loader)))
                if val_loader is not None:
                    evaluated = self._clock()
                    row.update({f"val_{k}": v for k, v in self.evaluate(val_loader).items()})
                    self._eval_seconds = self._clock() - evaluated
                self._epoch_seconds.append(self._clock() - started)
                row["lr"] = lr
                if self._watch is not None and self._watch.steps:
                    self._watch.end_epoch(self.epoch + 1)
                if self.scheduler is not None and self.scheduler_interval == "epoch":
                    self.scheduler.step()
                self.history.append(row)
                self.epoch += 1
                self._log(row)
                if self.budget is not None:
                    self._replan(epochs, train_loader)
                stop = self._early_stop(row[monitor], mode, patience)
                if checkpoint is not None:
                    self.save_checkpoint(checkpoint, train_loader)
                if stop:
                    self._log_text(f"early stopping: no improvement of {monitor} for {patience} epochs")
                    break
        return self.history

    def _clock(self) -> float:
        """Now, by the budget's clock (``time.perf_counter`` without a budget)."""
        return self.budget.clock() if self.budget is not None else time.perf_counter()

    def _kept_seconds(self, evaluations: float) -> float:
        """Time to keep for ``evaluations`` passes over the validation loader plus the
        budget's final evaluations, at the measured speed."""
        return (evaluations + self.budget.final_evaluations) * self._eval_seconds

    def _budget_spent(self, step_seconds: float) -> bool:
        """Whether another training step of ``step_seconds`` would leave too little of the
        budget for this epoch's evaluation and the final ones (known after the first epoch)."""
        return (self.budget is not None and bool(self._epoch_seconds)
                and self.budget.remaining() < step_seconds + self._kept_seconds(1))

    def _replan(self, epochs: int, train_loader) -> None:
        """Plan as many more epochs as fit in the budget (at most ``epochs`` in all) at the
        speed of the slower of the last two whole epochs, keeping time for the final
        evaluations, and stretch or shrink the scheduler to end with the last of them."""
        epoch_seconds = max(self._epoch_seconds[-2:])
        spare = self.budget.remaining() - self._kept_seconds(0)
        planned = min(epochs, self.epoch + max(int(spare // max(epoch_seconds, 1e-9)), 0))
        if planned == self.planned_epochs:
            return
        self.planned_epochs = planned
        self._log_text(f"time budget: {epoch_seconds:.1f} s per epoch, {spare:.0f} s left: planning {planned} "
                       f"epochs in all")
        if planned > self.epoch and hasattr(self.scheduler, "replan"):
            if self.scheduler_interval == "epoch":
                self.scheduler.replan(planned)
            elif hasattr(train_loader, "__len__"):
                self.scheduler.replan(planned * len(train_loader))

    def _early_stop(self, value: float, mode: str, patience: int | None) -> bool:
        improved = self.best is None or (value < self.best if mode == "min" else value > self.best)
        if improved:
            self.best, self.bad_epochs = float(value), 0
        else:
            self.bad_epochs += 1
        return patience is not None and self.bad_epochs >= patience

    # -- progress ------------------------------------------------------------------------
    @contextmanager
    def _progress_bar(self):
        """Yields ``new_bar(epoch, epochs, loader)``, which returns an ``update(means, speed)``
        callable drawing one epoch's bar (or None when progress is off)."""
        if not self.progress:
            yield lambda *args: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[stats]}"), TextColumn("{task.fields[speed]:,.0f} samples/s"),
                   TimeElapsedColumn()]
        with Progress(*columns, console=self.console) as progress:
            self.console = progress.console

            def new_bar(epoch, epochs, loader):
                total = len(loader) if hasattr(loader, "__len__") else None
                task = progress.add_task("train", total=total, epoch=f"{epoch}/{epochs}", stats="", speed=0.0)

                def update(means, speed):
                    stats = "  ".join(f"{k} {v:.4f}" for k, v in means.items())
                    progress.update(task, advance=1, stats=stats, speed=speed)

                return update

            yield new_bar

    def _log_text(self, text: str) -> None:
        if self.progress and self.console is not None:
            self.console.print(text)

    def _log(self, row: dict[str, Any]) -> None:
        skip = {"epoch", "seconds", "samples_per_s"}
        summary = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in skip)
        self._log_text(f"epoch {row['epoch']}: {summary}  ({row['samples_per_s']:,.0f} samples/s)")

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self, train_loader=None) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimizer, scheduler, the global RNG
        and the loader's generator, the epoch count, history, early-stopping state and
        ``gradient_stats``."""
        generator = getattr(train_loader, "generator", None)
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": tt_core.get_rng_state(),
            "loader_rng": generator.bit_generator.state if isinstance(generator, np.random.Generator) else None,
            "trainer": {"history": self.history, "best": self.best, "bad_epochs": self.bad_epochs,
                        "gradient_stats": self.gradient_stats},
        }

    def save_checkpoint(self, path: str | Path, train_loader=None) -> Path:
        """Write :meth:`state_dict` to ``path`` as ``.npz`` (atomically, via ``tt_core.save``)."""
        return tt_core.save(self.state_dict(train_loader), path)

    def resume(self, path: str | Path) -> Trainer:
        """Load a checkpoint written by :meth:`save_checkpoint` into this trainer's model,
        optimizer and scheduler, restore the RNG state and the epoch count; the training
        loader's generator is restored when ``fit`` starts. Then ``fit(..., epochs=N)``
        continues the run as if it had never stopped.

        All or nothing: every part of the checkpoint is checked before anything changes.

        Returns:
            This trainer.

        Raises:
            CheckpointError: the file is not an intact Trainer checkpoint, or it does not fit
                this trainer (the message lists every part that does not, e.g. the model's
                missing keys and the optimizer's type); the trainer is left unchanged.
        """
        state = tt_core.load(path)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a Trainer checkpoint (format {CHECKPOINT_FORMAT!r})")
        problems = self._checkpoint_problems(state)
        if problems:
            raise CheckpointError(f"{path} does not fit this trainer (nothing was loaded): " + "; ".join(problems))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        tt_core.set_rng_state(state["rng"])
        self._loader_rng = state["loader_rng"]
        self.epoch = int(state["epoch"])
        trainer = state["trainer"]
        self.history, self.best, self.bad_epochs = list(trainer["history"]), trainer["best"], int(trainer["bad_epochs"])
        if self._watch is not None:
            self._watch.records[:] = [dict(row, shape=tuple(row["shape"])) for row in trainer.get("gradient_stats", [])]
        return self

    def _checkpoint_problems(self, state: dict) -> list[str]:
        """Every reason why :meth:`resume` cannot load ``state`` (empty when it can)."""
        problems = _state.key_problems(state, CHECKPOINT_KEYS)
        if problems:
            return [f"not a complete Trainer checkpoint ({' | '.join(problems)})"]
        if (state["scheduler"] is None) != (self.scheduler is None):
            saved = "without" if state["scheduler"] is None else "with"
            problems.append(f"it was saved {saved} a scheduler, this trainer differs")
        parts = [("model", self.model), ("optimizer", self.optimizer)]
        parts += [("scheduler", self.scheduler)] if not problems and self.scheduler is not None else []
        for name, part in parts:
            try:
                part.check_state_dict(state[name])
            except CheckpointError as error:
                problems.append(f"{name}: {error}")
        problems += _state.count_problems(state, ["epoch"])
        problems += _state.bit_generator_problems(state["rng"], "rng", tt_core.get_rng_state()["bit_generator"])
        if state["loader_rng"] is not None:
            problems += _state.bit_generator_problems(state["loader_rng"], "loader_rng")
        trainer = state["trainer"]
        if not isinstance(trainer, dict):
            return problems + [f"trainer should be a dict, got {_state.show(trainer)}"]
        problems += [f"trainer: {p}" for p in _state.key_problems(trainer, TRAINER_KEYS, TRAINER_OPTIONAL_KEYS)]
        history = trainer.get("history", [])
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            problems.append(f"trainer.history should be a list of dicts, got {_state.show(history)}")
        best = trainer.get("best")
        if best is not None and not _state.is_number(best):
            problems.append(f"trainer.best should be a number or None, got {_state.show(best)}")
        problems += _state.count_problems(trainer, ["bad_epochs"], where="trainer.")
        stats = trainer.get("gradient_stats", [])
        if not isinstance(stats, list) or not all(isinstance(row, dict) and "shape" in row for row in stats):
            problems.append(f"trainer.gradient_stats should be a list of gradient records, got {_state.show(stats)}")
        return problems

    def _restore_loader_rng(self, train_loader) -> None:
        if self._loader_rng is None:
            return
        generator = getattr(train_loader, "generator", None)
        if not isinstance(generator, np.random.Generator):
            raise CheckpointError("the checkpoint holds the state of the loader's generator, but this loader has none")
        problems = _state.bit_generator_problems(self._loader_rng, "the checkpoint's loader_rng",
                                                 type(generator.bit_generator).__name__)
        if problems:
            raise CheckpointError(f"{problems[0]} (the loader's generator)")
        generator.bit_generator.state = self._loader_rng
        self._loader_rng = None

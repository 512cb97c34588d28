"""Learning-rate schedules, with PyTorch's names and values.

A scheduler sets ``group["lr"]`` of its optimizer's parameter groups. As in PyTorch, creating
one already sets the learning rate of step 0, and each ``scheduler.step()`` (after
``optimizer.step()``) moves one step on: once per epoch for :class:`StepLR` and
:class:`CosineAnnealingLR` as usually used, once per batch for :class:`OneCycleLR`.

Every schedule here is a closed form ``lr_at(step)``, so a schedule can be evaluated at any
step, saved as a handful of numbers and wrapped by :class:`LinearWarmup`.

Examples:
    >>> from tt_core import Linear
    >>> from tt_learn.optim import SGD
    >>> opt = SGD(Linear(2, 1).parameters(), lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(opt.param_groups[0]["lr"])
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from tt_core import CheckpointError

from . import _state
from .optim import Optimizer


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class LRScheduler:
    """Base class: remembers each group's initial learning rate (``base_lrs``) and the step
    count ``last_epoch``; subclasses define ``lr_at(step) -> list of learning rates``, and
    list in ``count_settings`` their settings that are counts (non-negative integers)."""

    count_settings: tuple[str, ...] = ("last_epoch",)
    not_state: tuple[str, ...] = ("optimizer",)  # attributes that state_dict() leaves out

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got a {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def lr_at(self, step: int) -> list[float]:
        """The learning rate of each parameter group at ``step``."""
        raise NotImplementedError

    def _set(self, step: int) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.lr_at(step)):
            group["lr"] = lr

    def step(self) -> None:
        """Advance one step and set the optimizer's learning rates."""
        self.last_epoch += 1
        self._set(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()``."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every setting and the step count (not the optimizer), plain values only (copies:
        changing the dict does not change the scheduler)."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if k not in self.not_state})

    def check_state_dict(self, state: Mapping[str, Any]) -> None:
        """Check that :meth:`load_state_dict` would accept ``state``, changing nothing.

        Raises:
            CheckpointError: naming every problem: missing and unexpected settings (a state
                dict of another kind of schedule has other ones), and settings whose type does
                not fit (a number for a number, the same number of per-group values, ...).
        """
        name = type(self).__name__
        if not isinstance(state, Mapping):
            raise CheckpointError(f"{name}.load_state_dict needs the dict of state_dict(), got {_state.show(state)}")
        current = self.state_dict()
        problems = _state.key_problems(state, current)
        for key in current:
            if key in state:
                problems += _state.mismatch(state[key], current[key], key)
        problems += _state.count_problems(state, self.count_settings)
        if problems:
            raise CheckpointError(f"the state dict does not fit this {name}: " + "; ".join(problems))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the settings and step count of :meth:`state_dict`, all or nothing.

        Raises:
            CheckpointError: see :meth:`check_state_dict`; the scheduler is left unchanged.
        """
        self.check_state_dict(state)
        self.__dict__.update(copy.deepcopy(dict(state)))


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps:
    ``lr = base_lr * gamma ** (step // step_size)``."""

    count_settings = ("last_epoch", "step_size")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int("step_size", step_size)
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, step):
        return [base * self.gamma ** (step // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the base learning rate down to ``eta_min`` over ``T_max`` steps
    (SGDR without restarts): ``eta_min + (base_lr - eta_min) * (1 + cos(pi * step / T_max)) / 2``.
    Past ``T_max`` the cosine continues (back up), as in PyTorch."""

    count_settings = ("last_epoch", "T_max")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _positive_int("T_max", T_max)
        self.eta_min = eta_min
        super().__init__(optimizer)

    def lr_at(self, step):
        cosine = (1 + math.cos(math.pi * step / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class LinearWarmup(LRScheduler):
    """Ramp the learning rate linearly from ``start_factor * base_lr`` up to ``base_lr`` over
    ``warmup_steps`` steps, then hold it, or hand over to the schedule ``after`` (which then
    runs from its own step 0).

    Args:
        optimizer: the optimizer whose learning rates to set.
        warmup_steps: length of the ramp.
        start_factor: fraction of the base learning rate at step 0 (default 0.01).
        after: a scheduler of the same optimizer to follow the warmup, e.g.
            ``LinearWarmup(opt, 100, after=CosineAnnealingLR(opt, T_max=900))``.

    Without ``after`` this is PyTorch's ``LinearLR(opt, start_factor, 1.0, warmup_steps)``.
    """

    count_settings = ("last_epoch", "warmup_steps")
    not_state = ("optimizer", "after")  # the schedule after the warmup saves its own state

    def __init__(self, optimizer: Optimizer, warmup_steps: int, start_factor: float = 0.01,
                 after: LRScheduler | None = None) -> None:
        self.warmup_steps = _positive_int("warmup_steps", warmup_steps)
        if not 0.0 <= start_factor <= 1.0:
            raise ValueError(f"start_factor must be in [0, 1], got {start_factor}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("the schedule after the warmup must drive the same optimizer")
        self.start_factor = start_factor
        self.after = after
        super().__init__(optimizer)

    def _factor(self, step: int) -> float:
        return self.start_factor + (1 - self.start_factor) * min(step, self.warmup_steps) / self.warmup_steps

    def lr_at(self, step):
        if step >= self.warmup_steps and self.after is not None:
            return self.after.lr_at(step - self.warmup_steps)
        return [base * self._factor(step) for base in self.base_lrs]

    def _set(self, step):
        if step >= self.warmup_steps and self.after is not None:
            self.after._set(step - self.warmup_steps)  # the wrapped schedule may set more than lr
        else:
            super()._set(step)

    def state_dict(self):
        state = super().state_dict()
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def check_state_dict(self, state):
        if not isinstance(state, Mapping) or "after" not in state:
            return super().check_state_dict(state)  # names what is missing
        own = {k: v for k, v in state.items() if k != "after"}
        after, problems = state["after"], []
        try:
            super().check_state_dict({**own, "after": self.state_dict()["after"]})
        except CheckpointError as error:
            problems.append(str(error))
        if (after is None) != (self.after is None):
            saved = "no schedule follows" if after is None else "a schedule follows"
            problems.append(f"in the state dict {saved} the warmup, in this LinearWarmup "
                            + ("none does" if self.after is None else f"a {type(self.after).__name__} does"))
        elif after is not None:
            try:
                self.after.check_state_dict(after)
            except CheckpointError as error:
                problems.append(f"the schedule after the warmup: {error}")
        if problems:
            raise CheckpointError("; ".join(problems))

    def load_state_dict(self, state):
        self.check_state_dict(state)
        state = dict(state)
        after = state.pop("after")
        self.__dict__.update(copy.deepcopy(state))
        if after is not None:
            self.after.load_state_dict(after)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, 2018), stepped once per batch: the learning rate
    rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of the steps,
    then anneals to ``max_lr / div_factor / final_div_factor``; the momentum (SGD's
    ``momentum``, Adam's ``beta1``) moves the opposite way between ``max_momentum`` and
    ``base_momentum``. With ``three_phase`` the rate first comes back down to its start and
    only then anneals to the minimum. Values and arguments as PyTorch's ``OneCycleLR``.

    Args:
        optimizer: the optimizer.
        max_lr: the peak learning rate (or one per parameter group).
        total_steps: number of steps in the cycle, or give ``epochs`` and ``steps_per_epoch``.
        pct_start: fraction of the cycle spent increasing the learning rate (default 0.3).
        anneal_strategy: "cos" (default) or "linear".
        cycle_momentum: also cycle the momentum (default True).
        base_momentum, max_momentum: momentum bounds (defaults 0.85, 0.95).
        div_factor: initial lr = max_lr / div_factor (default 25).
        final_div_factor: final lr = initial lr / final_div_factor (default 1e4).
        three_phase: use the three-phase variant (default False).
    """

    count_settings = ("last_epoch", "total_steps")

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR needs total_steps, or both epochs and steps_per_epoch")
            total_steps = _positive_int("epochs", epochs) * _positive_int("steps_per_epoch", steps_per_epoch)
        self.total_steps = _positive_int("total_steps", total_steps)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = cycle_momentum
        groups = optimizer.param_groups
        for group, peak in zip(groups, self._per_group("max_lr", max_lr, len(groups))):
            group["initial_lr"] = peak / div_factor
            group["max_lr"] = peak
            group["min_lr"] = group["initial_lr"] / final_div_factor
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"cycle_momentum needs an optimizer with momentum or betas, {type(optimizer).__name__} has neither"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            bases = self._per_group("base_momentum", base_momentum, len(groups))
            peaks = self._per_group("max_momentum", max_momentum, len(groups))
            for group, base, peak in zip(groups, bases, peaks):
                group["base_momentum"], group["max_momentum"] = base, peak
        self.pct_start, self.three_phase = pct_start, three_phase
        self._plan(self.total_steps)
        super().__init__(optimizer)

    def _plan(self, total_steps: int) -> None:
        """The phases of a cycle of ``total_steps`` steps: (end step, start/end lr key,
        start/end momentum key) of each."""
        self.total_steps = total_steps
        up = float(self.pct_start * total_steps) - 1
        if self.three_phase:
            self.phases = [
                [up, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [float(2 * self.pct_start * total_steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self.phases = [
                [up, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]

    def replan(self, total_steps: int) -> None:
        """Stretch or shrink the cycle to ``total_steps`` steps in all, from the step it is at
        (e.g. when a time budget allows more or fewer epochs than first planned): the phases
        keep their fractions of the new length, the learning rate (and momentum) is set for the
        current step, and the last step of the new cycle ends at the minimum learning rate.

        Raises:
            ValueError: ``total_steps`` is not a positive integer, or fewer steps than were
                already taken.
        """
        _positive_int("total_steps", total_steps)
        if total_steps < self.last_epoch:
            raise ValueError(f"cannot replan OneCycleLR to {total_steps} steps: it has already taken "
                             f"{self.last_epoch}; give at least that many")
        self._plan(total_steps)
        self._set(self.last_epoch)

    @staticmethod
    def _per_group(name: str, value, count: int) -> list[float]:
        if isinstance(value, (list, tuple)):
            if len(value) != count:
                raise ValueError(f"{name} has {len(value)} values for {count} parameter groups")
            return list(value)
        return [value] * count

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _phase(self, step: int) -> tuple[list, float]:
        """The phase that ``step`` falls in, and how far through it (0 to 1)."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped {step} times, but total_steps is {self.total_steps}")
        start = 0.0
        for phase in self.phases[:-1]:
            if step <= phase[0]:
                return phase, (step - start) / (phase[0] - start)
            start = phase[0]
        last = self.phases[-1]
        return last, (step - start) / (last[0] - start)

    def lr_at(self, step):
        phase, pct = self._phase(step)
        return [self._anneal(g[phase[1]], g[phase[2]], pct) for g in self.optimizer.param_groups]

    def momentum_at(self, step: int) -> list[float]:
        """The momentum (or Adam's beta1) of each parameter group at ``step``."""
        phase, pct = self._phase(step)
        return [self._anneal(g[phase[3]], g[phase[4]], pct) for g in self.optimizer.param_groups]

    def _set(self, step):
        super()._set(step)
        if self.cycle_momentum:
            for group, momentum in zip(self.optimizer.param_groups, self.momentum_at(step)):
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum


SCHEDULERS = {cls.__name__: cls for cls in (StepLR, CosineAnnealingLR, LinearWarmup, OneCycleLR)}

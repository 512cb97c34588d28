"""Pruning: setting the least important weights to zero, and keeping them there.

*Unstructured magnitude pruning* zeroes the individual weights of smallest magnitude, either
over the whole model at once (``scope="global"``: layers with many redundant weights lose
more) or the same fraction in every layer (``scope="layer"``). The zeros save space once
stored sparsely (:mod:`tt_perf.storage`) but not time: the matrices stay dense.

*Structured pruning* removes whole output neurons (rows of a Linear weight) or channels
(filters of a Conv2d) with the smallest L2 norm, together with their bias and the matching
entries of a BatchNorm2d that follows. :func:`shrink` then rebuilds a ``Sequential`` with
smaller dense layers, which is faster as well as smaller.

A :class:`Pruner` keeps one boolean mask per weight; the sparsity is exact (``round(s * n)``
weights, ties broken by position). Pruning a trained network all at once hurts it; pruning
gradually while fine-tuning lets it recover. :class:`SparsitySchedule` is the cubic schedule
of Zhu & Gupta (2017), and :func:`prune_finetune` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import tt_core
from tt_core import ArgumentError, Module, Tensor

PRUNABLE = ("Linear", "Conv2d")
ZERO_PRESERVING = ("ReLU", "GELU", "Tanh", "Dropout", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Identity")


def _is(module, names: Iterable[str]) -> bool:
    """Whether ``module``'s class (or a base class) has one of ``names``."""
    names = tuple(names)
    return any(cls.__name__ in names for cls in type(module).__mro__)


def prunable_layers(model: Module, skip: Iterable[str] = ()) -> list[tuple[str, Module]]:
    """The Linear and Conv2d layers of ``model`` (by dotted name), except those in ``skip``."""
    skip = set(skip)
    return [(name, m) for name, m in model.named_modules() if _is(m, PRUNABLE) and name not in skip]


def _smallest(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest scores; ties go to the earlier position (stable sort)."""
    return np.argsort(scores, kind="stable")[:k]


def _following_batchnorm(model: Module, layer: Module) -> Module | None:
    """The BatchNorm2d registered right after ``layer`` in the same parent (Sequential order)."""
    for _, parent in model.named_modules():
        children = list(parent._modules.values())
        for index, child in enumerate(children[:-1]):
            if child is layer and _is(children[index + 1], ("BatchNorm2d",)):
                return children[index + 1]
    return None


class Pruner:
    """Boolean masks over the prunable weights of a model, and the means to enforce them.

    Args:
        model: the model whose Linear/Conv2d weights are pruned (in place).
        structured: prune whole output neurons/channels instead of single weights. The
            last prunable layer (the classifier, whose outputs are the classes) is skipped.
        scope: ``"global"`` (one magnitude threshold for all layers) or ``"layer"`` (the same
            sparsity in each layer); structured pruning is always per layer.
        skip: dotted names of layers never to prune.

    Raises:
        ArgumentError: an unknown ``scope``.
        TinyTorchError: no Linear or Conv2d layer to prune.

    Examples:
        >>> from tt_core import Linear, ReLU, Sequential
        >>> net = Sequential(Linear(20, 30), ReLU(), Linear(30, 5))
        >>> pruner = Pruner(net).prune(0.5)
        >>> round(pruner.sparsity(), 3)
        0.5
    """

    def __init__(self, model: Module, *, structured: bool = False, scope: str = "global", skip: Iterable[str] = ()) -> None:
        if scope not in ("global", "layer"):
            raise ArgumentError(f"scope must be 'global' or 'layer', got {scope!r}")
        self.model, self.structured, self.scope = model, structured, "layer" if structured else scope
        layers = prunable_layers(model, skip)
        if structured and layers:
            layers = layers[:-1]
        if not layers:
            raise tt_core.TinyTorchError(f"{type(model).__name__} has no Linear or Conv2d layer to prune")
        self.layers = dict(layers)
        self.masks = {name: np.ones(layer.weight.shape, dtype=bool) for name, layer in layers}
        self.batchnorms = {name: _following_batchnorm(model, layer) for name, layer in layers} if structured else {}
        self.target = 0.0

    # -- choosing what to prune ----------------------------------------------------------
    def _scores(self, name: str) -> np.ndarray:
        """Importance of each weight (or each output row, when structured); pruned ones score -1."""
        weight = self.layers[name].weight.data
        mask = self.masks[name]
        if self.structured:
            rows = weight.reshape(weight.shape[0], -1)
            return np.where(mask.reshape(len(rows), -1).any(axis=1), np.sqrt((rows * rows).sum(axis=1)), -1.0)
        return np.where(mask, np.abs(weight), -1.0).reshape(-1)

    def prune(self, sparsity: float) -> Pruner:
        """Prune to ``sparsity`` (fraction of zeros among the prunable weights), then apply.

        Already pruned weights stay pruned, so calling this with a rising sparsity (a
        schedule) only ever removes more.

        Raises:
            ArgumentError: ``sparsity`` is not in [0, 1) (a ValueError too).
        """
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)) \
                or not 0 <= sparsity < 1:
            raise ArgumentError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
        self.target = sparsity
        if self.scope == "global":
            scores = {name: self._scores(name) for name in self.layers}
            flat = np.concatenate(list(scores.values()))
            chosen = np.zeros(flat.size, dtype=bool)
            chosen[_smallest(flat, round(sparsity * flat.size))] = True
            offsets = np.cumsum([0] + [s.size for s in scores.values()])
            for (name, _), start, stop in zip(scores.items(), offsets[:-1], offsets[1:]):
                self.masks[name] = ~chosen[start:stop].reshape(self.masks[name].shape)
        else:
            for name in self.layers:
                scores = self._scores(name)
                keep = np.ones(scores.size, dtype=bool)
                keep[_smallest(scores, round(sparsity * scores.size))] = False
                shape = (-1,) + (1,) * (self.masks[name].ndim - 1) if self.structured else self.masks[name].shape
                self.masks[name] = np.broadcast_to(keep.reshape(shape), self.masks[name].shape).copy()
        return self.apply()

    def apply(self) -> Pruner:
        """Zero every masked weight (call after each optimizer step while fine-tuning)."""
        for name, layer in self.layers.items():
            mask = self.masks[name]
            layer.weight.data *= mask
            if self.structured:  # a dead channel also loses its bias and its BatchNorm scale and shift
                alive = mask.reshape(mask.shape[0], -1).any(axis=1)
                batchnorm = self.batchnorms.get(name)
                for param in (layer.bias, *((batchnorm.weight, batchnorm.bias) if batchnorm is not None else ())):
                    if param is not None:
                        param.data *= alive
        return self

    # -- reporting -----------------------------------------------------------------------
    def sparsity(self) -> float:
        """Fraction of the prunable weights that are exactly zero."""
        zeros = sum(int(self.layers[n].weight.data.size - np.count_nonzero(self.layers[n].weight.data)) for n in self.layers)
        return zeros / sum(layer.weight.data.size for layer in self.layers.values())

    def layer_sparsity(self) -> dict[str, float]:
        return {name: 1 - np.count_nonzero(layer.weight.data) / layer.weight.data.size for name, layer in self.layers.items()}


def prune(model: Module, sparsity: float, *, structured: bool = False, scope: str = "global",
          skip: Iterable[str] = ()) -> Pruner:
    """Magnitude-prune ``model`` in place to ``sparsity``; returns the :class:`Pruner` (its masks).

    Examples:
        >>> import numpy as np
        >>> import tt_core as tt
        >>> model = tt.Sequential(tt.Linear(16, 32), tt.ReLU(), tt.Linear(32, 4))
        >>> _ = prune(model, 0.8)  # the 80% smallest weights, over all layers, become zeros
        >>> weights = np.concatenate([model[0].weight.data.ravel(), model[2].weight.data.ravel()])
        >>> round(float((weights == 0).mean()), 2)
        0.8
    """
    return Pruner(model, structured=structured, scope=scope, skip=skip).prune(sparsity)


# ----------------------------------------------------------------------------------------
# Gradual pruning while fine-tuning
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparsitySchedule:
    """Cubic sparsity ramp (Zhu & Gupta 2017): fast at first, gentle near the target.

    ``s(t) = final + (initial - final) * (1 - (t - begin) / steps) ** 3`` for ``t`` in
    ``[begin, begin + steps]``; ``initial`` before, ``final`` after.

    Raises:
        ArgumentError: not ``0 <= initial <= final < 1``, or ``steps < 1``.
    """

    final: float
    steps: int
    initial: float = 0.0
    begin: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.initial <= self.final < 1):
            raise ArgumentError(f"need 0 <= initial <= final < 1, got initial={self.initial}, final={self.final}")
        if self.steps < 1:
            raise ArgumentError(f"steps must be >= 1, got {self.steps}")

    def __call__(self, step: int) -> float:
        progress = min(max((step - self.begin) / self.steps, 0.0), 1.0)
        return self.final + (self.initial - self.final) * (1 - progress) ** 3


def _forever(batches: Iterable):
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise tt_core.TinyTorchError("prune_finetune() got no batches (an exhausted iterator?): pass a DataLoader or a list")


def prune_finetune(model: Module, pruner: Pruner, schedule: SparsitySchedule, batches: Iterable,
                   loss_fn: Callable, optimizer, *, steps: int, prune_every: int = 10,
                   on_step: Callable[[int, float, float], None] | None = None) -> list[tuple[int, float, float]]:
    """Train ``model`` for ``steps`` mini-batches while its sparsity follows ``schedule``.

    Every ``prune_every`` steps the pruner prunes to ``schedule(step)``; after every optimizer
    step the masks are re-applied, so pruned weights stay zero. The final sparsity is
    ``schedule.final``. ``batches`` (a DataLoader or a list of ``(x, y)``) is iterated again
    whenever it runs out.

    Returns:
        ``[(step, sparsity, loss), ...]``, one entry per step.

    Raises:
        ArgumentError: ``steps`` or ``prune_every`` below 1.
    """
    if steps < 1 or prune_every < 1:
        raise ArgumentError(f"steps and prune_every must be >= 1, got {steps}, {prune_every}")
    model.train()
    history = []
    source = _forever(batches)
    for step in range(steps):
        if step % prune_every == 0:
            pruner.prune(schedule(step))
        x, y = next(source)
        loss = loss_fn(model(x if isinstance(x, Tensor) else Tensor(x)), y if isinstance(y, Tensor) else Tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        pruner.apply()
        history.append((step, pruner.target, float(loss.item())))
        if on_step is not None:
            on_step(*history[-1])
    pruner.prune(schedule.final)
    model.eval()
    return history


# ----------------------------------------------------------------------------------------
# Structured pruning made real: smaller dense layers
# ----------------------------------------------------------------------------------------


def _slice_param(owner: Module, attr: str, index: np.ndarray, axis: int = 0) -> None:
    value = getattr(owner, attr, None)
    if value is not None:  # a contiguous copy, column-major when it was (a Linear's weight)
        order = "F" if value.data.flags.f_contiguous else "C"
        value.data = np.take(value.data, index, axis=axis).copy(order=order)


def shrink(model: Module) -> Module:
    """Remove the zeroed neurons/channels of a structurally pruned ``Sequential``, in place.

    Every Linear/Conv2d whose whole output row is zero (and its bias, and a following
    BatchNorm2d's scale and shift) produces exactly zero there; after a zero-preserving
    activation, pooling or Flatten the next layer's matching inputs only ever see zeros.
    Removing both gives a smaller dense model with the same outputs.
    """
    if not isinstance(model, tt_core.Sequential):
        raise tt_core.TinyTorchError(f"shrink() rebuilds a Sequential, got {type(model).__name__}")
    keep: np.ndarray | None = None  # kept output channels of the last layer that had outputs
    channels = 0  # how many channels ``keep`` selects from
    flattened = False
    for layer in model:
        if _is(layer, PRUNABLE):
            if keep is not None:
                if flattened:  # (C, H, W) flattened channel-major: expand each channel to its H*W block
                    block = layer.weight.shape[1] // channels
                    keep = (keep[:, None] * block + np.arange(block)).reshape(-1)
                _slice_param(layer, "weight", keep, axis=1)
            rows = layer.weight.data.reshape(layer.weight.shape[0], -1)
            bias = layer.bias.data if layer.bias is not None else np.zeros(len(rows))
            alive = np.flatnonzero(rows.any(axis=1) | (bias != 0))
            channels, keep, flattened = len(rows), alive, False
            _slice_param(layer, "weight", alive)
            _slice_param(layer, "bias", alive)
            _resize(layer)
        elif _is(layer, ("BatchNorm2d",)) and keep is not None:
            for attr in ("weight", "bias", "running_mean", "running_var"):
                _slice_param(layer, attr, keep)
            _resize(layer)
        elif _is(layer, ("Flatten",)):
            flattened = True
        elif not _is(layer, ZERO_PRESERVING):
            raise tt_core.TinyTorchError(
                f"shrink() cannot pass through {type(layer).__name__}: it may turn zeros into non-zeros")
    return model


def _resize(layer: Module) -> None:
    """Update the size attributes of a layer whose arrays were sliced."""
    shape = layer.weight.shape
    for attr, value in (("out_features", shape[0]), ("in_features", shape[-1] if len(shape) == 2 else None),
                        ("out_channels", shape[0]), ("in_channels", shape[1] if len(shape) == 4 else None),
                        ("num_features", shape[0])):
        if value is not None and isinstance(getattr(layer, attr, None), int):
            setattr(layer, attr, value)

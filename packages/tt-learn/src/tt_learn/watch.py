"""Watching gradients flow: per-parameter gradient norms and update-to-weight ratios.

A :class:`GradientWatch` follows the named parameters of a model through training. Around each
optimizer step it reads every parameter's gradient norm ``||g||`` and the relative size of the
step, ``||Δw|| / ||w||`` (the update-to-weight ratio); at the end of each period of training (an
epoch, or any number of steps) it writes one record per parameter. A gradient norm that shrinks
layer by layer towards the input is a vanishing gradient; an update ratio far below ``1e-3``
means a layer barely learns, far above ``1e-2`` that it is being thrown around.

The cost per step is one norm per gradient, one copy of the weights and one norm per weight
change, each a single vectorised NumPy call per parameter.

Examples:
    >>> import numpy as np
    >>> import tt_core as tt
    >>> from tt_learn.optim import SGD
    >>> model = tt.Linear(2, 1)
    >>> watch = GradientWatch(model)
    >>> opt = SGD(model.parameters(), lr=0.1)
    >>> loss = (model(tt.Tensor(np.ones((4, 2), np.float32))) ** 2).mean()
    >>> loss.backward()
    >>> with watch.step():
    ...     opt.step()
    >>> [row["parameter"] for row in watch.end_epoch()]
    ['weight', 'bias']
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

import numpy as np
from tt_core import Module, Tensor, TinyTorchError

__all__ = ["GradientWatch"]


def _norms(arrays: Iterable[np.ndarray | None]) -> np.ndarray:
    """The Euclidean norm of each array (0 for None), as float64."""
    return np.array([0.0 if a is None else np.linalg.norm(a.ravel()) for a in arrays], dtype=np.float64)


class GradientWatch:
    """Records, per training period and per parameter, the gradient norm and the
    update-to-weight ratio.

    Wrap each optimizer step in :meth:`step` (after ``loss.backward()``); call
    :meth:`end_epoch` when a period of training is over. Gradients are measured when
    :meth:`step` is entered, so a clipping call inside the block does not change them; the
    update is the change of the weights across the block.

    Args:
        model: a Module (its ``named_parameters()`` are watched), or an iterable of
            ``(name, Tensor)`` pairs.

    Attributes:
        records: one dict per parameter per finished period, in ``named_parameters()`` order:

            * ``epoch``: the period's number (see :meth:`end_epoch`);
            * ``parameter``: its dotted name (``"layers.0.weight"``); ``shape``: its shape;
            * ``grad_norm``: the mean over the period's steps of ``||grad||`` (0 for a step
              in which it had no gradient); ``grad_norm_last``: the last step's;
            * ``update_ratio``: the mean over the period's steps of ``||w_after - w_before||
              / ||w_before||``; ``update_ratio_last``: the last step's (both NaN while
              ``||w_before||`` is 0, e.g. a bias initialised to zero before its first step);
            * ``weight_norm``: ``||w||`` at the end of the period; ``steps``: how many
              steps the period had.

    Raises:
        TinyTorchError: ``model`` has no parameters, or a pair is not ``(str, Tensor)``.
    """

    def __init__(self, model: Module | Iterable[tuple[str, Tensor]]) -> None:
        pairs = list(model.named_parameters() if isinstance(model, Module) else model)
        if not pairs:
            raise TinyTorchError("GradientWatch: there are no parameters to watch (pass a Module that has some)")
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                    and isinstance(pair[1], Tensor)):
                raise TinyTorchError(
                    f"GradientWatch: expected a Module or (name, Tensor) pairs, got {pair!r}: "
                    "pass model or model.named_parameters()"
                )
        self.names = [name for name, _ in pairs]
        self.params = [param for _, param in pairs]
        self.records: list[dict[str, Any]] = []
        self._before: list[np.ndarray] = []
        self._reset()

    def _reset(self) -> None:
        n = len(self.params)
        self._steps = 0
        self._grad_sum, self._grad_last = np.zeros(n), np.zeros(n)
        self._ratio_sum, self._ratio_count, self._ratio_last = np.zeros(n), np.zeros(n), np.full(n, np.nan)

    @property
    def steps(self) -> int:
        """The number of steps measured in the current (unfinished) period."""
        return self._steps

    @contextmanager
    def step(self):
        """Measure one optimizer step: gradient norms on entry, the weights' change on exit."""
        grads = _norms(None if p.grad is None else p.grad.data for p in self.params)
        if [b.shape for b in self._before] != [p.data.shape for p in self.params]:
            self._before = [np.empty_like(p.data) for p in self.params]
        for buffer, param in zip(self._before, self.params):
            np.copyto(buffer, param.data)
        weights = _norms(self._before)
        yield
        for buffer, param in zip(self._before, self.params):
            np.subtract(buffer, param.data, out=buffer)
        defined = weights > 0
        ratios = np.divide(_norms(self._before), weights, out=np.full(len(weights), np.nan), where=defined)
        self._steps += 1
        self._grad_sum += grads
        self._grad_last = grads
        self._ratio_sum += np.where(defined, ratios, 0.0)
        self._ratio_count += defined
        self._ratio_last = ratios

    def end_epoch(self, epoch: int | None = None) -> list[dict[str, Any]]:
        """Close the current period: append one record per parameter to :attr:`records`.

        Args:
            epoch: the number to record the period under (an epoch, or a step count for
                a loop without epochs); default one more than the last period's (1 first).

        Returns:
            The new records (also in :attr:`records`).

        Raises:
            TinyTorchError: no step was measured since the last period ended.
        """
        if self._steps == 0:
            raise TinyTorchError("GradientWatch.end_epoch: no step was measured in this period "
                                 "(wrap each optimizer step in `with watch.step():`)")
        if epoch is None:
            epoch = self.records[-1]["epoch"] + 1 if self.records else 1
        grad_mean = self._grad_sum / self._steps
        ratio_mean = np.divide(self._ratio_sum, self._ratio_count, out=np.full(len(self.params), np.nan),
                               where=self._ratio_count > 0)
        weights = _norms(p.data for p in self.params)
        rows = [
            {"epoch": int(epoch), "parameter": name, "shape": tuple(param.shape),
             "grad_norm": float(grad_mean[i]), "grad_norm_last": float(self._grad_last[i]),
             "update_ratio": float(ratio_mean[i]), "update_ratio_last": float(self._ratio_last[i]),
             "weight_norm": float(weights[i]), "steps": self._steps}
            for i, (name, param) in enumerate(zip(self.names, self.params))
        ]
        self.records.extend(rows)
        self._reset()
        return rows

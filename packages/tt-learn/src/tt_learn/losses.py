"""Loss functions, with PyTorch's names, arguments and numerics.

Every loss here is *composed* from tt-core primitives (``log_softmax``, indexing, ``mean``,
...), so it needs no gradient rule of its own: autograd differentiates the composition.
Each comes as a function (``cross_entropy(logits, target)``) and as a Module
(``CrossEntropyLoss()(logits, target)``), and takes ``reduction``:

* ``"mean"`` (default): the average over the elements (samples),
* ``"sum"``: their sum,
* ``"none"``: one loss per element, in the target's shape.

Examples:
    >>> import numpy as np
    >>> from tt_core import Tensor
    >>> logits = Tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> round(cross_entropy(logits, Tensor(np.array([0, 1]))).item(), 4)
    0.3606
"""

from __future__ import annotations

import numpy as np
from tt_core import Module, ShapeError, Tensor, TinyTorchError, stack

REDUCTIONS = ("mean", "sum", "none")


class TargetError(TinyTorchError, ValueError):
    """Targets that do not fit the loss: wrong dtype, or class indices out of range."""


def _float_target(target, input: Tensor) -> Tensor:
    """The target as a Tensor of the input's dtype (integer 0/1 labels become floats)."""
    target = target if isinstance(target, Tensor) else Tensor(target)
    return target if target.dtype == input.dtype else target.astype(input.dtype)


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")


def _check_same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ShapeError(
            f"{name}: input shape {input.shape} and target shape {target.shape} differ; they must be equal "
            "(a (N, 1) output against (N,) targets is the usual cause: reshape one of them)"
        )


# ----------------------------------------------------------------------------------------
# Regression and binary classification
# ----------------------------------------------------------------------------------------


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)**2``, reduced.

    Raises:
        ShapeError: ``input`` and ``target`` differ in shape (no broadcasting).

    Examples:
        >>> from tt_core import tensor
        >>> mse_loss(tensor([1.0, 2.0]), [0.0, 0.0])
        tensor(2.5)
        >>> mse_loss(tensor([1.0, 2.0]), [0.0, 0.0], reduction="none")
        tensor([1., 4.])
    """
    _check_reduction(reduction)
    target = _float_target(target, input)
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


def _clamped_log(p: Tensor) -> Tensor:
    """``log(p)`` clamped at -100. ``p`` is first raised to 1e-44 (below e^-100), so that p = 0
    gives -100 and a zero gradient rather than ``-inf`` and ``nan``."""
    return p.clip(low=1e-44).log().clip(low=-100.0)


def binary_cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` (in [0, 1]) against targets in [0, 1]:
    ``-(t log p + (1 - t) log(1 - p))``.

    As in PyTorch, each log is clamped at -100, so a probability of exactly 0 or 1 gives a
    large finite loss instead of ``inf`` (and there a zero gradient, where PyTorch's is huge).
    Prefer :func:`binary_cross_entropy_with_logits`, which is stable for any logit.
    """
    _check_reduction(reduction)
    target = _float_target(target, input)
    _check_same_shape("binary_cross_entropy", input, target)
    p = input.data
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise TargetError(
            "binary_cross_entropy: input must hold probabilities in [0, 1] "
            f"(got values in [{np.nanmin(p):.4g}, {np.nanmax(p):.4g}]); pass logits to "
            "binary_cross_entropy_with_logits / BCEWithLogitsLoss instead"
        )
    return _reduce(-(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input)), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)``, computed from the logits without overflow.

    ``log sigmoid(x)`` and ``log sigmoid(-x) = log(1 - sigmoid(x))`` are exactly the log-softmax
    of the pair ``(x, 0)``, so one call of the stable, fused ``log_softmax`` gives both, finite
    for any ``x`` and with the exact gradient ``sigmoid(x) - t`` (the textbook
    ``max(x, 0) - x t + log(1 + exp(-|x|))`` built from ``relu`` and ``abs`` has a wrong
    gradient at ``x = 0``, where both kinks meet).

    Examples:
        >>> from tt_core import tensor
        >>> binary_cross_entropy_with_logits(tensor([1000.0, -1000.0]), [0.0, 1.0], reduction="none")
        tensor([1000., 1000.])
    """
    _check_reduction(reduction)
    target = _float_target(target, input)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    pair = stack([input, Tensor._make(np.zeros_like(input.data))], axis=-1)
    log_probs = pair.log_softmax(axis=-1)  # [..., 0] = log sigmoid(x), [..., 1] = log(1 - sigmoid(x))
    weights = stack([target, 1 - target], axis=-1)
    return _reduce(-(log_probs * weights).sum(axis=-1), reduction)


# ----------------------------------------------------------------------------------------
# Multi-class classification
# ----------------------------------------------------------------------------------------


def _class_rows(name: str, input: Tensor, target) -> tuple[Tensor, np.ndarray, tuple]:
    """Bring ``input`` of shape (N, C, d1, ...) (or (C,)) to rows (M, C) and the integer
    ``target`` of shape (N, d1, ...) (or ()) to (M,), checking shapes, dtype and range.
    Returns the rows, the flat targets and the target's shape (for ``reduction="none"``)."""
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if target.dtype.kind not in "iu":
        raise TargetError(
            f"{name}: targets must be integer class indices, got dtype {target.dtype} "
            "(build them with np.array(labels) or tensor.astype(np.int64); note that Tensor([0, 1]) "
            "from a Python list is float32)"
        )
    if input.ndim == 0:
        raise ShapeError(f"{name}: input must have a class axis, got a scalar")
    classes = input.shape[0] if input.ndim == 1 else input.shape[1]
    expected = () if input.ndim == 1 else input.shape[:1] + input.shape[2:]
    if target.shape != expected:
        raise ShapeError(
            f"{name}: input of shape {input.shape} (classes on axis {0 if input.ndim == 1 else 1}) "
            f"needs targets of shape {expected}, got {target.shape}"
        )
    if target.size and (target.min() < 0 or target.max() >= classes):
        raise TargetError(
            f"{name}: target class indices must be in [0, {classes - 1}] for {classes} classes, "
            f"got values in [{target.min()}, {target.max()}]"
        )
    if input.ndim != 2:  # (C,) -> (1, C); (N, C, d1, ...) -> (N, d1, ..., C) -> (M, C)
        if input.ndim > 2:
            input = input.permute(0, *range(2, input.ndim), 1)
        input = input.reshape(-1, classes)
    return input, target.reshape(-1), target.shape


def _picked(log_probs: Tensor, target: np.ndarray) -> Tensor:
    """``log_probs[i, target[i]]`` for every row ``i``."""
    return log_probs[np.arange(len(target)), target]


def nll_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) at the
    integer classes ``target`` (N,) or (N, d1, ...): ``-input[i, target[i]]``."""
    _check_reduction(reduction)
    rows, flat, shape = _class_rows("nll_loss", input, target)
    loss = -_picked(rows, flat)
    return loss.reshape(shape) if reduction == "none" else _reduce(loss, reduction)


def cross_entropy(input: Tensor, target, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against integer classes
    ``target`` (N,) or (N, d1, ...): ``nll_loss(log_softmax(input, axis=1), target)``.

    With ``label_smoothing`` = ε the target distribution is ``1 - ε`` on the true class plus
    ``ε / C`` spread over all classes, so the loss becomes
    ``(1 - ε) * nll - ε * mean_c(log_softmax)``, as in PyTorch.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    rows, flat, shape = _class_rows("cross_entropy", input, target)
    log_probs = rows.log_softmax(axis=1)
    loss = -_picked(log_probs, flat)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * log_probs.mean(axis=1)
    return loss.reshape(shape) if reduction == "none" else _reduce(loss, reduction)


# ----------------------------------------------------------------------------------------
# Module forms
# ----------------------------------------------------------------------------------------


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error. Shape: input and target alike, any shape."""

    def forward(self, input: Tensor, target) -> Tensor:
        return mse_loss(input, target, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (see :func:`binary_cross_entropy`)."""

    def forward(self, input: Tensor, target) -> Tensor:
        return binary_cross_entropy(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, stable for any logit (see
    :func:`binary_cross_entropy_with_logits`). Shape: input and target alike."""

    def forward(self, input: Tensor, target) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.reduction)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (see :func:`nll_loss`).
    Shape: input (N, C) or (N, C, d1, ...), target (N,) or (N, d1, ...) of integers."""

    def forward(self, input: Tensor, target) -> Tensor:
        return nll_loss(input, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against integer classes (see :func:`cross_entropy`).

    Args:
        reduction: "mean", "sum" or "none".
        label_smoothing: ε in [0, 1]; the target puts ``1 - ε + ε/C`` on the true class.

    Shape:
        input (N, C) or (N, C, d1, ...) logits, target (N,) or (N, d1, ...) integers in [0, C).

    Examples:
        >>> import numpy as np
        >>> from tt_core import Tensor
        >>> loss = CrossEntropyLoss()(Tensor(np.zeros((4, 10))), np.array([1, 2, 3, 4]))
        >>> round(loss.item(), 4)  # log(10)
        2.3026
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return cross_entropy(input, target, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


LOSSES = {cls.__name__: cls for cls in (MSELoss, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, NLLLoss)}

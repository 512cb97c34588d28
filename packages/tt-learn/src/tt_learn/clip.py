"""Gradient clipping, in place, as PyTorch's ``torch.nn.utils.clip_grad_norm_`` and
``clip_grad_value_``. Call between ``loss.backward()`` and ``optimizer.step()``."""

from __future__ import annotations

import math

import numpy as np
from tt_core import Tensor, TinyTorchError


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The joint norm is the ``norm_type``-norm of all gradients concatenated into one vector
    (``float("inf")`` for the largest absolute value). When it exceeds ``max_norm`` every
    gradient is multiplied by ``max_norm / (norm + 1e-6)``.

    Args:
        parameters: a Tensor or an iterable of Tensors (those without ``.grad`` are skipped).
        max_norm: the largest allowed norm.
        norm_type: the p of the p-norm (default 2).
        error_if_nonfinite: raise if the norm is nan or inf (default False).

    Returns:
        The joint norm before clipping, as a Python float.

    Raises:
        ValueError: ``max_norm`` is negative.
        TinyTorchError: the norm is nan or inf and ``error_if_nonfinite`` is set.

    Examples:
        >>> from tt_core import tensor
        >>> w = tensor([0.0, 0.0], requires_grad=True)
        >>> w.grad = tensor([3.0, 4.0])
        >>> clip_grad_norm_([w], max_norm=1.0)  # the norm before clipping
        5.0
        >>> w.grad  # now of norm 1 (to within the 1e-6 guard)
        tensor([0.6, 0.8])
    """
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norms = np.array([np.linalg.norm(g.ravel(), norm_type) for g in grads], dtype=np.float64)
    total = float(norms.max() if norm_type == math.inf else np.linalg.norm(norms, norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise TinyTorchError(
            f"the total norm of order {norm_type} of the gradients is {total}, so they cannot be clipped "
            "(set error_if_nonfinite=False to clip anyway)"
        )
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for g in grads:
            g *= coefficient
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``, in place.

    Examples:
        >>> from tt_core import tensor
        >>> w = tensor([0.0, 0.0], requires_grad=True)
        >>> w.grad = tensor([-3.0, 0.5])
        >>> clip_grad_value_([w], 1.0)
        >>> w.grad
        tensor([-1. ,  0.5])
    """
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)

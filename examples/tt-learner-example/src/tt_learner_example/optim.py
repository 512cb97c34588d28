"""Act II optimizer: ``SGD`` with momentum, dampening, Nesterov momentum and weight decay.

Built on tt-learn's :class:`tt_learn.optim.Optimizer`, which keeps the parameter groups, the
per-parameter state, ``zero_grad`` and the state dicts; a subclass says what state a
parameter starts with (``init_state``) and how one step changes it (``update``).
"""

from __future__ import annotations

import numpy as np
from tt_learn.optim import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's arguments and update rule.

    One step, for each parameter ``p`` with a gradient ``g``::

        g = g + weight_decay * p                       (an L2 penalty; skipped when 0)
        b = g                                          on the parameter's first step
        b = momentum * b + (1 - dampening) * g         on later steps
        g = g + momentum * b  if nesterov  else  b     (only when momentum > 0)
        p = p - lr * g

    The momentum buffer ``b`` is the parameter's state ``"momentum_buffer"`` (None until the
    first step with momentum), so it is saved by ``state_dict()``. Parameters without a
    gradient are skipped; the gradient arrays themselves are never changed.

    Args:
        params: an iterable of Tensors, or of parameter groups ``{"params": [...], "lr": ...}``.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0: plain SGD).
        dampening: how much of each new gradient the momentum buffer leaves out (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        nesterov: Nesterov momentum: step along ``g + momentum * b`` instead of ``b``.

    Raises:
        ValueError: a negative ``lr``, ``momentum`` or ``weight_decay``, or ``nesterov`` without
            ``momentum > 0`` and ``dampening == 0``.

    Examples:
        >>> from tt_core import Parameter, tensor
        >>> w = Parameter(np.array([1.0, -2.0], dtype=np.float32))
        >>> w.grad = tensor([0.5, 0.5])
        >>> opt = SGD([w], lr=0.1, momentum=0.9)
        >>> opt.step(); opt.step()  # the buffer is g, then 0.9 g + g
        >>> [round(float(v), 3) for v in w.numpy()]
        [0.855, -2.145]
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _validate(self, group: dict) -> None:
        """Raise ValueError for hyper-parameters SGD cannot use (``lr`` and ``weight_decay`` are
        checked by the base class)."""
        super()._validate(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD needs momentum >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD with nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def init_state(self, param, group: dict) -> dict:
        """A parameter's state before its first step: no momentum buffer yet."""
        return {"momentum_buffer": None}

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict, work: np.ndarray) -> None:
        """One SGD step on the array ``param``, in place.

        Args:
            param: the parameter's values, changed in place.
            grad: its gradient (same shape), left unchanged.
            state: the parameter's state, holding the momentum buffer.
            group: the hyper-parameters of the parameter's group.
            work: scratch space shaped like ``param``.
        """
        momentum = group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        if momentum:
            buffer = state["momentum_buffer"]
            if buffer is None:  # np.array, not .copy(): a 0-d sum above is a NumPy scalar, not an array
                buffer = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                buffer *= momentum
                buffer += (1 - group["dampening"]) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        np.multiply(grad, group["lr"], out=work)
        param -= work

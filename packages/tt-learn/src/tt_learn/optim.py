"""Optimizers with PyTorch's names, hyper-parameters and update rules.

An optimizer holds *parameter groups* (each a dict with a ``"params"`` list and its own
hyper-parameters, e.g. a smaller ``lr`` for a pretrained part) and a per-parameter ``state``
(momentum buffers, moment estimates, step counts). ``step()`` reads each parameter's ``.grad``
and updates ``.data`` in place with vectorised NumPy; parameters without a gradient are skipped.

The arithmetic follows ``torch.optim`` term by term, so 20 steps here and in PyTorch agree to
float32 rounding. Updates run in place on float32 arrays and reuse one scratch array per
parameter instead of allocating temporaries every step.

Examples:
    >>> from tt_core import Linear
    >>> model = Linear(3, 1)
    >>> opt = SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.0}], lr=0.1, momentum=0.9)
    >>> [group["lr"] for group in opt.param_groups]
    [0.1, 0.0]
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from tt_core import CheckpointError, Tensor, TinyTorchError
from tt_core.module import describe_dtype, loadable_dtype, state_array

from . import _state


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _index(key) -> int | None:
    """A parameter index of a state dict (an int, or its decimal string), or None."""
    if isinstance(key, str) and key.isdecimal():
        return int(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    return None


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad``, state dicts.

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], <hyper-parameter>: value}``
            (parameter groups; missing hyper-parameters take the ``defaults``).
        defaults: the hyper-parameters of this optimizer and their values.

    A new optimizer subclasses this and implements two methods; everything else (groups,
    skipping parameters without a gradient, ``zero_grad``, state dicts) comes with the base:

    * ``init_state(param, group) -> dict``: the state of one parameter (a Tensor) before its
      first step, e.g. ``{"step": 0, "velocity": np.zeros_like(param.data)}``. Arrays in it are
      saved and restored by :meth:`state_dict` / :meth:`load_state_dict`.
    * ``update(param, grad, state, group, work) -> None``: one step of one parameter. ``param``
      is the parameter's array, changed in place; ``grad`` its gradient (an array of the same
      shape, read only); ``state`` the dict from ``init_state``, updated in place; ``group``
      the parameter group's hyper-parameters (``group["lr"]``, ...); ``work`` a scratch array
      shaped like ``param``, reused across steps, free to overwrite.

    Examples:
        >>> import numpy as np
        >>> from tt_core import Parameter, Tensor
        >>> class SignSGD(Optimizer):  # p -= lr * sign(g)
        ...     def __init__(self, params, lr=0.01):
        ...         super().__init__(params, {"lr": lr})
        ...     def init_state(self, param, group):
        ...         return {"step": 0}
        ...     def update(self, param, grad, state, group, work):
        ...         state["step"] += 1
        ...         np.sign(grad, out=work)
        ...         work *= group["lr"]
        ...         param -= work
        >>> p = Parameter(np.array([1.0, -1.0], dtype=np.float32))
        >>> p.grad = Tensor(np.array([0.5, -2.0], dtype=np.float32))
        >>> opt = SignSGD([p], lr=0.1)
        >>> opt.step()
        >>> p.data.tolist(), opt.state[p]["step"]
        ([0.8999999761581421, -0.8999999761581421], 1)

    Subclasses written against the former private names ``_init_state`` and ``_update`` keep
    working; each such class gets a ``DeprecationWarning`` when it is defined.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        """Pair the public extension methods with their former private names, both ways: a
        class defining ``update`` also answers to ``_update`` (so ``super()._update(...)`` in
        an older subclass still reaches it), and a class defining only ``_update`` is called
        through ``update``, with a DeprecationWarning."""
        super().__init_subclass__(**kwargs)
        renamed = []
        for public, private in (("init_state", "_init_state"), ("update", "_update")):
            if public in cls.__dict__:
                if private not in cls.__dict__:
                    setattr(cls, private, cls.__dict__[public])
            elif private in cls.__dict__:
                setattr(cls, public, cls.__dict__[private])
                renamed.append((private, public))
        if renamed:
            old, new = (" and ".join(names) for names in zip(*renamed))
            warnings.warn(
                f"optimizer {cls.__name__} defines {old}, now public as {new}: rename "
                f"{'them' if len(renamed) > 1 else 'it'} (the old names keep working for now)",
                DeprecationWarning,
                stacklevel=2,
            )

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict[Tensor, np.ndarray] = {}
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, not a single Tensor "
                            "(wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError("the optimizer got an empty parameter list (did the model register its Parameters?)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. when unfreezing layers)."""
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"an optimizer can only optimize Tensors, got a {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TinyTorchError(f"cannot optimize a tensor of dtype {p.dtype}: parameters must be floating point")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen & {id(p) for p in params} or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear more than once (in this group or in an earlier one)")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"{type(self).__name__} has no hyper-parameter(s) {', '.join(sorted(unknown))}")
        filled = {**self.defaults, **group, "params": params}
        self._validate(filled)
        self.param_groups.append(filled)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError for invalid hyper-parameters (subclasses add their own checks)."""
        _require(group["lr"] >= 0, f"invalid learning rate: {group['lr']} (must be >= 0)")
        decay = group.get("weight_decay", 0.0)
        _require(decay >= 0, f"invalid weight_decay: {decay} (must be >= 0)")

    # -- the update ----------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``None``, as PyTorch does by default; or zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data.fill(0)

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                if grad.shape != p.shape:
                    raise TinyTorchError(f"a parameter of shape {p.shape} has a gradient of shape {grad.shape}")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self.init_state(p, group)
                self.update(p.data, grad, state, group, self._work(p))

    def _work(self, p: Tensor) -> np.ndarray:
        """A scratch array shaped like ``p``, reused across steps (not part of the state)."""
        work = self._scratch.get(p)
        if work is None or work.shape != p.shape or work.dtype != p.dtype:
            work = self._scratch[p] = np.empty_like(p.data)
        return work

    def init_state(self, param: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        """The state of ``param`` before its first step (see the class docstring).

        Args:
            param: the parameter (a Tensor).
            group: its parameter group (hyper-parameters).

        Returns:
            A dict; its arrays are saved by :meth:`state_dict`.
        """
        raise NotImplementedError(f"{type(self).__name__} must define init_state(param, group)")

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any],
               work: np.ndarray) -> None:
        """One step of one parameter, in place (see the class docstring).

        Args:
            param: the parameter's array, changed in place.
            grad: its gradient, same shape (do not modify it).
            state: the parameter's state from :meth:`init_state`, updated in place.
            group: the parameter group's hyper-parameters.
            work: a scratch array shaped like ``param``, free to overwrite.
        """
        raise NotImplementedError(f"{type(self).__name__} must define update(param, grad, state, group, work)")

    _init_state, _update = init_state, update

    # -- state dicts ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"type": class name, "state": {index: {...}}, "param_groups": [{..., "params":
        [index, ...]}]}`` as in PyTorch (plus the type), with parameters named by their
        position over all groups. The indices are strings (PyTorch uses ints) so that
        ``tt_core.save`` can store the dict as it is."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {
            str(index[id(p)]): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for p, s in self.state.items()
        }
        return {"type": type(self).__name__, "state": state, "param_groups": groups}

    def check_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Check that :meth:`load_state_dict` would accept ``state_dict``, changing nothing.

        Raises:
            CheckpointError: naming every problem found: the dict's own keys, an optimizer
                type other than this one's, a different number of groups or of parameters
                per group, missing hyper-parameters (listed with the group's other options),
                hyper-parameters of the wrong type or out of range, and per-parameter state
                without an entry that :meth:`init_state` creates, or with entries of the wrong
                shape, type or a dtype that cannot be loaded. Options of a group that are not
                hyper-parameters of this optimizer (what schedulers keep there, like
                ``initial_lr``) and state entries beyond those of :meth:`init_state` are
                carried over as saved.
        """
        self._prepare_load(state_dict)

    def _prepare_load(self, state_dict: Mapping[str, Any]) -> tuple[list[dict], dict[Tensor, dict]]:
        """The parameter groups and the state a load would install; raises the
        :class:`CheckpointError` of :meth:`check_state_dict`."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping):
            raise CheckpointError(f"{name}.load_state_dict needs the dict of Optimizer.state_dict(), "
                                  f"got {_state.show(state_dict)}")
        problems = _state.key_problems(state_dict, ("state", "param_groups"), optional=("type",))
        if problems:
            raise CheckpointError(f"not an optimizer state dict: {' | '.join(problems)}")
        saved_type = state_dict.get("type", name)
        if saved_type != name:
            raise CheckpointError(f"the state dict was saved by an optimizer of type {saved_type}, this one is "
                                  f"{name}: load it into {saved_type}, or start {name} afresh")
        groups, saved_states = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, Mapping) for g in groups):
            raise CheckpointError(f"param_groups of the state dict should be a list of dicts, got {_state.show(groups)}")
        if not isinstance(saved_states, Mapping):
            raise CheckpointError(f"state of the state dict should be a dict, got {_state.show(saved_states)}")
        if len(groups) != len(self.param_groups):
            raise CheckpointError(
                f"the state dict has {len(groups)} parameter groups, this optimizer {len(self.param_groups)}"
            )
        params: dict[int, Tensor] = {}
        new_groups = [self._loaded_group(i, saved, group, params, problems)
                      for i, (saved, group) in enumerate(zip(groups, self.param_groups))]
        group_of = {id(p): group for group in new_groups for p in group["params"]}
        groups_fit = not problems  # the state is checked against what a step with its group would create
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, saved in saved_states.items():
            p = params.get(_index(key))
            where = f"state of parameter {key}"
            if p is None:
                problems.append(f"{where}: this optimizer has no parameter {key!r} (its indices are 0 to {len(params) - 1})")
            elif not isinstance(saved, Mapping):
                problems.append(f"{where} should be a dict, got {_state.show(saved)}")
            elif groups_fit:
                new_state[p] = self._loaded_state(where, saved, p, group_of[id(p)], problems)
        if problems:
            raise CheckpointError(f"the state dict does not fit this {name}: " + "; ".join(problems))
        return new_groups, new_state

    def _loaded_group(self, i: int, saved: Mapping, group: dict, params: dict[int, Tensor],
                      problems: list[str]) -> dict[str, Any]:
        """Group ``i`` as a load would set it (``saved`` over ``group``); fills ``params``
        (saved index -> parameter) and appends what does not fit to ``problems``."""
        where = f"parameter group {i}"
        ids = saved.get("params")
        if not isinstance(ids, (list, tuple)):
            problems.append(f"{where} has no list of parameter indices ('params')")
        elif len(ids) != len(group["params"]):
            problems.append(f"a parameter group holds {len(ids)} parameters in the state dict, "
                            f"{len(group['params'])} in this optimizer")
        else:
            for saved_index, p in zip(ids, group["params"]):
                index = _index(saved_index)
                if index is None or index in params:
                    problems.append(f"{where}: parameter index {saved_index!r} is not a new non-negative integer")
                else:
                    params[index] = p
        options = {k: v for k, v in saved.items() if k != "params"}
        found = len(problems)
        # every hyper-parameter must be there; other keys (a scheduler's initial_lr, ...) are carried over
        problems += [f"{where}: {m}" for m in _state.missing_problems(
            options, self.defaults, group, "options", "the state dict of another optimizer?")]
        for key, value in options.items():
            if key in group:
                problems += _state.mismatch(value, group[key], f"{where}: {key}")
        filled = {**group, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in options.items()}}
        if len(problems) == found:
            try:
                self._validate(filled)
            except (ValueError, TypeError) as error:
                problems.append(f"{where}: {error}")
        return filled

    def _loaded_state(self, where: str, saved: Mapping, p: Tensor, group: dict, problems: list[str]) -> dict:
        """The state of ``p`` as a load would set it, its entries checked against the state
        a first step with ``group`` would create (entries beyond those are copied as saved);
        appends what does not fit to ``problems``."""
        template = self.init_state(p, group)
        problems += [f"{where}: {m}" for m in _state.missing_problems(
            saved, template, (), "entries", "the state of another optimizer or of other options?")]
        restored: dict[str, Any] = {k: copy.deepcopy(v) for k, v in saved.items() if k not in template}
        for entry, like in template.items():
            if entry not in saved:
                continue
            value = saved[entry]
            if like is None and value is None:
                restored[entry] = None
            elif isinstance(like, np.ndarray) or like is None:  # None: an array once created
                try:
                    array = state_array(value)
                except CheckpointError as error:
                    problems.append(f"{where}: {entry!r} is {error}")
                    continue
                if array.shape != p.shape:
                    problems.append(f"{where}: {entry!r} has shape {array.shape}, the parameter {p.shape}")
                elif not loadable_dtype(array.dtype, p.dtype):
                    problems.append(f"{where}: {entry!r} has dtype {describe_dtype(array.dtype)}, "
                                    f"which cannot be loaded into a {p.dtype} parameter")
                else:
                    restored[entry] = array.astype(p.dtype, copy=True)
            elif isinstance(like, int) and not isinstance(like, bool):  # a step count
                if _state.is_count(value):
                    restored[entry] = int(value)
                else:
                    problems.append(f"{where}: {entry!r} should be a non-negative integer, got {_state.show(value)}")
            else:
                found = _state.mismatch(value, like, f"{where}: {entry!r}")
                problems += found
                if not found:
                    restored[entry] = value
        return restored

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict` (from an optimizer
        of the same type, built over parameters of the same shapes, in the same order), all
        or nothing: everything is checked first (see :meth:`check_state_dict`).

        Raises:
            CheckpointError: the state dict does not fit; this optimizer is left unchanged.
        """
        groups, state = self._prepare_load(state_dict)
        for group, loaded in zip(self.param_groups, groups):
            group.update(loaded)
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (heavy ball or Nesterov).

    Per step, with ``g`` the gradient (plus ``weight_decay * p``)::

        b = g                                  on the first step
        b = momentum * b + (1 - dampening) * g afterwards
        g = g + momentum * b  if nesterov else b
        p = p - lr * g

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3, as in PyTorch).
        momentum: momentum factor (default 0: plain SGD).
        dampening: dampening of the momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening = 0``).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay,
                    "nesterov": nesterov}
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        _require(group["momentum"] >= 0, f"invalid momentum: {group['momentum']} (must be >= 0)")
        _require(
            not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
            "Nesterov momentum needs momentum > 0 and dampening = 0",
        )

    def init_state(self, p, group):
        return {"momentum_buffer": None}

    def update(self, param, grad, state, group, work):
        momentum, dampening = group["momentum"], group["dampening"]
        if group["weight_decay"]:
            np.multiply(param, group["weight_decay"], out=work)
            grad = np.add(grad, work, out=work)
        if momentum:
            buf = state["momentum_buffer"]
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad)
            else:
                buf *= momentum
                buf += (1 - dampening) * grad if dampening else grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        np.multiply(grad, group["lr"], out=work)
        param -= work


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): steps scaled by running estimates of the gradient's first
    and second moments, with bias correction.

    Per step ``t``, with ``g`` the gradient (plus ``weight_decay * p``, an L2 penalty)::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    With ``amsgrad`` the denominator uses the running maximum of ``v``.

    The update itself (``update``) runs in place on the state arrays and one reused scratch
    array, which makes it hard to read and can be skipped on first reading:
    :func:`adam_reference_step` is the same step written plainly, and the tests hold the two
    equal.

    Args:
        lr: learning rate (default 1e-3).
        betas: decay rates of the moment estimates (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0; see :class:`AdamW`).
        amsgrad: use the AMSGrad variant (default False).
    """

    decoupled = False  # AdamW decays the weights directly instead

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        beta1, beta2 = group["betas"]
        _require(0 <= beta1 < 1, f"invalid beta parameter at index 0: {beta1} (must be in [0, 1))")
        _require(0 <= beta2 < 1, f"invalid beta parameter at index 1: {beta2} (must be in [0, 1))")
        _require(group["eps"] >= 0, f"invalid epsilon value: {group['eps']} (must be >= 0)")

    def init_state(self, p, group):
        state = {"step": 0, "exp_avg": np.zeros_like(p.data), "exp_avg_sq": np.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state

    def update(self, param, grad, state, group, work):
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if self.decoupled:
            param *= 1 - lr * weight_decay
        elif weight_decay:
            grad = grad + weight_decay * param  # L2 penalty; `work` is needed below
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # m = beta1 * m + (1 - beta1) * g
        exp_avg *= beta1
        np.multiply(grad, 1 - beta1, out=work)
        exp_avg += work
        # v = beta2 * v + (1 - beta2) * g * g
        np.multiply(grad, 1 - beta2, out=work)
        work *= grad
        exp_avg_sq *= beta2
        exp_avg_sq += work
        second = exp_avg_sq
        if group["amsgrad"]:
            second = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        # p -= step_size * m / (sqrt(v) / sqrt(1 - beta2**t) + eps), with step_size divided into
        # the denominator (one pass over the arrays fewer): p -= m / (sqrt(v) * c + eps / step_size)
        step_size = lr / (1 - beta1**step)
        if step_size == 0:  # lr = 0: the moments move, the parameter does not
            return
        np.sqrt(second, out=work)
        work *= 1 / (math.sqrt(1 - beta2**step) * step_size)
        work += eps / step_size
        np.divide(exp_avg, work, out=work)
        param -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019): each step first shrinks
    the weights, ``p = p * (1 - lr * weight_decay)``, then takes the Adam step on the plain
    gradient. Same arguments as :class:`Adam`, with ``weight_decay`` defaulting to 0.01."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012): divide the gradient by a running root mean square of it.

    Per step, with ``g`` the gradient (plus ``weight_decay * p``)::

        s = alpha * s + (1 - alpha) * g**2
        a = sqrt(s - mean_g**2) if centered (mean_g = running mean of g), else sqrt(s)
        p = p - lr * g / (a + eps)        (with momentum: b = momentum * b + g / (a + eps); p -= lr * b)

    Args:
        lr: learning rate (default 1e-2), alpha: smoothing constant (default 0.99),
        eps: added to the denominator (default 1e-8), weight_decay: L2 penalty (default 0),
        momentum: momentum factor (default 0), centered: normalise by the estimated variance.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay, "momentum": momentum,
                    "centered": centered}
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        _require(group["alpha"] >= 0, f"invalid alpha value: {group['alpha']} (must be >= 0)")
        _require(group["eps"] >= 0, f"invalid epsilon value: {group['eps']} (must be >= 0)")
        _require(group["momentum"] >= 0, f"invalid momentum value: {group['momentum']} (must be >= 0)")

    def init_state(self, p, group):
        state = {"step": 0, "square_avg": np.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(p.data)
        return state

    def update(self, param, grad, state, group, work):
        alpha, eps, momentum = group["alpha"], group["eps"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param  # needed again below, so not in `work`
        state["step"] += 1
        square_avg = state["square_avg"]
        square_avg *= alpha
        np.multiply(grad, grad, out=work)
        work *= 1 - alpha
        square_avg += work
        if group["centered"]:
            grad_avg = state["grad_avg"]
            np.subtract(grad, grad_avg, out=work)
            work *= 1 - alpha
            grad_avg += work
            np.multiply(grad_avg, grad_avg, out=work)
            np.subtract(square_avg, work, out=work)
            np.sqrt(work, out=work)
        else:
            np.sqrt(square_avg, out=work)
        work += eps
        np.divide(grad, work, out=work)  # g / (a + eps)
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += work
            np.multiply(buf, group["lr"], out=work)
        else:
            work *= group["lr"]
        param -= work


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop)}


def adam_reference_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, step: int,
                        lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                        weight_decay: float = 0.0, decoupled: bool = False):
    """One Adam step written plainly, on new arrays: what :class:`Adam` (``decoupled=False``)
    and :class:`AdamW` (``decoupled=True``) compute in place, without ``amsgrad``.

    Args:
        param, grad: the parameter's values and its gradient.
        exp_avg, exp_avg_sq: the moment estimates ``m`` and ``v`` before this step (zeros
            before the first).
        step: the number of this step, counting from 1 (for the bias correction).
        lr, betas, eps, weight_decay: as for :class:`Adam`.
        decoupled: shrink the weights directly (AdamW) instead of adding the L2 gradient.

    Returns:
        ``(param, exp_avg, exp_avg_sq)`` after the step; the inputs are left unchanged.

    Examples:
        >>> p, m, v = adam_reference_step(np.array([1.0]), np.array([0.5]), np.zeros(1), np.zeros(1), step=1, lr=0.1)
        >>> p.round(6).tolist()  # the first step moves by lr, whatever the gradient's size
        [0.9]
    """
    beta1, beta2 = betas
    if decoupled:
        param = param * (1 - lr * weight_decay)
    else:
        grad = grad + weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    m_hat = exp_avg / (1 - beta1**step)  # bias correction: m and v start at 0
    v_hat = exp_avg_sq / (1 - beta2**step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), exp_avg, exp_avg_sq

"""The primitive operations: the op table (name -> forward kernel) and the one function,
:func:`apply`, through which every differentiable operation runs.

A forward kernel takes a context object, the input arrays and keyword attributes, and returns
the output array. It may store on the context what its gradient rule needs later::

    def relu(ctx, x):
        return np.maximum(x, 0)

Gradient rules are *not* here: tt-learn registers one per op name (kind ``grad_rule``) with the
signature ``rule(ctx, grad) -> tuple of input gradients``. The context then also carries
``ctx.inputs`` (the input arrays), ``ctx.out`` (the output array), ``ctx.attrs`` and
``ctx.needs`` (which inputs want a gradient).

Third-party plugins add ops the same way tt-core does: ``registry.register("op", name, kernel)``
plus, for autograd, ``registry.register("grad_rule", name, rule)``. The op table is built once
from the registry, on the first op call; after that an op call costs one dict lookup.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import ShapeError, TinyTorchError

Kernel = Callable[..., np.ndarray]

# ----------------------------------------------------------------------------------------
# Forward kernels of tt-core's primitives
# ----------------------------------------------------------------------------------------


def _floating(a: np.ndarray) -> np.ndarray:
    """Integer and boolean inputs of float-valued functions become float32 (NumPy would
    give float64, and the sigmoid of an int array would be cast back to int)."""
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def add(ctx, a, b):
    return a + b


def sub(ctx, a, b):
    return a - b


def mul(ctx, a, b):
    return a * b


def div(ctx, a, b):
    return a / b


def pow(ctx, a, b):  # noqa: A001 - the op's name
    return a**b


def neg(ctx, a):
    return -a


def matmul(ctx, a, b):
    return a @ b


def sum(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.sum(a, axis=axis, keepdims=keepdims)


def mean(ctx, a, axis=None, keepdims=False):
    return np.mean(_floating(a), axis=axis, keepdims=keepdims)


def max(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.max(a, axis=axis, keepdims=keepdims)


def min(ctx, a, axis=None, keepdims=False):  # noqa: A001
    return np.min(a, axis=axis, keepdims=keepdims)


def getitem(ctx, a, index):
    return a[index]


def reshape(ctx, a, shape):
    return a.reshape(shape)


def transpose(ctx, a, axes):
    return a.transpose(axes)


def concatenate(ctx, *arrays, axis=0):
    return np.concatenate(arrays, axis=axis)


def stack(ctx, *arrays, axis=0):
    return np.stack(arrays, axis=axis)


def where(ctx, condition, a, b):
    return np.where(condition, a, b)


def cast(ctx, a, dtype):
    return a.astype(dtype)


def exp(ctx, a):
    return np.exp(_floating(a))


def log(ctx, a):
    return np.log(_floating(a))


def sqrt(ctx, a):
    return np.sqrt(_floating(a))


def abs(ctx, a):  # noqa: A001
    return np.abs(a)


def clip(ctx, a, low=None, high=None):
    return np.clip(a, low, high)


# -- activations -------------------------------------------------------------------------


def relu(ctx, x):
    return np.maximum(x, 0)


def sigmoid(ctx, x):
    # exp of a non-positive number only: no overflow for large |x|
    x = _floating(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def tanh(ctx, x):
    return np.tanh(_floating(x))


GELU_C = float(np.sqrt(2 / np.pi))  # a Python float keeps float32 inputs float32


def gelu(ctx, x):
    """GELU, tanh approximation (PyTorch's ``GELU(approximate='tanh')``)."""
    x = _floating(x)
    inner = np.tanh(GELU_C * (x + 0.044715 * (x * x * x)))  # x*x*x: x**3 calls pow(), ~20x slower
    ctx.tanh = inner
    return 0.5 * x * (1 + inner)


def softmax(ctx, x, axis=-1):
    x = _floating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(ctx, x, axis=-1):
    x = _floating(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


CORE_OPS: dict[str, Kernel] = {
    f.__name__: f
    for f in (
        add, sub, mul, div, pow, neg, matmul, sum, mean, max, min, getitem, reshape, transpose,
        concatenate, stack, where, cast, exp, log, sqrt, abs, clip,
        relu, sigmoid, tanh, gelu, softmax, log_softmax,
    )
}

# ----------------------------------------------------------------------------------------
# Grad mode (a switch here; ``no_grad`` itself comes with tt-learn)
# ----------------------------------------------------------------------------------------

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether :func:`apply` records operations for autograd (on by default)."""
    return _grad_enabled


def set_grad_enabled(mode: bool) -> bool:
    """Turn graph recording on or off; returns the previous mode."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, bool(mode)
    return previous


# ----------------------------------------------------------------------------------------
# Dispatch
# ----------------------------------------------------------------------------------------


class Context:
    """Scratch space that a forward kernel shares with its gradient rule."""


class Node:
    """One recorded operation: the rule that sends the gradient back, and its inputs."""

    __slots__ = ("op", "rule", "ctx", "parents")

    def __init__(self, op: str, rule: Callable, ctx: Context, parents: tuple) -> None:
        self.op, self.rule, self.ctx, self.parents = op, rule, ctx, parents


class _OpTable(dict):
    """``name -> (forward kernel, gradient rule or None)``, filled from the registry on the
    first lookup that misses (so the first op call loads the plugins, later ones don't)."""

    loaded = False
    engine: Any = None

    def __missing__(self, name: str):
        if not self.loaded:
            self.load()
            if name in self:
                return self[name]
        raise TinyTorchError(
            f"unknown op {name!r}: no installed plugin registers it (known ops: {', '.join(sorted(self))})"
        )

    def load(self) -> None:
        from .plugins import get_registry

        registry = get_registry()
        rules = registry.items("grad_rule")
        for name, kernel in registry.items("op").items():
            self[name] = (kernel, rules.get(name))
        self.engine = registry.get("autograd", "engine") if registry.has("autograd", "engine") else None
        self.loaded = True


OP_TABLE = _OpTable()


def reset_dispatch() -> None:
    """Forget the op table; the next op call rebuilds it from the registry."""
    OP_TABLE.clear()
    OP_TABLE.loaded = False
    OP_TABLE.engine = None


def autograd_engine():
    """The registered autograd engine (tt-learn), or None."""
    if not OP_TABLE.loaded:
        OP_TABLE.load()
    return OP_TABLE.engine


def apply(name: str, *inputs, **attrs):
    """Run primitive ``name`` on Tensors; record it for autograd when an input needs a gradient."""
    from .tensor import Tensor

    forward, rule = OP_TABLE[name]
    ctx = Context()
    arrays = [t.data for t in inputs]
    try:
        result = Tensor._make(forward(ctx, *arrays, **attrs))
    except TinyTorchError:
        raise  # already a clear message (e.g. from a plugin's kernel)
    except ValueError as error:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{name}: operands of shape {shapes} do not fit ({error})") from None
    except IndexError as error:  # stays an IndexError, which ends a Python iteration
        raise IndexError(f"{name}: {error} (tensor of shape {arrays[0].shape})") from None
    if rule is not None and _grad_enabled:
        needs = tuple([t.requires_grad for t in inputs])
        if True in needs:
            ctx.inputs, ctx.out, ctx.attrs, ctx.needs = arrays, result.data, attrs, needs
            result.requires_grad = True
            result._node = Node(name, rule, ctx, inputs)
    return result

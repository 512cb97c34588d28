"""The gradient rule of every tt-core primitive, registered under the op's name.

A rule receives the context its forward kernel ran with and the gradient of the loss with
respect to the op's output, and returns one gradient per input — ``None`` for an input that
does not need one (``ctx.needs[i]`` is False), which saves the work::

    def exp(ctx, grad):            # y = exp(x)  =>  dL/dx = dL/dy * y
        return (grad * ctx.out,)

``ctx.inputs`` are the input arrays, ``ctx.out`` the output array, ``ctx.attrs`` the keyword
attributes of the call. Operands that were broadcast get their gradient summed back to their
own shape (:func:`unbroadcast`). Every rule works on plain NumPy arrays.

Ties of ``max`` and ``min``: the whole gradient of each reduced slice goes to one element, the
first arg-max (arg-min) of the slice in row-major order of the reduced axes; the other tied
elements get zero. ``torch.max(x, dim)`` also gives the gradient to a single element (the index
it returns), while ``torch.max(x)`` without ``dim`` and ``torch.amax`` split it evenly among the ties.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable

import numpy as np
from tt_core.dispatch import GradRule
from tt_core.ops import CORE_OPS, GELU_C, GELU_CUBIC, leading_sums

__all__ = ["GRAD_RULES", "unbroadcast"]


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast.

    Examples:
        >>> unbroadcast(np.ones((4, 2, 3)), (2, 1)).tolist()
        [[12.0], [12.0]]
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if grad.shape[extra:] == shape:  # broadcast over leading axes only (a bias): one BLAS product
        return leading_sums(grad, extra)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


# -- arithmetic (broadcasting) -----------------------------------------------------------


def add(ctx, grad):
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    return (unbroadcast(grad, a.shape) if need_a else None, unbroadcast(grad, b.shape) if need_b else None)


def sub(ctx, grad):
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    return (unbroadcast(grad, a.shape) if need_a else None, -unbroadcast(grad, b.shape) if need_b else None)


def mul(ctx, grad):
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    return (
        unbroadcast(grad * b, a.shape) if need_a else None,
        unbroadcast(grad * a, b.shape) if need_b else None,
    )


def div(ctx, grad):  # y = a / b: dy/da = 1/b, dy/db = -a/b² = -y/b
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    grad_over_b = grad / b
    return (
        unbroadcast(grad_over_b, a.shape) if need_a else None,
        unbroadcast(-grad_over_b * ctx.out, b.shape) if need_b else None,
    )


def pow(ctx, grad):
    """y = a ** b: dy/da = b a^(b-1), dy/db = y ln a."""
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    grad_a = unbroadcast(grad * b * a ** (b - 1), a.shape) if need_a else None
    grad_b = None
    if need_b:
        with np.errstate(divide="ignore", invalid="ignore"):
            # at a == 0 the term y ln a is 0 * -inf; its limit (and PyTorch's value) is 0
            dy_db = np.where(a == 0, 0.0, ctx.out * np.log(a))
        grad_b = unbroadcast(grad * dy_db, b.shape)
    return grad_a, grad_b


def neg(ctx, grad):
    return (-grad,)


def _swap(x):
    return np.swapaxes(x, -1, -2)


def _product_laid_out_like(left, right, like):
    """``left @ right``, nothing else: the same values as the plain product. Only the memory
    layout differs, and this can be skipped on first reading (read it as ``left @ right``).

    The layout is that of ``like``. When ``like`` is a transposed view (``linear`` multiplies
    by ``weight.T``), the product is computed as ``(rightᵀ @ leftᵀ)ᵀ`` — the same values — so
    that the gradient reaching the weight is C-contiguous again; the optimizer's element-wise
    updates on a mixed-layout pair are several times slower.

    Examples:
        >>> left, right = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
        >>> like = np.zeros((4, 2)).T  # a transposed view, as ``weight.T`` is
        >>> out = _product_laid_out_like(left, right, like)
        >>> bool((out == left @ right).all()), out.flags.c_contiguous, out.T.flags.c_contiguous
        (True, False, True)
    """
    if not like.flags.c_contiguous and _swap(like).flags.c_contiguous:
        return _swap(_swap(right) @ _swap(left))
    return left @ right


def matmul(ctx, grad):
    """``a @ b`` with NumPy's rules: batch axes broadcast, a 1-D operand is a row (left) or a
    column (right) vector whose extra axis is dropped from the result.
    dL/da = g @ bᵀ, dL/db = aᵀ @ g (summed over broadcast batch axes)."""
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if b.ndim == 1:
        grad = grad[..., None]
    if a.ndim == 1:
        grad = grad[..., None, :]
    grad_a = grad_b = None
    if need_a:
        grad_a = unbroadcast(_product_laid_out_like(grad, _swap(b2), a2), a2.shape).reshape(a.shape)
    if need_b:
        grad_b = unbroadcast(_product_laid_out_like(_swap(a2), grad, b2), b2.shape).reshape(b.shape)
    return grad_a, grad_b


# -- reductions --------------------------------------------------------------------------


def _spread(grad, ctx):
    """The gradient of a reduction, broadcast back over the reduced axes (a read-only view)."""
    axis = ctx.attrs.get("axis")
    if axis is not None and not ctx.attrs.get("keepdims", False):
        grad = np.expand_dims(grad, axis)
    return np.broadcast_to(grad, ctx.inputs[0].shape)


def sum(ctx, grad):
    return (_spread(grad, ctx),)


def mean(ctx, grad):
    return (_spread(grad * (ctx.out.size / ctx.inputs[0].size), ctx),)


def _to_one_extreme(ctx, grad, arg: Callable) -> tuple[np.ndarray]:
    """max/min: the whole gradient of each reduced slice goes to one element, the first
    arg-max (arg-min) of the slice in row-major order (see the module's notes on ties)."""
    a = ctx.inputs[0]
    axis = ctx.attrs.get("axis")
    if axis is None:
        reduced = tuple(range(a.ndim))
    else:
        reduced = tuple(sorted(int(i) % builtins.max(a.ndim, 1) for i in np.atleast_1d(axis)))
    kept = tuple(i for i in range(a.ndim) if i not in reduced)
    order = kept + reduced
    kept_shape = tuple(a.shape[i] for i in kept)
    # put the reduced axes last and flatten them: one row per reduced slice
    rows = a.transpose(order).reshape(kept_shape + (-1,))
    winner = arg(rows, axis=-1)[..., None]
    out = np.zeros(rows.shape, dtype=a.dtype)
    np.put_along_axis(out, winner, grad.reshape(kept_shape + (1,)), axis=-1)
    return (out.reshape(tuple(a.shape[i] for i in order)).transpose(np.argsort(order)),)


def max(ctx, grad):
    return _to_one_extreme(ctx, grad, np.argmax)


def min(ctx, grad):
    return _to_one_extreme(ctx, grad, np.argmin)


# -- indexing and movement ---------------------------------------------------------------

_BASIC_INDEX = (int, np.integer, slice, type(None), type(Ellipsis))


def _may_repeat(index) -> bool:
    """Whether ``index`` can select one element more than once (integer arrays can; ints,
    slices, None, Ellipsis and boolean masks cannot)."""
    for item in index if isinstance(index, tuple) else (index,):
        basic = isinstance(item, _BASIC_INDEX) and not isinstance(item, (bool, np.bool_))
        if not basic and np.asarray(item).dtype != bool:
            return True
    return False


def getitem(ctx, grad):
    a = ctx.inputs[0]
    index = ctx.attrs["index"]
    out = np.zeros(a.shape, dtype=a.dtype)
    if _may_repeat(index):
        np.add.at(out, index, grad)  # scatter-add: a repeated index collects every gradient
    else:
        out[index] = grad  # slices and masks: each element at most once, plain assignment
    return (out,)


def reshape(ctx, grad):
    return (grad.reshape(ctx.inputs[0].shape),)


def transpose(ctx, grad):
    axes = ctx.attrs.get("axes")
    return (grad.transpose() if axes is None else grad.transpose(np.argsort(axes)),)


def concatenate(ctx, grad):
    axis = ctx.attrs.get("axis", 0)
    inputs = ctx.inputs
    if axis is None:  # NumPy flattens the inputs first
        sizes = [x.size for x in inputs]
        pieces = np.split(grad, np.cumsum(sizes)[:-1])
    else:
        pieces = np.split(grad, np.cumsum([x.shape[axis] for x in inputs])[:-1], axis=axis)
    return tuple(
        piece.reshape(x.shape) if need else None for piece, x, need in zip(pieces, inputs, ctx.needs)
    )


def stack(ctx, grad):
    slices = np.moveaxis(grad, ctx.attrs.get("axis", 0), 0)
    return tuple(slices[i] if need else None for i, need in enumerate(ctx.needs))


def where(ctx, grad):
    condition, a, b = ctx.inputs
    _, need_a, need_b = ctx.needs
    return (
        None,
        unbroadcast(np.where(condition, grad, 0), a.shape) if need_a else None,
        unbroadcast(np.where(condition, 0, grad), b.shape) if need_b else None,
    )


def cast(ctx, grad):
    return (grad.astype(ctx.inputs[0].dtype, copy=False),)


# -- element-wise functions --------------------------------------------------------------


def exp(ctx, grad):
    return (grad * ctx.out,)


def log(ctx, grad):
    return (grad / ctx.inputs[0],)


def sqrt(ctx, grad):
    return (grad * 0.5 / ctx.out,)


def abs(ctx, grad):
    """sign(x), with sign(0) = 0 as in PyTorch."""
    return (grad * np.sign(ctx.inputs[0]),)


def clip(ctx, grad):
    """The gradient passes where ``low <= x <= high`` (bounds included, as in PyTorch)."""
    x = ctx.inputs[0]
    low, high = ctx.attrs.get("low"), ctx.attrs.get("high")
    inside = True
    if low is not None:
        inside = x >= low
    if high is not None:
        inside = inside & (x <= high)
    return (grad * inside,)


# -- activations (fused: the derivative from the saved output, no sub-graph) -------------


def relu(ctx, grad):
    return (grad * (ctx.out > 0),)


def sigmoid(ctx, grad):
    y = ctx.out
    return (grad * y * (1 - y),)


def tanh(ctx, grad):
    y = ctx.out
    return (grad * (1 - y * y),)


def gelu(ctx, grad):
    """y = x/2 (1 + t), t = tanh(c (x + a x³)) (c, a: ``tt_core.ops.GELU_C``, ``GELU_CUBIC``):
    dy/dx = (1 + t)/2 + x/2 (1 - t²) c (1 + 3 a x²), or with 1 - t² = (1 - t)(1 + t),
    dy/dx = (1 + t)/2 (1 + x (1 - t) (c + 3ac x²)): computed in place on one result array
    and one scratch array."""
    x, t = ctx.inputs[0], ctx.tanh
    out = np.multiply(x, x, out=np.empty_like(x))  # an array even for 0-d x
    out *= 3 * GELU_C * GELU_CUBIC
    out += GELU_C
    out *= x
    scratch = np.subtract(1.0, t, out=np.empty_like(t))
    out *= scratch
    out += 1.0
    out *= np.add(t, 1.0, out=scratch)
    out *= grad
    out *= 0.5
    return (out,)


def softmax(ctx, grad):
    """dx = y * (g - sum(g * y)) along the axis."""
    y = ctx.out
    grad_y = grad * y
    return (grad_y - y * grad_y.sum(axis=ctx.attrs.get("axis", -1), keepdims=True),)


def log_softmax(ctx, grad):
    """dx = g - softmax(x) * sum(g) along the axis (softmax = exp of the saved output)."""
    return (grad - np.exp(ctx.out) * grad.sum(axis=ctx.attrs.get("axis", -1), keepdims=True),)


# one rule per tt-core primitive, named like it (a primitive without a rule fails here, at
# import), reading what that kernel saves
GRAD_RULES: dict[str, GradRule] = {name: GradRule(globals()[name], reads=op.saves) for name, op in CORE_OPS.items()}

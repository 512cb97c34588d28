"""Act II gradient rules for three of tt-core's kernels: ``relu``, ``sigmoid`` and ``matmul``.

A gradient rule is the backward half of an op. It is called as ``rule(ctx, grad)`` where
``grad`` is the gradient of the loss with respect to the op's output (same shape as the
output), and it returns a tuple with one entry per input: the gradient with respect to that
input, of the input's shape, or ``None`` for an input that needs none. The rules here read
only what every kernel's context carries:

* ``ctx.inputs``: the input arrays, in call order;
* ``ctx.out``: the output array the kernel returned;
* ``ctx.attrs``: the keyword attributes of the call;
* ``ctx.needs``: one bool per input, whether it needs a gradient.

So they pair with tt-core's kernels (which save nothing extra for these three ops) and with
any kernel that computes the same function. Every rule works on plain NumPy arrays and keeps
the dtype of the gradient it receives.
"""

from __future__ import annotations

import numpy as np


def relu_grad(ctx, grad: np.ndarray) -> tuple[np.ndarray]:
    """``y = max(x, 0)``: ``dL/dx = dL/dy`` where ``x > 0``, else 0 (0 at ``x = 0`` too, as in PyTorch).

    Args:
        ctx: the op's context (reads ``ctx.inputs[0]``).
        grad: ``dL/dy``, shaped like the output.

    Returns:
        ``(dL/dx,)``, shaped like the input.
    """
    (x,) = ctx.inputs
    return (grad * (x > 0),)


def sigmoid_grad(ctx, grad: np.ndarray) -> tuple[np.ndarray]:
    """``y = sigmoid(x)``: ``dy/dx = y (1 - y)``, computed from the saved output.

    Using the output rather than recomputing ``exp(-x)`` keeps the rule as stable as the
    kernel: for large ``|x|`` the slope is a tiny positive number or 0, never ``nan``.

    Args:
        ctx: the op's context (reads ``ctx.out``).
        grad: ``dL/dy``, shaped like the output.

    Returns:
        ``(dL/dx,)``, shaped like the input.
    """
    y = ctx.out
    return (grad * (y * (1 - y)),)


def sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Undo broadcasting: sum ``grad`` down to an operand of shape ``shape``.

    Broadcasting prepends axes and stretches axes of length 1; the gradient of the operand is
    the sum over every axis it was stretched along.

    Args:
        grad: a gradient of the broadcast shape.
        shape: the operand's own shape (broadcastable to ``grad.shape``).

    Returns:
        An array of shape ``shape``.

    Examples:
        >>> sum_to_shape(np.ones((2, 3, 4)), (3, 1)).tolist()
        [[8.0], [8.0], [8.0]]
    """
    leading = grad.ndim - len(shape)
    if leading:
        grad = grad.sum(axis=tuple(range(leading)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def matmul_grad(ctx, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``y = a @ b`` with NumPy's rules: ``dL/da = g @ bᵀ`` and ``dL/db = aᵀ @ g``.

    NumPy's ``matmul`` multiplies the last two axes and broadcasts the ones before them; a
    1-D ``a`` is a row vector (a 1 is put in front of its shape and removed from the result),
    a 1-D ``b`` a column vector (a 1 is appended and removed). The rule puts those axes back
    into ``grad``, multiplies as matrices, sums each product over the batch axes its operand
    was broadcast along, and drops the added axes again.

    Args:
        ctx: the op's context (reads ``ctx.inputs`` and ``ctx.needs``).
        grad: ``dL/dy``, shaped like the output.

    Returns:
        ``(dL/da, dL/db)``, shaped like ``a`` and ``b``; ``None`` for an operand that needs
        no gradient.
    """
    a, b = ctx.inputs
    need_a, need_b = ctx.needs
    a_matrix = a.reshape(1, -1) if a.ndim == 1 else a
    b_matrix = b.reshape(-1, 1) if b.ndim == 1 else b
    if b.ndim == 1:  # first, so that two vectors (a 0-d output) give a (1, 1) gradient
        grad = np.expand_dims(grad, -1)
    if a.ndim == 1:
        grad = np.expand_dims(grad, -2)
    grad_a = grad_b = None
    if need_a:
        grad_a = sum_to_shape(grad @ np.swapaxes(b_matrix, -1, -2), a_matrix.shape).reshape(a.shape)
    if need_b:
        grad_b = sum_to_shape(np.swapaxes(a_matrix, -1, -2) @ grad, b_matrix.shape).reshape(b.shape)
    return grad_a, grad_b

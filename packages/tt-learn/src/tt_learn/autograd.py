"""The autograd engine: ``backward()`` through the recorded graph, and the grad-mode switches.

tt-core records one :class:`tt_core.dispatch.Node` per operation on the result tensor (``._node``):
the op (its kernel and gradient rule, :class:`tt_core.dispatch.BoundOp`), the context the forward
kernel filled, and the input tensors (``parents``). ``backward`` then

1. orders the non-leaf tensors reachable from the output topologically — iteratively, with an
   explicit stack, so a graph 100 000 ops deep is no problem (no recursion limit);
2. walks that order in reverse, calling each node's rule ``rule(ctx, grad) -> input grads``
   (checked: one gradient per input, of the input's shape, none missing where one is needed)
   and summing gradients per tensor as plain NumPy arrays in a dict (no Tensor per step);
3. stores the sums on the leaves that require a gradient (``leaf.grad``, added to an existing
   ``.grad`` like PyTorch does) and frees the graph unless ``retain_graph=True``.

Examples:
    >>> import tt_core as tt
    >>> x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
"""

from __future__ import annotations

import functools

import numpy as np
from tt_core import dispatch
from tt_core.errors import GradientRuleError, ShapeError, TinyTorchError
from tt_core.tensor import Tensor

__all__ = ["GraphFreedError", "backward", "enable_grad", "engine", "no_grad", "set_grad_enabled"]


class GraphFreedError(TinyTorchError, RuntimeError):
    """``backward()`` reached a part of the graph that an earlier ``backward()`` freed."""


# ----------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------


def _seed(tensor: Tensor, gradient) -> np.ndarray:
    """The gradient of the output with respect to itself: ones, or the caller's array (copied,
    so later in-place updates of ``.grad`` never write into the caller's data)."""
    if gradient is None:
        if tensor.data.size != 1:
            raise TinyTorchError(
                f"backward() without a gradient needs a tensor with one element, this one has shape "
                f"{tensor.shape}: reduce it first (e.g. loss.mean()) or pass gradient= an array of that shape"
            )
        return np.ones(tensor.shape, dtype=tensor.dtype)
    seed = np.array(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=tensor.dtype)
    if seed.shape != tensor.shape:
        raise ShapeError(f"backward(gradient=...) needs a gradient of shape {tensor.shape}, got {seed.shape}")
    return seed


def _topological_order(root: Tensor) -> list[Tensor]:
    """Non-leaf tensors reachable from ``root``, every tensor after all of its inputs.

    A depth-first search with an explicit stack: a tensor is appended once all its inputs
    are (post-order), so the reversed list visits every consumer before what it consumed.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        for parent in tensor._node.parents:
            if parent._node is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _input_gradients(node, grad: np.ndarray) -> tuple:
    """The node's rule applied to ``grad``, checked against the node's inputs."""
    op = node.op
    if op.backward is None:
        raise GradientRuleError(
            f"backward() through op {op.name!r} (kernel from {op.kernel_dist}), which has no gradient rule: "
            f"register one (kind grad_rule, name {op.name!r}) or give its Op a backward"
        )
    grads = op.backward(node.ctx, grad)
    parents = node.parents
    if not isinstance(grads, (tuple, list)) or len(grads) != len(parents):
        got = f"{len(grads)} values" if isinstance(grads, (tuple, list)) else f"a {type(grads).__name__}"
        raise GradientRuleError(
            f"the gradient rule of op {op.name!r} (from {op.rule_dist}) returned {got} for an op with "
            f"{len(parents)} input(s): return a tuple with one gradient (or None) per input"
        )
    for i, (parent, parent_grad) in enumerate(zip(parents, grads)):
        if not parent.requires_grad:
            continue
        if parent_grad is None:
            raise GradientRuleError(
                f"the gradient rule of op {op.name!r} (from {op.rule_dist}) returned None for input {i}, "
                f"which needs a gradient (ctx.needs[{i}] is True)"
            )
        if getattr(parent_grad, "shape", None) != parent.data.shape:
            raise GradientRuleError(
                f"the gradient rule of op {op.name!r} (from {op.rule_dist}) returned a gradient of shape "
                f"{getattr(parent_grad, 'shape', type(parent_grad).__name__)} for input {i} of shape "
                f"{parent.data.shape} (sum a broadcast gradient back to the input's shape)"
            )
    return grads


def _freed_error(op: str) -> GraphFreedError:
    return GraphFreedError(
        f"backward() through the graph a second time: the saved values of {op!r} were freed by an "
        "earlier backward(). Pass retain_graph=True to the first backward() to go through it again, "
        "or recompute the forward pass."
    )


def backward(tensor: Tensor, gradient=None, retain_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf), times ``gradient``, into ``.grad`` of every leaf that requires it.

    Args:
        tensor: the output (usually a scalar loss).
        gradient: d(something)/d(tensor), same shape as ``tensor``; may be omitted for a
            one-element tensor (then it is 1).
        retain_graph: keep the graph (and the values saved for it) so that ``backward`` can
            run through it again; by default it is freed.
    """
    if not tensor.requires_grad:
        raise TinyTorchError(
            "backward() on a tensor that does not require grad: no input of the computation had "
            "requires_grad=True (or it ran inside no_grad()). Create the leaves with requires_grad=True."
        )
    seed = _seed(tensor, gradient)
    if tensor._node is None:  # a leaf: d(leaf)/d(leaf) is the seed itself
        _store({id(tensor): tensor}, {id(tensor): seed})
        return
    if tensor._node.ctx is None:
        raise _freed_error(tensor._node.op.name)

    grads: dict[int, np.ndarray] = {id(tensor): seed}
    leaves: dict[int, Tensor] = {}
    for out in reversed(_topological_order(tensor)):
        node = out._node
        ctx = node.ctx
        if ctx is None:
            raise _freed_error(node.op.name)
        grad = grads.pop(id(out), None)
        if grad is not None:
            for parent, parent_grad in zip(node.parents, _input_gradients(node, grad)):
                if not parent.requires_grad:
                    continue
                key = id(parent)
                if parent._node is None:
                    leaves[key] = parent
                total = grads.get(key)
                grads[key] = parent_grad if total is None else total + parent_grad
        if not retain_graph:  # drop the saved arrays and the links to the inputs
            node.ctx = None
            node.parents = ()
    _store(leaves, grads)


def _store(leaves: dict[int, Tensor], grads: dict[int, np.ndarray]) -> None:
    """Put the summed gradients on the leaves as arrays each leaf owns (writable, unshared,
    of the leaf's dtype), so that in-place updates of one ``.grad`` cannot touch another."""
    owners: set[int] = set()
    for key, leaf in leaves.items():
        grad = grads[key]
        if grad.dtype != leaf.data.dtype:
            grad = grad.astype(leaf.data.dtype)
        elif not grad.flags.writeable or id(grad if grad.base is None else grad.base) in owners:
            grad = grad.copy()
        owners.add(id(grad if grad.base is None else grad.base))
        if leaf.grad is None:
            leaf.grad = Tensor._make(grad)
        else:
            leaf.grad.data = leaf.grad.data + grad


class _Engine:
    """What tt-core's ``Tensor.backward`` calls (registered as component ``autograd:engine``)."""

    backward = staticmethod(backward)

    def __repr__(self) -> str:
        return "<tt_learn autograd engine>"


engine = _Engine()


# ----------------------------------------------------------------------------------------
# grad mode
# ----------------------------------------------------------------------------------------


class _Switch:
    """A context manager (and decorator) that turns a setting on for a block, then restores it.

    A subclass defines ``_set() -> previous`` and ``_restore(previous)``. One instance may be
    entered re-entrantly (the previous values are kept on a stack), and the class works as a
    decorator with or without parentheses (``@no_grad`` and ``@no_grad()``).
    """

    def __new__(cls, func=None):
        self = super().__new__(cls)
        self._previous = []
        return self if func is None else self(func)  # bare ``@no_grad`` as well as ``@no_grad()``

    def _set(self):
        raise NotImplementedError

    def _restore(self, previous) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        self._previous.append(self._set())

    def __exit__(self, *exc_info) -> None:
        self._restore(self._previous.pop())

    def __call__(self, func):
        """Use as a decorator: ``@no_grad()``, ``@detect_anomaly()`` run ``func`` inside the block."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class _GradMode(_Switch):
    """Sets graph recording to ``self.mode``."""

    mode: bool

    def _set(self) -> bool:
        return dispatch.set_grad_enabled(self.mode)

    def _restore(self, previous: bool) -> None:
        dispatch.set_grad_enabled(previous)


class no_grad(_GradMode):
    """Record no graph inside (inference, optimizer updates): ops produce plain tensors.

    Examples:
        >>> import tt_core as tt
        >>> w = tt.tensor([1.0], requires_grad=True)
        >>> with no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
        >>> @no_grad()
        ... def predict(x):
        ...     return x * w
    """

    mode = False


class enable_grad(_GradMode):
    """Record the graph inside, even within an enclosing ``no_grad()``."""

    mode = True


class set_grad_enabled:
    """Switch recording on or off: immediately when called, or for one block with ``with``.

    Examples:
        >>> with set_grad_enabled(False):  # off inside the block, then back as before
        ...     pass
    """

    def __init__(self, mode: bool) -> None:
        self._previous = dispatch.set_grad_enabled(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info) -> None:
        dispatch.set_grad_enabled(self._previous)

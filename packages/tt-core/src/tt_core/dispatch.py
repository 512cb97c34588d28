"""Dispatch: how an op call runs, and how it is recorded for autograd.

An op is one unit (:class:`Op`): a forward kernel, optionally its gradient rule, and the names
of the values the kernel saves for the rule::

    def cube(ctx, x):                  # forward(ctx, *arrays, **attrs) -> array
        ctx.square = x * x             # saved for the rule, declared in ``saves``
        return ctx.square * x

    def cube_grad(ctx, grad):          # backward(ctx, grad) -> one gradient per input
        return (grad * 3 * ctx.square,)

    registry.register("op", "cube", Op(cube, cube_grad, saves=("square",)))

Besides the saved values, a rule may read the context that :func:`apply` fills when it records
the op (:data:`STANDARD_CONTEXT`): ``ctx.inputs`` (the input arrays), ``ctx.out`` (the output
array), ``ctx.attrs`` (the keyword attributes) and ``ctx.needs`` (which inputs need a gradient;
return ``None`` for the others). A gradient rule may also come on its own, for a kernel of
another package (:class:`GradRule`, kind ``grad_rule``): tt-core's kernels get theirs from
tt-learn, and a learner may write the rule of a built-in kernel. Which kernel meets which rule
is decided once, when the plugins are loaded (:func:`bind`): a rule is paired with a kernel of
another distribution only when it reads nothing the kernel does not save.

:func:`apply` is the one function through which every differentiable operation runs: it looks
the op up in :data:`OP_TABLE` (a dict lookup), runs the kernel, and, when an input needs a
gradient, records a :class:`Node` on the result for tt-learn's ``backward``. A tool that needs
to see every op call (tt-learn's ``detect_anomaly``) installs a wrapper with :func:`set_wrapper`,
which changes what the table holds, not what ``apply`` does: with no wrapper, no call pays for it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

from . import plugins
from .errors import GradientRuleError, ShapeError, TinyTorchError

__all__ = [
    "STANDARD_CONTEXT", "BoundOp", "Context", "GradRule", "Node", "OP_TABLE", "Op", "apply", "autograd_engine",
    "bind", "get_wrapper", "is_grad_enabled", "ops_used", "reset_dispatch", "set_grad_enabled", "set_wrapper",
]

STANDARD_CONTEXT = ("inputs", "out", "attrs", "needs")
"""What :func:`apply` puts on every recorded context, for any gradient rule to read."""


# ----------------------------------------------------------------------------------------
# The op format
# ----------------------------------------------------------------------------------------


def _check_saves(names, what: str) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    for name in names:
        if not (isinstance(name, str) and name.isidentifier()):
            raise TinyTorchError(f"{what} must be attribute names (strings), got {name!r}")
        if name in STANDARD_CONTEXT:
            raise TinyTorchError(f"{what}: {name!r} is set by apply() for every op; do not list it")
    return names


@dataclass(frozen=True)
class Op:
    """One op: a forward kernel, its gradient rule (optional) and what the kernel saves.

    Args:
        forward: ``forward(ctx, *arrays, **attrs) -> array``. It may store values on ``ctx``
            for the rule; their names are listed in ``saves``.
        backward: ``backward(ctx, grad) -> tuple`` with one entry per input: the gradient of
            the loss with respect to that input (its shape), or ``None`` where ``ctx.needs[i]``
            is False. ``None`` when the rule comes separately (kind ``grad_rule``).
        saves: the names ``forward`` stores on ``ctx``, the kernel's contract with any rule
            written for it. ``None`` (an op registered as a bare function) means undeclared:
            then only a rule of the same distribution, or one that reads nothing saved, fits.
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any] | None = None
    saves: tuple[str, ...] | None = ()

    def __post_init__(self) -> None:
        if not callable(self.forward):
            raise TinyTorchError(f"Op(forward, ...): forward must be callable, got {self.forward!r}")
        if self.backward is not None and not callable(self.backward):
            raise TinyTorchError(f"Op(..., backward): backward must be callable or None, got {self.backward!r}")
        object.__setattr__(self, "saves", _check_saves(self.saves, "Op(saves=...)"))


@dataclass(frozen=True)
class GradRule:
    """A gradient rule registered on its own (kind ``grad_rule``), for the op of the same name.

    Args:
        backward: ``backward(ctx, grad) -> tuple``, one gradient (or ``None``) per input.
        reads: the saved values it reads (names beyond :data:`STANDARD_CONTEXT`). ``None``:
            found in its source (every ``ctx.<name>`` it uses).
    """

    backward: Callable[..., Any]
    reads: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not callable(self.backward):
            raise TinyTorchError(f"GradRule(backward): backward must be callable, got {self.backward!r}")
        object.__setattr__(self, "reads", _check_saves(self.reads, "GradRule(reads=...)"))

    def needs_saved(self) -> tuple[str, ...] | None:
        """The saved values this rule reads: declared, else found in its source; ``None`` when
        neither can tell (the context is handed to another function, or there is no source)."""
        return self.reads if self.reads is not None else context_reads(self.backward)


def context_reads(rule: Callable) -> tuple[str, ...] | None:
    """Names ``rule`` reads from its first argument (the context), beyond the standard ones.

    ``None`` when that cannot be known from the source: no source, or the context is passed on
    to another function (which may read anything).

    Examples:
        >>> def rule(ctx, grad):
        ...     return (grad * ctx.saved_y * ctx.out,)
        >>> context_reads(rule)
        ('saved_y',)
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(rule)))
    except (OSError, TypeError, SyntaxError):
        return None
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) or not func.args.args:
        return None
    ctx_name = func.args.args[0].arg
    as_attribute: set[int] = set()
    reads: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == ctx_name:
            reads.add(node.attr)
            as_attribute.add(id(node.value))
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id == ctx_name and id(node) not in as_attribute:
            return None  # the context escapes: ``helper(ctx)`` may read anything
    return tuple(sorted(reads - set(STANDARD_CONTEXT)))


# ----------------------------------------------------------------------------------------
# Kernel meets rule
# ----------------------------------------------------------------------------------------


class Context:
    """Scratch space that a forward kernel shares with its gradient rule.

    Each op has its own subclass (``BoundOp.context``), so that a rule reading a value the
    kernel never saved gets an error naming both, not a bare AttributeError.
    """

    op: "BoundOp | None" = None

    def __getattr__(self, name: str):  # called only for attributes that are not there
        if name.startswith("__"):
            raise AttributeError(name)
        op = type(self).op
        if op is None:
            raise GradientRuleError(f"the gradient rule reads ctx.{name}, which its kernel did not save")
        saved = ", ".join(op.saves or ()) or "nothing"
        raise GradientRuleError(
            f"the gradient rule of op {op.name!r} (from {op.rule_dist}) reads ctx.{name}, which the kernel "
            f"(from {op.kernel_dist}) did not save (it saves {saved}; every rule may read "
            f"{', '.join('ctx.' + n for n in STANDARD_CONTEXT)})"
        )


@dataclass(frozen=True)
class BoundOp:
    """An op as dispatch runs it: the chosen kernel and the rule paired with it."""

    name: str
    forward: Callable[..., Any]
    backward: Callable[..., Any] | None
    saves: tuple[str, ...] | None
    kernel_dist: str
    rule_dist: str | None
    context: type = Context

    @classmethod
    def make(cls, name, forward, backward, saves, kernel_dist, rule_dist) -> "BoundOp":
        bound = cls(name, forward, backward, saves, kernel_dist, rule_dist)
        object.__setattr__(bound, "context", type(f"Context[{name}]", (Context,), {"op": bound}))
        return bound


def _own_backward(op: Op) -> Callable | None:
    """The op's own rule, unless it is still a stub (then a separate rule may serve)."""
    return op.backward if op.backward is not None and plugins.is_implemented(op.backward) else None


def _mismatch(kernel, rule, op_name: str) -> str | None:
    """Why ``rule`` (a grad_rule component) cannot run after ``kernel`` (an op component), or None."""
    if rule.dist == kernel.dist:
        return None  # written together
    reads = rule.obj.needs_saved()
    if reads is None:
        return None  # cannot be known: Context's error names the value if one is missing
    saves = kernel.obj.saves
    missing = [name for name in reads if saves is None or name not in saves]
    if not missing:
        return None
    declared = "declares no saves" if saves is None else f"saves {', '.join(saves) or 'nothing'}"
    return (
        f"op {op_name!r}: the gradient rule from {rule.dist} reads {', '.join('ctx.' + m for m in missing)}, but "
        f"the kernel from {kernel.dist} {declared}. Register your own gradient rule for {op_name!r} too "
        f"(kind grad_rule), or save {', '.join(repr(m) for m in missing)} in your kernel and list it in "
        f"Op(..., saves=...)"
    )


def _unit(kernel, rule) -> BoundOp:
    """``kernel`` (an op component) with ``rule`` (a grad_rule component, or None: its own rule)."""
    if rule is None:
        own = _own_backward(kernel.obj)
        return BoundOp.make(kernel.name, kernel.obj.forward, own, kernel.obj.saves, kernel.dist,
                            kernel.dist if own is not None else None)
    return BoundOp.make(kernel.name, kernel.obj.forward, rule.obj.backward, kernel.obj.saves, kernel.dist, rule.dist)


def _rule_for(registry, kernel):
    """The grad_rule component to pair with ``kernel``; None for the kernel's own rule (or none).

    The user's pick (``TT_PROVIDERS``, ``use``) first; then the kernel's own ``Op.backward``;
    then a rule of the kernel's distribution; then the built-in rule.
    """
    name = kernel.name
    if not registry.has("grad_rule", name):
        return None
    rule, how = registry.choose_with_reason("grad_rule", name)
    if how in ("choice", "use"):
        return rule
    if _own_backward(kernel.obj) is not None:
        return None
    same = [c for c in registry.providers("grad_rule", name) if c.dist == kernel.dist and c.implemented]
    return same[0] if same else rule


def bind(registry, name: str) -> tuple[BoundOp, list[tuple[str, str]]]:
    """Pair the chosen kernel of op ``name`` with its gradient rule (see :func:`_rule_for`).

    A pairing that cannot work (the rule reads a value the kernel does not save, or a kernel
    without a rule replaces a built-in op whose rule comes inside it) is replaced by the
    built-in kernel with its built-in rule, and reported as ``(distribution, message)`` for the
    plugin at fault; ``plugins`` shows it as a load error.
    """
    kernel = registry.chosen("op", name)
    rule = _rule_for(registry, kernel)
    builtin_kernel = registry.reference("op", name)
    if rule is not None:
        problem = _mismatch(kernel, rule, name)
    elif (_own_backward(kernel.obj) is None and builtin_kernel not in (None, kernel)
          and _own_backward(builtin_kernel.obj) is not None):
        problem = (
            f"op {name!r}: the kernel from {kernel.dist} has no gradient rule, and the built-in rule "
            f"comes with the built-in kernel: give your Op a backward (Op(forward, backward, saves=...))"
        )
    else:
        problem = None
    if problem is None:
        return _unit(kernel, rule), []
    culprit = kernel.dist if rule is None or registry.is_builtin(rule.dist) else rule.dist
    if builtin_kernel is None:  # nothing to fall back to: the op runs, backward says why it cannot
        return _unit(kernel, None), [(culprit, problem)]
    builtin_rule = None if _own_backward(builtin_kernel.obj) else registry.reference("grad_rule", name)
    return _unit(builtin_kernel, builtin_rule), [(culprit, problem + f"; using the built-in {name!r} instead")]


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


class Node:
    """One recorded operation: the op (kernel and rule), its context and its input tensors."""

    __slots__ = ("op", "ctx", "parents")

    def __init__(self, op: BoundOp, ctx: Context, parents: tuple) -> None:
        self.op, self.ctx, self.parents = op, ctx, parents


_wrapper: Callable[[BoundOp], BoundOp] | None = None


class _OpTable(dict):
    """``name -> BoundOp``, filled from the loaded plugins on the first call of each op (so a
    call costs one dict lookup, and the table's keys are the ops used since the last reset).
    While a wrapper is set (:func:`set_wrapper`), each entry is the wrapper's version of the op."""

    def __missing__(self, name: str) -> BoundOp:
        system = plugins.get_plugin_system()
        bound = system.bound_ops.get(name)
        if bound is None:
            known = ", ".join(sorted(system.bound_ops))
            raise TinyTorchError(f"unknown op {name!r}: no installed plugin registers it (known ops: {known})")
        if _wrapper is not None:
            bound = _wrapper(bound)
        self[name] = bound
        return bound


OP_TABLE = _OpTable()
"""The ops in use, by name; filled lazily, emptied by :func:`reset_dispatch`."""


def reset_dispatch() -> None:
    """Forget the op table; the next call of each op looks it up in the plugins again."""
    OP_TABLE.clear()


def get_wrapper() -> Callable[[BoundOp], BoundOp] | None:
    """The wrapper :data:`OP_TABLE` applies to the ops it hands out (see :func:`set_wrapper`), or None."""
    return _wrapper


def set_wrapper(wrapper: Callable[[BoundOp], BoundOp] | None) -> Callable[[BoundOp], BoundOp] | None:
    """Make :data:`OP_TABLE` hand out ``wrapper(op)`` instead of each plain op; ``None``: the plain ops.

    The wrapper is called once per op (when the op is first looked up, and for every op
    already in the table now), not once per call: :func:`apply` itself is unchanged, so with no
    wrapper set nothing costs anything. Ops already in the table are re-bound at once (their
    names stay in the table, so :func:`ops_used` still lists them). A Node recorded earlier keeps
    the op it ran with.

    Args:
        wrapper: ``wrapper(op: BoundOp) -> BoundOp``; the op it returns should keep ``op``'s
            name and distributions (``kernel_dist``, ``rule_dist``), which reports read. Build
            it with :meth:`BoundOp.make`, so its context class refers to it.

    Returns:
        The wrapper that was set before (to restore it later).

    Raises:
        TinyTorchError: ``wrapper`` is neither callable nor None (nothing changes then).

    Examples:
        >>> calls = []
        >>> def counting(op):
        ...     def forward(ctx, *arrays, **attrs):
        ...         calls.append(op.name)
        ...         return op.forward(ctx, *arrays, **attrs)
        ...     return BoundOp.make(op.name, forward, op.backward, op.saves, op.kernel_dist, op.rule_dist)
        >>> import tt_core as tt
        >>> previous = set_wrapper(counting)
        >>> _ = tt.tensor([1.0]) * 2
        >>> _ = set_wrapper(previous)
        >>> calls
        ['mul']
    """
    global _wrapper
    if wrapper is not None and not callable(wrapper):
        raise TinyTorchError(f"set_wrapper(wrapper): wrapper must be callable or None, got {wrapper!r}")
    previous, _wrapper = _wrapper, wrapper
    if OP_TABLE:  # the plugins are loaded: re-bind the ops in use from their plain versions
        plain = plugins.get_plugin_system().bound_ops
        for name in list(OP_TABLE):
            OP_TABLE[name] = plain[name] if wrapper is None else wrapper(plain[name])
    return previous


def ops_used() -> dict[str, BoundOp]:
    """Every op called since the last :func:`reset_dispatch`, with the kernel and rule it ran."""
    return dict(OP_TABLE)


def autograd_engine():
    """The registered autograd engine (tt-learn), or None."""
    registry = plugins.get_registry()
    return registry.get("autograd", "engine") if registry.has("autograd", "engine") else None


Tensor: Any = None  # tt_core.tensor.Tensor, set by that module (it imports this one)


def apply(name: str, *inputs, **attrs):
    """Run op ``name`` on Tensors; record it for autograd when an input needs a gradient.

    Examples:
        >>> import tt_core as tt
        >>> apply("mul", tt.tensor([1.0, 2.0]), tt.tensor([3.0, 4.0]))
        tensor([3., 8.])
    """
    op = OP_TABLE[name]
    ctx = op.context()
    arrays = [t.data for t in inputs]
    try:
        result = Tensor._make(op.forward(ctx, *arrays, **attrs))
    except TinyTorchError:
        raise  # already a clear message (e.g. from a plugin's kernel)
    except ValueError as error:
        shapes = " and ".join(str(a.shape) for a in arrays)
        raise ShapeError(f"{name}: operands of shape {shapes} do not fit ({error})") from None
    except IndexError as error:  # stays an IndexError, which ends a Python iteration
        raise IndexError(f"{name}: {error} (tensor of shape {arrays[0].shape})") from None
    if _grad_enabled:
        needs = tuple([t.requires_grad for t in inputs])
        if True in needs:
            ctx.inputs, ctx.out, ctx.attrs, ctx.needs = arrays, result.data, attrs, needs
            result.requires_grad = True
            result._node = Node(op, ctx, inputs)
    return result

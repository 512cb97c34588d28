"""The checkers of the autograd engine (kind ``autograd``) and of the grad-mode and gradient
checking functions (``function:no_grad``, ``function:gradcheck``), written as checks against
the built-in ones (see :mod:`tt_core.grading` for how grading works).

* ``autograd`` (:func:`check_autograd`): ``engine.backward(tensor, gradient=None,
  retain_graph=False)`` run on graphs built with the built-in ops (broadcast operands, a
  tensor used in several places, an uneven diamond, a chain of 1,000 ops), its leaf gradients
  against the reference engine's (float32, dtype kept) and against central differences
  (float64); gradients adding up in an existing ``.grad``; ``retain_graph``; a graph freed
  after use; the backward of a leaf; every leaf owning its gradient array; and the errors
  for a tensor of several elements without a gradient, a gradient of the wrong shape and a
  tensor that does not require grad.
* ``function:no_grad`` (:func:`check_no_grad`): nothing recorded inside, the previous mode
  restored after (also after an exception, and when recording was already off), and the
  decorator form.
* ``function:gradcheck`` (:func:`check_gradcheck`): True for functions whose gradients are
  right (float32 inputs and integer constants too), GradcheckError for three wrong ones (one
  0.5% off, one wrong only in its second input), the inputs and the global random generator
  left as they were.
* ``function:detect_anomaly`` (:func:`check_detect_anomaly`): inside the block, a NaN in
  forward and an infinite gradient in backward raise, naming the op; finite values pass
  unchanged; after the block (also one that raised) nothing is checked.
* ``function:draw_graph`` (:func:`check_draw_graph`): the recorded graph's ops, leaves
  (parameters named by their path in the module) and edges equal the reference's, with the
  gradient norms after ``backward()``; SVG and PNG files written (their folder made); errors
  for another file type and for a graph ``backward()`` freed.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tt_core import Linear, ReLU, Sequential, Tensor, dispatch, set_grad_enabled
from tt_core.grading import Grader, Mismatch, Skip, central_differences, compare_values, expect, raises
from tt_core.rng import get_rng_state, manual_seed

from .gradcheck import GradcheckError

__all__ = ["check_autograd", "check_detect_anomaly", "check_draw_graph", "check_gradcheck", "check_no_grad"]


@contextmanager
def _grad_mode(mode: bool = True) -> Iterator[None]:
    """Recording set to ``mode`` inside, and the mode before restored after, whatever the
    code inside did to it (a broken ``no_grad`` must not switch recording off for the rest)."""
    previous = set_grad_enabled(mode)
    try:
        yield
    finally:
        set_grad_enabled(previous)


def _leaf(array: np.ndarray, requires_grad: bool = True) -> Tensor:
    """A Tensor holding a copy of ``array`` in its own dtype (float64 stays float64)."""
    array = np.array(array)
    return Tensor(array, dtype=array.dtype, requires_grad=requires_grad)


# ----------------------------------------------------------------------------------------
# The autograd engine
# ----------------------------------------------------------------------------------------

CHAIN_STEPS = 333  # three ops each, and the final sum: a chain of 1,000 ops


def _broadcast(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return (a * b + c).tanh()


def _reused(x: Tensor) -> Tensor:
    return (x * x.exp() + x).sum()


def _diamond(x: Tensor, w: Tensor) -> Tensor:
    a = x @ w
    return (a.tanh().exp() * a).mean()  # one branch three ops long, the other none


def _chain(x: Tensor) -> Tensor:
    for _ in range(CHAIN_STEPS):  # each op takes the one before: every path is 1,000 ops long
        x = (x * 1.002).exp().log()
    return x.sum()


@dataclass(frozen=True)
class _Graph:
    """A graph to differentiate: ``build(*leaves, *constants)`` on fresh leaves of ``leaves``
    shapes (which require grad) and constants of ``constants`` shapes (which do not)."""

    title: str
    leaves: tuple[tuple[int, ...], ...]
    build: Callable[..., Tensor]
    constants: tuple[tuple[int, ...], ...] = ()


GRAPHS = (
    _Graph("broadcast operands (4, 3) and (3,) and a constant (4, 1): tanh(a * b + c), gradient given",
           ((4, 3), (3,)), _broadcast, ((4, 1),)),
    _Graph("a tensor used in three places: (x * exp(x) + x).sum(), gradient implicit", ((5,),), _reused),
    _Graph("an uneven diamond: a = x @ w, (exp(tanh(a)) * a).mean()", ((3, 4), (4, 2)), _diamond),
    _Graph(f"a chain of {3 * CHAIN_STEPS + 1} ops: log(exp(x * 1.002)), {CHAIN_STEPS} times, then sum",
           ((3,),), _chain),
)


def _draw(grader: Grader, graph: _Graph) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray | None]:
    """Leaf values, constant values and the gradient to pass (None for a scalar output)."""
    leaves = [grader.rng.standard_normal(shape) for shape in graph.leaves]
    constants = [grader.rng.standard_normal(shape) for shape in graph.constants]
    with _grad_mode(False):
        out = graph.build(*map(_leaf, leaves), *map(_leaf, constants))
    weights = None if out.size == 1 else grader.rng.standard_normal(out.shape)
    return leaves, constants, weights


def _leaf_gradients(engine, graph: _Graph, leaves: list, constants: list, weights, dtype) -> list:
    """``.grad`` of every leaf after ``engine.backward`` of the graph built in ``dtype``;
    a constant that was given a gradient is a Mismatch."""
    with _grad_mode(True):
        tensors = [_leaf(a.astype(dtype)) for a in leaves]
        fixed = [_leaf(c.astype(dtype), requires_grad=False) for c in constants]
        out = graph.build(*tensors, *fixed)
        gradient = None if weights is None else weights.astype(dtype)
        try:
            engine.backward(out, gradient)
        except RecursionError:
            raise Mismatch(f"backward() raised RecursionError on {graph.title}: a recursive walk of the graph runs "
                           "out of Python's stack; walk it with an explicit stack instead") from None
    for i, constant in enumerate(fixed):
        expect(constant.grad is None, f"constant {i} (which does not require grad) was given a .grad: only "
                                       "tensors with requires_grad=True get one")
    for i, tensor in enumerate(tensors):
        expect(tensor.grad is None or isinstance(tensor.grad, Tensor),
                f".grad of leaf {i} is a {type(tensor.grad).__name__}: store a Tensor (optimizers read .grad.data)")
    return [t.grad for t in tensors]


def _check_graph(grader: Grader, yours, reference, graph: _Graph) -> None:
    leaves, constants, weights = _draw(grader, graph)
    if reference is not None:
        got = _leaf_gradients(yours, graph, leaves, constants, weights, np.float32)
        expected = _leaf_gradients(reference, graph, leaves, constants, weights, np.float32)
        for i, (mine, theirs) in enumerate(zip(got, expected)):
            grader.compare(mine, theirs, f"gradient of leaf {i} {graph.leaves[i]}", rtol=1e-4, atol=1e-6,
                           against="reference engine")
    got = _leaf_gradients(yours, graph, leaves, constants, weights, np.float64)
    tensors = [_leaf(a) for a in leaves]
    fixed = [_leaf(c, requires_grad=False) for c in constants]

    def loss() -> float:
        with _grad_mode(False):
            out = graph.build(*tensors, *fixed)
        return float(np.sum(out.data * (1.0 if weights is None else weights)))

    for i, (mine, tensor) in enumerate(zip(got, tensors)):
        grader.compare(mine, central_differences(loss, tensor.data), f"gradient of leaf {i} {graph.leaves[i]} "
                       "in float64", rtol=1e-4, atol=1e-6, against="central differences", check_dtype=False)


def _check_accumulation(grader: Grader, yours) -> None:
    x = grader.rng.standard_normal(4).astype(np.float32)
    before = grader.rng.standard_normal(4).astype(np.float32)
    with _grad_mode(True):
        leaf = _leaf(x)
        leaf.grad = Tensor(before.copy())
        yours.backward((leaf * leaf).sum())
        grader.compare(leaf.grad, before + 2 * x, "x.grad after backward() of (x * x).sum() with x.grad set before",
                       rtol=1e-5, atol=1e-6, against="the old .grad plus 2x")
        yours.backward((leaf * 3.0).sum())
        grader.compare(leaf.grad, before + 2 * x + 3, "x.grad after a second backward(), of (x * 3).sum()",
                       rtol=1e-5, atol=1e-6, against="the sum of both gradients and the old .grad")


def _check_retain_graph(grader: Grader, yours) -> None:
    x = grader.rng.standard_normal(4)
    with _grad_mode(True):
        leaf = _leaf(x)
        out = (leaf.tanh() * leaf).sum()
        yours.backward(out, retain_graph=True)
        first = np.array(leaf.grad.data)
        yours.backward(out)
        grader.compare(leaf.grad, 2 * first, "x.grad after two backward() through one graph (the first with "
                       "retain_graph=True)", against="twice the first gradient")


def _check_freed(yours, rng: np.random.Generator) -> None:
    with _grad_mode(True):
        leaf = _leaf(rng.standard_normal(4))
        out = leaf.exp().sum()
        yours.backward(out)
        try:
            yours.backward(out)
        except Exception:  # noqa: BLE001 (any error will do: the graph is gone)
            return
    raise Mismatch("a second backward() through a graph already used (without retain_graph=True) ran again: free "
                   "the graph after backward() (drop each node's saved values), so that a second one raises as "
                   "the reference's does")


def _check_errors(grader: Grader, yours) -> None:
    x = grader.rng.standard_normal((2, 3)).astype(np.float32)
    with _grad_mode(True):
        leaf = _leaf(x)
        problems = []
        if not raises(lambda: yours.backward(leaf * 2.0, np.ones((3, 2), np.float32))):
            problems.append("backward(gradient=...) of shape (3, 2) for a tensor of shape (2, 3) ran")
        if not raises(lambda: yours.backward(_leaf(x, requires_grad=False).sum())):
            problems.append("backward() of a tensor that does not require grad ran (nothing can receive a gradient)")
    expect(not problems, "; ".join(problems) + ": it must raise, naming what is wrong")


def _check_non_scalar(grader: Grader, yours) -> None:
    with _grad_mode(True):
        leaf = _leaf(grader.rng.standard_normal((2, 3)).astype(np.float32))
        out = leaf * 2.0
        if not raises(lambda: yours.backward(out)):
            raise Mismatch("backward() without a gradient on a tensor of shape (2, 3) ran: the gradient is implicit "
                           "(1) only for a tensor of one element; otherwise raise, asking for gradient=")


def _check_own_arrays(grader: Grader, yours) -> None:
    g = grader.rng.standard_normal((3, 4)).astype(np.float32)
    with _grad_mode(True):
        x, a, b = _leaf(g * 0.5), _leaf(np.ones((3, 4), np.float32)), _leaf(np.ones((3, 4), np.float32))
        passed = g.copy()
        yours.backward(x, passed)
        grader.compare(x.grad, g, "x.grad after x.backward(g) of the leaf x itself", against="g")
        yours.backward(a + b, passed)
    grads = {"x.grad": x.grad.data, "a.grad": a.grad.data, "b.grad": b.grad.data, "the gradient passed": passed}
    names = list(grads)
    shared = [f"{first} and {second}" for i, first in enumerate(names) for second in names[i + 1:]
              if np.shares_memory(grads[first], grads[second])]
    expect(not shared, f"{', '.join(shared)} share memory: an in-place update of one .grad (clip_grad_norm_, an "
                        "optimizer) would change the other; give every leaf an array of its own (copy the gradient "
                        "passed, and a rule's gradient that reaches two leaves)")


def check_autograd(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``autograd``: ``yours.backward`` on graphs of the built-in ops.

    See the module docstring for the cases. The graphs are recorded by the built-in
    dispatch (so each node holds the op's rule and context); the engine under test only
    walks them. Without a reference: central differences and the contract's other cases.
    The speed ratio is the backward pass through the chain of 1,000 ops.
    """
    if not callable(getattr(yours, "backward", None)):
        with grader.case("has backward(tensor, gradient=None, retain_graph=False)"):
            raise Mismatch(f"autograd:{name} is a {type(yours).__name__} without a backward method: the engine is an "
                           "object with backward(tensor, gradient=None, retain_graph=False)")
        return
    against = "the reference engine and central differences" if reference is not None else "central differences"
    for graph in GRAPHS:
        with grader.case(f"gradients on {graph.title} vs {against}"):
            _check_graph(grader, yours, reference, graph)
    with grader.case("gradients add up into an existing .grad (set before, and over two backward calls)"):
        _check_accumulation(grader, yours)
    with grader.case("retain_graph=True keeps the graph for a second backward()"):
        _check_retain_graph(grader, yours)
    with grader.case("without retain_graph, a second backward() through the same graph raises"):
        _check_freed(yours, grader.rng)
    with grader.case("backward() without a gradient on a tensor of several elements raises"):
        _check_non_scalar(grader, yours)
    with grader.case("backward() raises for a gradient of the wrong shape and for a tensor that does not require grad"):
        _check_errors(grader, yours)
    with grader.case("the backward of a leaf itself; every leaf gets a gradient array of its own"):
        _check_own_arrays(grader, yours)
    if reference is not None:
        with _grad_mode(True):
            x = _leaf(grader.rng.standard_normal(8).astype(np.float32))
            mine_out, ref_out = _chain(x), _chain(x)
        grader.time(lambda: yours.backward(mine_out, retain_graph=True),
                    lambda: reference.backward(ref_out, retain_graph=True))


# ----------------------------------------------------------------------------------------
# no_grad
# ----------------------------------------------------------------------------------------


class _Raised(Exception):
    """Raised inside a ``no_grad`` block to see that the mode is restored after an error."""


def _records(x: Tensor) -> bool:
    """Whether an operation on ``x`` (which requires grad) records a graph now."""
    y = x * 2.0
    return y.requires_grad or y._node is not None


def check_no_grad(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:no_grad``: ``with no_grad():`` and ``@no_grad()``.

    Operations inside record nothing (their results do not require grad); the mode before
    is back after the block, also when the block raised (and the exception goes on), and
    when recording was already off before it (nested blocks too); as a decorator the
    function runs without recording, gets its arguments and returns its result.
    """
    x = _leaf(grader.rng.standard_normal(3).astype(np.float32))
    with grader.case("inside `with no_grad():` operations record no graph"), _grad_mode(True):
        with yours():
            inside = x * 2.0
        expect(not inside.requires_grad and inside._node is None,
                "x * 2 inside the block requires grad (a graph was recorded): switch recording off on entering "
                "(tt_core.set_grad_enabled(False))")
    with grader.case("recording is back on after the block, also after a block that raised"), _grad_mode(True):
        with yours():
            pass
        expect(_records(x), "after the block, x * 2 does not record a graph: restore the mode on leaving")
        try:
            with yours():
                raise _Raised
        except _Raised:
            pass
        else:
            raise Mismatch("an exception raised inside the block did not come out of it: __exit__ must not "
                           "swallow it (return None or False)")
        expect(_records(x), "after a block that raised, x * 2 does not record a graph: restore the mode in "
                             "__exit__ (or a finally:), which runs on errors too")
    with grader.case("the mode before the block is what comes back: off stays off, nested blocks too"), \
            _grad_mode(False):
        with yours():
            pass
        expect(not _records(x), "recording was off before the block and is on after it: restore the mode from "
                                 "before, rather than switching it on")
        set_grad_enabled(True)
        with yours():
            with yours():
                pass
            expect(not _records(x), "after a nested block ends, the outer no_grad block records again: restore the "
                                     "mode each block found (a stack, or the previous value kept per entry)")
        expect(_records(x), "after two nested blocks, recording is not back on")
    with grader.case("as a decorator, @no_grad() runs the function without recording and returns its result"), \
            _grad_mode(True):
        @yours()
        def scaled(t, factor=2.0):
            return t * factor

        out = scaled(x, factor=3.0)
        expect(isinstance(out, Tensor), f"the decorated function returned {type(out).__name__}, not its result")
        grader.compare(out, x.data * 3.0, "the decorated function's result", against="x * 3")
        expect(not out.requires_grad, "the decorated function's result requires grad: it ran with recording on")
        expect(_records(x), "after calling the decorated function, recording is not back on")


# ----------------------------------------------------------------------------------------
# gradcheck
# ----------------------------------------------------------------------------------------


def _cut(t: Tensor) -> Tensor:
    """The values of ``t`` as a constant: their gradient is lost."""
    return Tensor(np.array(t.data), dtype=t.dtype)


@dataclass(frozen=True)
class _Function:
    """A function for gradcheck, its description, and how its inputs are drawn."""

    title: str
    fn: Callable[..., Tensor]
    draw: Callable[[np.random.Generator], list]


RIGHT = (
    _Function("(x * y + tanh(x)).sum() with x (3, 4) and y (4,) broadcast",
              lambda x, y: (x * y + x.tanh()).sum(),
              lambda rng: [rng.standard_normal((3, 4)), rng.standard_normal(4)]),
    _Function("sigmoid(a @ b), an output of 4 elements, from float32 inputs",
              lambda a, b: (a @ b).sigmoid(),
              lambda rng: [rng.standard_normal((2, 3)).astype(np.float32),
                           rng.standard_normal((3, 2)).astype(np.float32)]),
    _Function("x[index] * 2 with an integer index array (a constant input)",
              lambda x, index: x[index] * 2.0,
              lambda rng: [rng.standard_normal(5), rng.integers(0, 5, 4)]),
)
WRONG = (
    _Function("x * x with the second factor cut from the graph (the gradient is half the true one)",
              lambda x: x * _cut(x), lambda rng: [rng.standard_normal((2, 3))]),
    _Function("(x * y + y * y').sum() with y' cut: only the second input's gradient is wrong",
              lambda x, y: (x * y + y * _cut(y)).sum(),
              lambda rng: [rng.standard_normal(4), rng.standard_normal(4)]),
    _Function("(x * x + 0.01 * x * x').sum() with x' cut: a gradient 0.5% off",
              lambda x: (x * x + x * _cut(x) * 0.01).sum(), lambda rng: [rng.standard_normal(6) + 2.0]),
)


def _is_gradcheck_error(error: Exception) -> bool:
    """The built-in GradcheckError, or an error class of that name of the learner's own."""
    return isinstance(error, GradcheckError) or type(error).__name__ == "GradcheckError"


def check_gradcheck(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:gradcheck``: ``gradcheck(fn, inputs)``.

    True for each function of :data:`RIGHT` (right gradients, within the default
    tolerances), with the caller's arrays and the global random generator left as they
    were; GradcheckError (an AssertionError) for each of :data:`WRONG`.
    """
    with _grad_mode(True):
        for function in RIGHT:
            with grader.case(f"True for {function.title}"):
                inputs = function.draw(grader.rng)
                originals = [np.array(a) for a in inputs]
                state = get_rng_state()
                result = yours(function.fn, inputs)
                expect(result is True or (isinstance(result, (bool, np.bool_)) and bool(result)),
                        f"gradcheck returned {result!r}: it must return True when every gradient matches")
                for i, (a, original) in enumerate(zip(inputs, originals)):
                    expect(np.array_equal(a, original), f"input {i} was changed by gradcheck: perturb a float64 "
                                                         "copy, never the caller's array")
                expect(str(get_rng_state()) == str(state),
                        "gradcheck moved the global random generator: draw its output weights from a private "
                        "np.random.default_rng(seed)")
        for function in WRONG:
            with grader.case(f"raises GradcheckError for {function.title}"):
                inputs = function.draw(grader.rng)
                try:
                    result = yours(function.fn, inputs)
                except Exception as error:  # noqa: BLE001 (which error it is, is the finding)
                    expect(_is_gradcheck_error(error), f"gradcheck raised {type(error).__name__}: {error}; it must "
                                                        "raise GradcheckError (from tt_learn.gradcheck)")
                    continue
                raise Mismatch(f"gradcheck returned {result!r}: it must raise GradcheckError when an analytic "
                               "gradient differs from central differences")
        if reference is not None:
            function = RIGHT[0]
            inputs = function.draw(grader.rng)
            grader.time(lambda: yours(function.fn, inputs), lambda: reference(function.fn, inputs))


# ----------------------------------------------------------------------------------------
# detect_anomaly
# ----------------------------------------------------------------------------------------


@contextmanager
def _op_table_kept() -> Iterator[None]:
    """The op table's wrapper as it was before, whatever the code inside left installed."""
    before = dispatch.get_wrapper()
    try:
        yield
    finally:
        if dispatch.get_wrapper() is not before:
            dispatch.set_wrapper(before)


def _raised(call: Callable[[], object]) -> Exception | None:
    try:
        call()
    except Exception as error:  # noqa: BLE001 (the error is what is checked)
        return error
    return None


def check_detect_anomaly(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:detect_anomaly``: ``with detect_anomaly():``.

    Inside the block, ``log`` of a negative number (NaN in forward) raises an error that
    names ``log``, and ``backward()`` through ``sqrt`` at 0 (an infinite gradient) one that
    names ``sqrt``; finite values come out as without the block; after the block, and after
    a block that raised, a NaN passes silently again.
    """
    rng = grader.rng
    negative = -rng.uniform(0.5, 2.0, 3).astype(np.float32)
    with grader.case("inside the block, a NaN in forward raises, naming the op"), _op_table_kept(), \
            _grad_mode(True):
        x = _leaf(np.concatenate([negative, -negative]))
        with yours():
            error = _raised(lambda: x.log())
        expect(error is not None, "log of negative numbers gave NaN inside the block without an error")
        expect("log" in str(error), f"the error does not name the op log: {error}")
    with grader.case("inside the block, an infinite gradient in backward raises, naming the op"), _op_table_kept(), \
            _grad_mode(True):
        x = _leaf(np.array([0.0, *(-negative)], np.float32))
        with yours():
            out = x.sqrt().sum()
            error = _raised(lambda: out.backward())
        expect(error is not None, "backward() through sqrt at 0 gave an infinite gradient inside the block without "
                                  "an error: check the gradients of every rule too")
        expect("sqrt" in str(error), f"the error does not name the op sqrt: {error}")
    with grader.case("finite values come out unchanged"), _op_table_kept(), _grad_mode(True):
        values = rng.standard_normal((3, 4)).astype(np.float32)
        with yours():
            inside = (_leaf(values).tanh() * 2.0).sum(axis=1)
        outside = (_leaf(values).tanh() * 2.0).sum(axis=1)
        grader.compare(inside, outside, "tanh(x) * 2 summed, inside the block", against="outside it")
    with grader.case("after the block, and after a block that raised, nothing is checked"), _op_table_kept():
        x = _leaf(negative)
        with yours():
            pass
        expect(_raised(lambda: x.log()) is None, "after the block, log of a negative number raised: stop checking "
                                                 "when the block ends")
        try:
            with yours():
                x.log()
        except Exception:  # noqa: BLE001, S110 (the block's error, checked in the first case)
            pass
        expect(_raised(lambda: x.log()) is None, "after a block that raised, log of a negative number raised: stop "
                                                 "checking in __exit__ (or a finally:), which runs on errors too")


# ----------------------------------------------------------------------------------------
# draw_graph
# ----------------------------------------------------------------------------------------


def _model_and_loss(rng: np.random.Generator) -> tuple[Sequential, Tensor]:
    """A small MLP (weights from ``rng``) and a loss recorded through it."""
    manual_seed(int(rng.integers(2**31)))
    model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    with _grad_mode(True):
        loss = (model(Tensor(rng.standard_normal((5, 3)).astype(np.float32))) * 2.0).sum()
    return model, loss


def _compare_graphs(graph, expected) -> None:
    """What two recordings of one graph must share: the ops and the leaves (by name), the
    number of edges, the output's name."""
    for what, mine, theirs in (("ops", graph.ops, expected.ops), ("leaves", graph.leaves, expected.leaves)):
        mine, theirs = Counter(n.name for n in mine), Counter(n.name for n in theirs)
        if mine != theirs:
            missing, unexpected = sorted((theirs - mine).elements()), sorted((mine - theirs).elements())
            raise Mismatch(f"the graph's {what} differ from the reference's: missing {missing or 'none'}, unexpected "
                           f"{unexpected or 'none'}" + (" (parameters are named by their path in the module, like "
                                                        "0.weight)" if what == "leaves" else ""))
    expect(len(graph.edges) == len(expected.edges), f"the graph has {len(graph.edges)} edges, the reference's "
                                                    f"{len(expected.edges)} (one per input of each op)")
    output, wanted = graph.node(graph.output).name, expected.node(expected.output).name
    expect(output == wanted, f"the graph's output is {output!r}, the reference's {wanted!r}")


def _leaf_norms(graph) -> dict[str, float | None]:
    return {n.name: n.grad_norm for n in graph.leaves}


def check_draw_graph(grader: Grader, yours, reference, name: str) -> None:
    """The check of ``function:draw_graph``: ``draw_graph(tensor, path=None, module=None,
    collapse="auto", layout="auto") -> Graph``.

    On the loss of a small MLP: the graph recorded with ``path=None`` has the reference's
    ops, leaves (parameters named by their path in the module, ``0.weight``) and edges, and
    after ``backward()`` each leaf's gradient norm; drawn into ``<folder>/graph.svg`` and
    ``.png`` (the folder made), the files are SVG and PNG (skipped when neither Graphviz's
    ``dot`` nor matplotlib can draw); errors for a ``.txt`` path and a graph freed by
    ``backward()``. The graphs are read through the :class:`tt_learn.graph.Graph` interface.
    """
    if reference is None:
        grader.skip("graph", "no built-in draw_graph to compare with")
        return
    model, loss = _model_and_loss(grader.rng)
    with grader.case("draw_graph(loss, None, module=model) records the reference's ops, leaves and edges") as recorded:
        graph = yours(loss, None, module=model)
        expected = reference(loss, None, module=model)
        _compare_graphs(graph, expected)
    if recorded.passed:
        with grader.case("after backward(), the recorded graph shows each leaf's gradient norm"), _grad_mode(True):
            loss.backward()
            compare_values(grader, _leaf_norms(graph), _leaf_norms(expected), "the leaves' gradient norms",
                           rtol=1e-5, check_dtype=False)
    with grader.case("draws an SVG and a PNG file where it is told (the folder made)"), \
            tempfile.TemporaryDirectory() as folder:
        model, loss = _model_and_loss(grader.rng)
        if raises(lambda: reference(loss, Path(folder, "reference.svg"), module=model)):
            raise Skip("neither Graphviz's dot nor matplotlib is installed here, so nothing can be drawn")
        for suffix, start in ((".svg", b"<"), (".png", b"\x89PNG")):
            path = Path(folder, "new", f"graph{suffix}")
            yours(loss, path, module=model)
            expect(path.is_file(), f"draw_graph(loss, {str(path)!r}) wrote no file there (make its folder first)")
            content = path.read_bytes()
            expect(content.startswith(start) and (suffix == ".png" or b"<svg" in content[:2000]),
                   f"{path.name} is not a {suffix[1:].upper()} file (it starts with {content[:12]!r})")
    with grader.case("errors: a .txt file, and a graph backward() freed"), tempfile.TemporaryDirectory() as folder:
        model, loss = _model_and_loss(grader.rng)
        problems = []
        if not raises(lambda: yours(loss, Path(folder, "graph.txt"), module=model)):
            problems.append("draw_graph(loss, 'graph.txt') was accepted (it writes .png or .svg)")
        with _grad_mode(True):
            loss.backward()
        if not raises(lambda: yours(loss, None)):
            problems.append("draw_graph of a loss after backward() (which freed its graph) gave a graph")
        expect(not problems, "; ".join(problems) + ": raise an error saying what is wrong")

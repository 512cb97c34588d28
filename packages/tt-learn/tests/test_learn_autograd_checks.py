"""The checkers of the autograd engine and of ``no_grad`` and ``gradcheck``: a learner's correct
versions (written here, differently from the built-ins) pass under several seeds; each
deliberately wrong one fails with the diagnosis a learner needs."""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pytest
from tt_core import ShapeError, Tensor, TinyTorchError, dispatch, set_grad_enabled
from tt_core import _plugin as core_plugin
from tt_core.grading import FAILED, NO_REFERENCE, PASSED, grade
from tt_core.plugins import ComponentRegistry
from tt_learn import _plugin as learn_plugin
from tt_learn import grading_autograd
from tt_learn.autograd import engine as builtin_engine
from tt_learn.gradcheck import GradcheckError
from tt_learn.graph import Graph, record_graph
from tt_learn.graph import draw_graph as builtin_draw_graph

SEEDS = (0, 1, 2)


# -- the autograd engine ---------------------------------------------------------------------


class Engine:
    """A learner's engine: Kahn's algorithm (a tensor is processed once all its consumers
    have sent their gradients). The flags switch one part of the contract off, to make the
    wrong engines the checker must catch."""

    accumulate = copy = free = honour_retain = needs_gradient = tensor_grads = True

    def order(self, root: Tensor) -> list[Tensor]:
        consumers: dict[int, int] = {}
        seen, stack = {id(root)}, [root]
        while stack:
            tensor = stack.pop()
            for parent in tensor._node.parents if tensor._node is not None else ():
                consumers[id(parent)] = consumers.get(id(parent), 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
        ready, order = [root], []
        while ready:
            tensor = ready.pop()
            order.append(tensor)
            for parent in tensor._node.parents if tensor._node is not None else ():
                consumers[id(parent)] -= 1
                if consumers[id(parent)] == 0:
                    ready.append(parent)
        return order

    def store(self, leaf: Tensor, grad: np.ndarray) -> None:
        grad = np.array(grad, dtype=leaf.dtype) if self.copy else grad
        if leaf.grad is not None and self.accumulate:
            grad = leaf.grad.data + grad
        leaf.grad = Tensor._make(grad) if self.tensor_grads else grad

    def backward(self, tensor: Tensor, gradient=None, retain_graph: bool = False) -> None:
        if not tensor.requires_grad:
            raise TinyTorchError("backward() of a tensor that does not require grad")
        if gradient is None:
            if tensor.size != 1 and self.needs_gradient:
                raise TinyTorchError(f"backward() of a tensor of shape {tensor.shape} needs a gradient")
            gradient = np.ones(tensor.shape, tensor.dtype)
        gradient = np.asarray(gradient, dtype=tensor.dtype)
        if gradient.shape != tensor.shape:
            raise ShapeError(f"gradient of shape {gradient.shape} for a tensor of shape {tensor.shape}")
        grads = {id(tensor): gradient}
        for current in self.order(tensor):
            grad = grads.pop(id(current), None)
            node = current._node
            if node is None:
                if grad is not None:
                    self.store(current, grad)
                continue
            if node.ctx is None:
                raise RuntimeError("the graph was freed by an earlier backward()")
            if grad is not None:
                for parent, parent_grad in zip(node.parents, node.op.backward(node.ctx, grad)):
                    if parent.requires_grad:
                        grads[id(parent)] = parent_grad if id(parent) not in grads else grads[id(parent)] + parent_grad
            if self.free and not (retain_graph and self.honour_retain):
                node.ctx, node.parents = None, ()


class Recursive(Engine):
    """Orders the graph by a recursive depth-first search."""

    def order(self, root):
        order, seen = [], set()

        def visit(tensor):
            seen.add(id(tensor))
            for parent in tensor._node.parents if tensor._node is not None else ():
                if id(parent) not in seen:
                    visit(parent)
            order.append(tensor)

        visit(root)
        return order[::-1]


class BreadthFirst(Engine):
    """Processes tensors in the order first reached, before all their consumers are done."""

    def order(self, root):
        order, seen, queue = [], {id(root)}, [root]
        while queue:
            tensor = queue.pop(0)
            order.append(tensor)
            for parent in tensor._node.parents if tensor._node is not None else ():
                if id(parent) not in seen:
                    seen.add(id(parent))
                    queue.append(parent)
        return order


def variant(**flags) -> Engine:
    return type("Variant", (Engine,), flags)()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_engine_passes(seed, grade_mine, assert_passes):
    result = grade_mine("autograd", "engine", Engine(), seed)
    assert_passes(result)
    assert len(result.cases) == len(grading_autograd.GRAPHS) + 6


def test_the_built_in_engine_passes(grade_mine, assert_passes):
    assert_passes(grade_mine("autograd", "engine", builtin_engine))


def test_a_recursive_walk_fails_on_the_chain_of_1000_ops(grade_mine, assert_fails):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        result = grade_mine("autograd", "engine", Recursive())
    finally:
        sys.setrecursionlimit(limit)
    assert_fails(result, "gradients on a chain of 1000 ops", "raised RecursionError on a chain of 1000 ops")
    assert [c.status for c in result.cases].count(FAILED) == 1


def test_an_order_that_is_not_topological_fails_on_the_diamond(grade_mine, assert_fails):
    result = grade_mine("autograd", "engine", BreadthFirst())
    detail = assert_fails(result, "gradients on an uneven diamond", "gradient of leaf 0 (3, 4) differs at")
    assert "reference engine" in detail


@pytest.mark.parametrize(("flags", "case", "diagnosis"), [
    ({"accumulate": False}, "gradients add up",
     "x.grad after backward() of (x * x).sum() with x.grad set before differs"),
    ({"free": False}, "without retain_graph, a second backward()",
     "a second backward() through a graph already used (without retain_graph=True) ran again"),
    ({"honour_retain": False}, "retain_graph=True keeps the graph",
     "raised RuntimeError: the graph was freed by an earlier backward()"),
    ({"needs_gradient": False}, "backward() without a gradient on a tensor of several elements raises",
     "backward() without a gradient on a tensor of shape (2, 3) ran"),
    ({"copy": False}, "the backward of a leaf itself", "share memory"),
    ({"tensor_grads": False}, "gradients on broadcast operands", ".grad of leaf 0 is a ndarray: store a Tensor"),
])
def test_each_wrong_engine_fails_with_its_diagnosis(flags, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("autograd", "engine", variant(**flags)), case, diagnosis)


def test_an_engine_without_backward_fails_at_once(grade_mine):
    result = grade_mine("autograd", "engine", object())
    assert [(c.name, c.status) for c in result.cases] == [
        ("has backward(tensor, gradient=None, retain_graph=False)", FAILED)]


class Doubled(Engine):
    """Sends twice the gradient it was given (a reference engine would agree with nothing)."""

    def backward(self, tensor, gradient=None, retain_graph=False):
        gradient = np.ones(tensor.shape, tensor.dtype) if gradient is None and tensor.size == 1 else gradient
        super().backward(tensor, None if gradient is None else 2 * np.asarray(gradient), retain_graph)


def engine_alone(engine, seed: int = 0):
    """Grade ``engine`` with no built-in engine installed: central differences are all there is."""
    registry = ComponentRegistry()
    core = registry.registrar("tt-core")
    core_plugin.tt_register_components(core)
    core.commit()
    mine = registry.registrar("my-dist")
    mine.register("autograd", "engine", engine)
    mine.register("checker", "autograd", grading_autograd.check_autograd)
    mine.commit()
    return grade(registry.chosen("autograd", "engine"), registry, seed)


def test_without_a_reference_engine_central_differences_decide(assert_fails):
    result = engine_alone(Engine())
    assert result.status == NO_REFERENCE and result.reference is None
    assert all(c.status == PASSED for c in result.cases)
    assert result.cases[0].name.endswith("vs central differences")
    detail = assert_fails(engine_alone(Doubled()), "gradients on broadcast operands", "central differences")
    assert "yours is 2 times the central differences everywhere" in detail


# -- no_grad ---------------------------------------------------------------------------------


@contextlib.contextmanager
def no_grad():
    """A learner's no_grad: a generator context manager (which also decorates)."""
    previous = set_grad_enabled(False)
    try:
        yield
    finally:
        set_grad_enabled(previous)


@contextlib.contextmanager
def no_grad_without_finally():
    previous = set_grad_enabled(False)
    yield
    set_grad_enabled(previous)


class NoGradSwitchingOn:
    def __enter__(self):
        set_grad_enabled(False)

    def __exit__(self, *error):
        set_grad_enabled(True)


class NoGradSwallowing(NoGradSwitchingOn):
    def __enter__(self):
        self.previous = set_grad_enabled(False)

    def __exit__(self, *error):
        set_grad_enabled(self.previous)
        return True


class NoGradOnlyAsBlock(NoGradSwallowing):
    def __exit__(self, *error):
        set_grad_enabled(self.previous)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_no_grad_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "no_grad", no_grad, seed))


@pytest.mark.parametrize(("wrong", "case", "diagnosis"), [
    (no_grad_without_finally, "recording is back on after the block, also after a block that raised",
     "after a block that raised, x * 2 does not record a graph"),
    (NoGradSwitchingOn, "the mode before the block is what comes back",
     "recording was off before the block and is on after it"),
    (NoGradSwallowing, "recording is back on after the block", "an exception raised inside the block did not come out"),
    (NoGradOnlyAsBlock, "as a decorator", "raised TypeError"),
])
def test_each_wrong_no_grad_fails_with_its_diagnosis(wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("function", "no_grad", wrong), case, diagnosis)


def test_a_broken_no_grad_leaves_recording_on_for_what_follows(grade_mine):
    class NeverRestores:
        def __enter__(self):
            set_grad_enabled(False)

        def __exit__(self, *error):
            return None

    assert grade_mine("function", "no_grad", NeverRestores).status == FAILED
    assert (Tensor([1.0], requires_grad=True) * 2).requires_grad


# -- gradcheck -------------------------------------------------------------------------------


def make_gradcheck(float64: bool = True, inputs_checked: int | None = None, rtol: float = 1e-3, result=True):
    """A learner's gradcheck: d sum(fn * w) / d input by one backward, against central
    differences; the options make it wrong."""

    def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=rtol, seed=0):
        tensors = []
        for value in inputs:
            array = np.array(value)
            floating = array.dtype.kind == "f"
            if floating and float64:
                array = array.astype(np.float64)
            tensors.append(Tensor(array, dtype=array.dtype, requires_grad=floating))
        out = fn(*tensors)
        weights = np.random.default_rng(seed).standard_normal(out.shape)
        out.backward(weights.astype(out.dtype))
        checked = [t for t in tensors if t.requires_grad][:inputs_checked]
        for number, x in enumerate(checked):
            analytic = x.grad.data.copy()
            flat = x.data.reshape(-1)
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                plus = float(np.sum(fn(*tensors).data * weights))
                flat[i] = original - eps
                minus = float(np.sum(fn(*tensors).data * weights))
                flat[i] = original
                numeric = (plus - minus) / (2 * eps)
                if abs(analytic.reshape(-1)[i] - numeric) > atol + rtol * abs(numeric):
                    raise GradcheckError(f"input {number}, element {i}: {analytic.reshape(-1)[i]} vs {numeric}")
        return result

    return gradcheck


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_gradcheck_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "gradcheck", make_gradcheck(), seed))


@pytest.mark.parametrize(("wrong", "case", "diagnosis"), [
    (make_gradcheck(float64=False), "True for sigmoid(a @ b), an output of 4 elements, from float32 inputs",
     "raised GradcheckError"),
    (make_gradcheck(inputs_checked=1), "raises GradcheckError for (x * y + y * y').sum()",
     "gradcheck returned True: it must raise GradcheckError"),
    (make_gradcheck(rtol=0.1), "raises GradcheckError for (x * x + 0.01 * x * x').sum()", "gradcheck returned True"),
    (make_gradcheck(result=None), "True for", "gradcheck returned None: it must return True"),
])
def test_each_wrong_gradcheck_fails_with_its_diagnosis(wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("function", "gradcheck", wrong), case, diagnosis)


def test_a_gradcheck_raising_another_error_is_told_which_one_is_expected(grade_mine, assert_fails):
    def asserting(fn, inputs, **options):
        try:
            return make_gradcheck()(fn, inputs, **options)
        except GradcheckError as error:
            raise ValueError(str(error)) from None

    assert_fails(grade_mine("function", "gradcheck", asserting), "raises GradcheckError for x * x",
                 "gradcheck raised ValueError")


def test_the_checks_of_tt_learn_are_registered_and_pass_the_built_in_functions():
    registry = ComponentRegistry()
    for dist, plugin in (("tt-core", core_plugin), ("tt-learn", learn_plugin)):
        registrar = registry.registrar(dist)
        plugin.tt_register_components(registrar)
        registrar.commit()
    assert {"autograd", "metric", "trainer"} <= set(registry.names("checker"))
    functions = set(registry.names("function"))
    assert functions == set(learn_plugin.FUNCTION_CHECKS)
    assert {f"function:{name}" for name in functions} <= set(registry.names("checker"))
    for name in functions:
        result = grade(registry.reference("function", name), registry, seed=0)
        assert result.status == PASSED, (name, result.cases)
        assert all(c.status == PASSED for c in result.cases), (name, result.cases)


# -- detect_anomaly --------------------------------------------------------------------------


def make_detect_anomaly(backward: bool = True, restore_on_error: bool = True, name_op: bool = True):
    """A learner's detect_anomaly: an op-table wrapper whose kernels and rules check their
    results; the options make it wrong."""

    def checking(op):
        def bad(values):
            return np.asarray(values).dtype.kind == "f" and not np.isfinite(values).all()

        def forward(ctx, *arrays, **attrs):
            with np.errstate(all="ignore"):
                out = op.forward(ctx, *arrays, **attrs)
            if bad(out):
                raise TinyTorchError(f"op {op.name} made a NaN or inf" if name_op else "a NaN or inf")
            return out

        def rule(ctx, grad):
            with np.errstate(all="ignore"):
                grads = op.backward(ctx, grad)
            if backward and any(g is not None and bad(g) for g in grads):
                raise TinyTorchError(f"the rule of {op.name} made a NaN or inf")
            return grads

        return dispatch.BoundOp.make(op.name, forward, None if op.backward is None else rule, op.saves,
                                     op.kernel_dist, op.rule_dist)

    @contextlib.contextmanager
    def detect_anomaly():
        previous = dispatch.set_wrapper(checking)
        if restore_on_error:
            try:
                yield
            finally:
                dispatch.set_wrapper(previous)
        else:
            yield
            dispatch.set_wrapper(previous)

    return detect_anomaly


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_detect_anomaly_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "detect_anomaly", make_detect_anomaly(), seed))


@pytest.mark.parametrize(("options", "case", "diagnosis"), [
    ({"backward": False}, "inside the block, an infinite gradient in backward raises",
     "backward() through sqrt at 0 gave an infinite gradient inside the block without an error"),
    ({"restore_on_error": False}, "after the block, and after a block that raised",
     "after a block that raised, log of a negative number raised"),
    ({"name_op": False}, "inside the block, a NaN in forward raises", "the error does not name the op log"),
])
def test_each_wrong_detect_anomaly_fails_and_leaves_the_op_table_plain(options, case, diagnosis, grade_mine,
                                                                        assert_fails):
    assert_fails(grade_mine("function", "detect_anomaly", make_detect_anomaly(**options)), case, diagnosis)
    assert dispatch.get_wrapper() is None


# -- draw_graph ------------------------------------------------------------------------------


def my_draw_graph(tensor, path=None, module=None, collapse="auto", layout="auto"):
    """A learner's draw_graph: records with record_graph, leaves the drawing to the built-in one."""
    graph = tensor if isinstance(tensor, Graph) else record_graph(tensor, module)
    return graph if path is None else builtin_draw_graph(graph, path, collapse=collapse, layout=layout)


def draw_graph_without_module(tensor, path=None, module=None, collapse="auto", layout="auto"):
    return my_draw_graph(tensor, path, None, collapse, layout)


def draw_graph_recording_only(tensor, path=None, module=None, collapse="auto", layout="auto"):
    return my_draw_graph(tensor, None, module)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_draw_graph_passes(seed, grade_mine, assert_passes):
    assert_passes(grade_mine("function", "draw_graph", my_draw_graph, seed))


@pytest.mark.parametrize(("wrong", "case", "diagnosis"), [
    (draw_graph_without_module, "draw_graph(loss, None, module=model) records",
     ("the graph's leaves differ from the reference's: missing ['0.bias', '0.weight', '2.bias', '2.weight'], "
      "unexpected ['parameter', 'parameter', 'parameter', 'parameter']")),
    (draw_graph_recording_only, "draws an SVG and a PNG file", "wrote no file there"),
    (draw_graph_recording_only, "errors: a .txt file", "draw_graph(loss, 'graph.txt') was accepted"),
])
def test_each_wrong_draw_graph_fails_with_its_diagnosis(wrong, case, diagnosis, grade_mine, assert_fails):
    assert_fails(grade_mine("function", "draw_graph", wrong), case, diagnosis)

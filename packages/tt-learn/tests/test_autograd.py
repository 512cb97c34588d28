"""The autograd engine: backward, accumulation, graph freeing, grad mode, errors, gradcheck."""

import dataclasses
import doctest
import gc
import importlib
import time
import tracemalloc
import weakref

import numpy as np
import pytest
import tt_core as tt
from tt_core import dispatch
from tt_core.errors import AutogradUnavailableError, ShapeError, TinyTorchError
from tt_learn import (
    GradcheckError,
    GraphFreedError,
    enable_grad,
    gradcheck,
    no_grad,
    set_grad_enabled,
)


@pytest.fixture(autouse=True)
def grad_mode_restored():
    yield
    assert dispatch.is_grad_enabled(), "a test left grad mode switched off"


# -- backward ----------------------------------------------------------------------------


def test_registered_components():
    registry = tt.get_registry()
    assert registry.chosen("autograd", "engine").dist == "tt-learn"
    assert registry.get("function", "gradcheck") is gradcheck
    assert registry.get("function", "no_grad") is no_grad


def test_simple_chain():
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = ((x * 2.0 + 1.0) ** 2.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * (2 * x.data + 1))


def test_reused_tensor_accumulates():
    x = tt.tensor([3.0, -1.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, -2.0])


def test_diamond_graph():
    x = tt.tensor([0.5, -1.5], requires_grad=True)
    a = x * 2.0
    b = a + 1.0
    c = a * 3.0
    (b * c).sum().backward()
    # b*c = (2x + 1)(6x) = 12x² + 6x  ->  24x + 6
    np.testing.assert_allclose(x.grad.data, 24 * x.data + 6, rtol=1e-6)
    assert gradcheck(lambda x: (x * 2.0 + 1.0) * (x * 2.0 * 3.0), [x.data])


def test_leaf_used_by_several_ops_and_a_constant_branch():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    constant = tt.tensor([5.0, 7.0])
    (x.exp() + x * constant + constant.log()).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data) + constant.data, rtol=1e-6)
    assert constant.grad is None


def test_only_leaves_get_grad():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 3.0
    hidden.sum().backward()
    assert hidden.grad is None and x.grad is not None


def test_grad_accumulates_over_backward_calls_until_zeroed():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    kept = x.grad
    for _ in range(3):
        (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])
    first = x.grad
    (x * 1.0).sum().backward()
    assert x.grad is first, "accumulation keeps the .grad tensor"
    x.zero_grad()
    assert x.grad is None and kept is None


def test_explicit_gradient_for_non_scalar_output():
    x = tt.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = x * x
    seed = np.array([[1.0, 0.0], [2.0, -1.0]], dtype=np.float32)
    y.backward(seed)
    np.testing.assert_array_equal(x.grad.data, 2 * x.data * seed)
    x.grad.data[0, 0] = 99.0
    assert seed[0, 0] == 1.0, "the caller's gradient array must not become .grad"


def test_one_element_tensor_needs_no_gradient_argument():
    x = tt.tensor([2.0], requires_grad=True)
    (x * 3.0).backward()
    np.testing.assert_array_equal(x.grad.data, [3.0])


def test_backward_on_a_leaf():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_leaf_grads_are_writable_and_not_shared():
    a = tt.zeros(2, 3, requires_grad=True)
    b = tt.zeros(2, 3, requires_grad=True)
    c = tt.ones(2, 3)
    ((a + b) * c).sum().backward()  # add sends the same array to a and b
    a.grad.data *= 10
    np.testing.assert_array_equal(b.grad.data, np.ones((2, 3)))
    s = tt.zeros(4, requires_grad=True)
    s.sum().backward()  # sum's gradient is a read-only broadcast view
    s.grad.data += 1
    np.testing.assert_array_equal(s.grad.data, 2 * np.ones(4))


def test_deep_graph_has_no_recursion_limit():
    x = tt.tensor([1.0], requires_grad=True)
    y = x
    start = time.perf_counter()
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**10_000], rtol=1e-3)
    assert time.perf_counter() - start < 10


def test_wide_shared_subgraph_is_visited_once():
    x = tt.tensor([1.0], requires_grad=True)
    shared = x * 2.0
    total = shared
    for _ in range(200):
        total = total + shared
    total.backward()
    np.testing.assert_array_equal(x.grad.data, [402.0])


# -- freeing and memory ------------------------------------------------------------------


def test_graph_is_freed_after_backward():
    x = tt.randn(100, 100, requires_grad=True)
    hidden = (x * 2.0).tanh()
    alive = weakref.ref(hidden)
    loss = hidden.sum()
    del hidden
    assert alive() is not None, "the graph holds the intermediate until backward"
    loss.backward()
    assert alive() is None, "backward must release the intermediate (no reference cycles)"
    assert loss._node.ctx is None and loss._node.parents == ()


def test_retain_graph_keeps_it_and_allows_a_second_backward():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    hidden = x.exp()
    alive = weakref.ref(hidden)
    loss = hidden.sum()
    del hidden
    loss.backward(retain_graph=True)
    assert alive() is not None
    loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(x.data), rtol=1e-6)


def test_second_backward_through_a_freed_graph_raises():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2.0
    loss = hidden.sum()
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        loss.backward()
    with pytest.raises(GraphFreedError, match="'mul'"):
        (hidden * 1.0).sum().backward()


def test_repeated_training_steps_do_not_grow_memory():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(20, 32), tt.ReLU(), tt.Linear(32, 1))
    x, y = tt.randn(16, 20), tt.randn(16, 1)

    def step():
        loss = ((model(x) - y) ** 2.0).mean()
        model.zero_grad()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.01 * p.grad.data

    for _ in range(5):
        step()
    gc.collect()
    tracemalloc.start()
    try:
        step()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            step()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 20_000, f"memory grew by {after - before} bytes over 100 steps"


# -- grad mode ---------------------------------------------------------------------------


def test_no_grad_records_nothing():
    x = tt.tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
        assert not dispatch.is_grad_enabled()
    assert dispatch.is_grad_enabled()
    assert not y.requires_grad and y._node is None
    with pytest.raises(TinyTorchError, match="does not require grad"):
        y.backward()


def test_no_grad_as_decorator_with_and_without_parentheses():
    x = tt.tensor([1.0], requires_grad=True)

    @no_grad()
    def called(t):
        """Docstring kept."""
        return t * 2.0

    @no_grad
    def bare(t):
        return t * 2.0

    assert not called(x).requires_grad and not bare(x).requires_grad
    assert called.__name__ == "called" and called.__doc__ == "Docstring kept."
    assert (x * 2.0).requires_grad


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ValueError), no_grad():
        raise ValueError("boom")
    assert dispatch.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_nesting():
    x = tt.tensor([1.0], requires_grad=True)
    outer = no_grad()
    with outer:
        with enable_grad():
            assert (x * 2.0).requires_grad
        with outer:  # the same instance entered again
            assert not dispatch.is_grad_enabled()
        assert not (x * 2.0).requires_grad
    assert dispatch.is_grad_enabled()


def test_set_grad_enabled_as_call_and_as_context():
    x = tt.tensor([1.0], requires_grad=True)
    with set_grad_enabled(False):
        assert not (x * 2.0).requires_grad
    assert dispatch.is_grad_enabled()
    set_grad_enabled(False)
    try:
        assert not (x * 2.0).requires_grad
    finally:
        set_grad_enabled(True)
    assert (x * 2.0).requires_grad


# -- errors ------------------------------------------------------------------------------


def test_non_scalar_backward_without_gradient_raises():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TinyTorchError, match=r"shape \(2,\).*gradient="):
        (x * 2.0).backward()


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(TinyTorchError, match="requires_grad=True"):
        tt.tensor([1.0, 2.0]).sum().backward()


def test_gradient_of_the_wrong_shape_raises():
    x = tt.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ShapeError, match=r"\(2,\)"):
        (x * 2.0).backward(np.ones(3))


def test_tt_core_alone_has_no_autograd(monkeypatch):
    """With tt-learn's plugin blocked (as if only tt-core were installed), ops have no rules
    and backward() says where the engine comes from."""
    monkeypatch.setenv("TT_DISABLE_PLUGINS", "tt-learn")
    tt.reset_plugins()
    try:
        x = tt.tensor([1.0, 2.0], requires_grad=True)
        y = (x * 2.0).sum()
        assert y._node.op.backward is None
        with pytest.raises(AutogradUnavailableError, match="tt-learn"):
            y.backward()
    finally:
        monkeypatch.delenv("TT_DISABLE_PLUGINS")
        tt.reset_plugins()
    z = (x * 2.0).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


# -- gradcheck ---------------------------------------------------------------------------


def test_gradcheck_catches_a_wrong_rule(monkeypatch):
    wrong = dataclasses.replace(dispatch.OP_TABLE["exp"], backward=lambda ctx, grad: (grad * 2 * ctx.out,))
    monkeypatch.setitem(dispatch.OP_TABLE, "exp", wrong)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3,\)\), element \(0,\): analytic .* vs numeric"):
        gradcheck(lambda x: x.exp(), [np.array([0.1, 0.2, 0.3])])


def test_gradcheck_perturbs_inputs_that_are_not_c_contiguous():
    """A transposed (Fortran-order) input keeps its layout and is still perturbed in place."""
    transposed = np.arange(1.0, 13.0).reshape(3, 4).T
    assert gradcheck(lambda x: (x * x).sum(axis=0), [transposed])
    # a detached input has analytic gradient 0: the numeric one must see the perturbation
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda x: (x.detach() * x.detach() + x * 0).sum(), [transposed])


def test_gradcheck_names_the_failing_input():
    # a stop-gradient on the second input only: its analytic gradient is zero
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(lambda a, b: a * tt.tensor(b.data, dtype=np.float64), [np.ones(2), np.ones(2)])


def test_gradcheck_passes_integer_inputs_as_constants_and_keeps_its_inputs():
    data = np.array([1.0, 2.0, 3.0])
    index = np.array([2, 0, 0])
    assert gradcheck(lambda x, i: x[i.data] * x[i.data], [data, index])
    np.testing.assert_array_equal(data, [1.0, 2.0, 3.0])


def test_gradcheck_rejects_bad_functions():
    with pytest.raises(TinyTorchError, match="must return a Tensor"):
        gradcheck(lambda x: 1.0, [np.ones(2)])
    with pytest.raises(TinyTorchError, match="no floating-point input"):
        gradcheck(lambda i: i, [np.array([1, 2])])


@pytest.mark.parametrize("name", ["tt_learn.autograd", "tt_learn.grad_rules", "tt_learn.gradcheck"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0

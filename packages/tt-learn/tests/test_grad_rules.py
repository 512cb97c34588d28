"""Every gradient rule of a tt-core primitive against finite differences (gradcheck).

``CASES`` maps each op name to the cases that exercise it; a test enumerates the ops tt-core
registers and fails when one has no gradient rule or no case here (so an op added to tt-core
without a tested rule cannot slip through). Later packages test their own ops.
"""

import numpy as np
import pytest
import tt_core as tt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tt_core import ops
from tt_learn import gradcheck, unbroadcast

rng = np.random.default_rng(1234)


def r(*shape):
    """Standard normal float64 test data."""
    return rng.standard_normal(shape)


def away(*shape, margin=0.2):
    """Data at least ``margin`` away from 0 (kinks of abs/relu, poles of 1/x)."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (margin + np.abs(x))


def pos(*shape):
    """Positive data in [0.5, 2.5) (domains of log, sqrt, pow)."""
    return 0.5 + 2 * rng.random(shape)


def distinct(*shape):
    """A shuffled permutation of well-separated values: no ties for max/min."""
    return rng.permutation(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape) * 0.5


REPEATED = np.array([0, 2, 0, 0, 1])

CASES = {
    "add": [
        (lambda a, b: a + b, [r(3, 4), r(3, 4)]),
        (lambda a, b: a + b, [r(3, 4), r(4)]),
        (lambda a, b: a + b, [r(2, 1, 4), r(3, 1)]),
        (lambda a, b: a + b, [r(), r(3)]),
        (lambda a: a + 2.0, [r(3)]),
    ],
    "sub": [
        (lambda a, b: a - b, [r(3, 4), r(3, 4)]),
        (lambda a, b: a - b, [r(3, 1), r(1, 4)]),
        (lambda a: 1.0 - a, [r(3)]),
    ],
    "mul": [
        (lambda a, b: a * b, [r(3, 4), r(3, 4)]),
        (lambda a, b: a * b, [r(2, 3, 4), r(3, 1)]),
        (lambda a: a * a, [r(5)]),
    ],
    "div": [
        (lambda a, b: a / b, [r(3, 4), away(3, 4)]),
        (lambda a, b: a / b, [r(2, 3), away(3)]),
        (lambda a: 2.0 / a, [away(4)]),
    ],
    "pow": [
        (lambda a, b: a**b, [pos(3, 4), r(3, 4)]),
        (lambda a, b: a**b, [pos(2, 3), r(3)]),
        (lambda a: a**3.0, [r(4)]),
        (lambda b: 2.0**b, [r(4)]),
    ],
    "neg": [(lambda a: -a, [r(3, 2)])],
    "matmul": [
        (lambda a, b: a @ b, [r(3, 4), r(4, 5)]),
        (lambda a, b: a @ b, [r(2, 3, 4), r(2, 4, 5)]),
        (lambda a, b: a @ b, [r(2, 1, 3, 4), r(3, 4, 2)]),
        (lambda a, b: a @ b, [r(3, 4), r(2, 4, 5)]),
        (lambda a, b: a @ b, [r(4), r(4, 3)]),
        (lambda a, b: a @ b, [r(3, 4), r(4)]),
        (lambda a, b: a @ b, [r(4), r(4)]),
        (lambda a, b: a @ b, [r(4), r(2, 4, 3)]),
        (lambda a, b: a @ b, [r(2, 3, 4), r(4)]),
        (lambda a, b: a @ b.T, [r(3, 4), r(5, 4)]),
    ],
    "sum": [
        (lambda a: a.sum(), [r(3, 4)]),
        (lambda a: a.sum(axis=0), [r(3, 4)]),
        (lambda a: a.sum(axis=-1, keepdims=True), [r(2, 3, 4)]),
        (lambda a: a.sum(axis=(0, 2)), [r(2, 3, 4)]),
    ],
    "mean": [
        (lambda a: a.mean(), [r(3, 4)]),
        (lambda a: a.mean(axis=1), [r(3, 4)]),
        (lambda a: a.mean(axis=(0, -1), keepdims=True), [r(2, 3, 4)]),
    ],
    "max": [
        (lambda a: a.max(), [distinct(3, 4)]),
        (lambda a: a.max(axis=1), [distinct(3, 4)]),
        (lambda a: a.max(axis=0, keepdims=True), [distinct(3, 4)]),
        (lambda a: a.max(axis=(0, 2)), [distinct(2, 3, 4)]),
        (lambda a: a.max(axis=-1, keepdims=True), [distinct(2, 3, 4)]),
    ],
    "min": [
        (lambda a: a.min(), [distinct(3, 4)]),
        (lambda a: a.min(axis=0), [distinct(3, 4)]),
        (lambda a: a.min(axis=(1, 2), keepdims=True), [distinct(2, 3, 4)]),
    ],
    "getitem": [
        (lambda a: a[1], [r(3, 4)]),
        (lambda a: a[-1, 1:3], [r(3, 4)]),
        (lambda a: a[::2, ..., None], [r(5, 2, 3)]),
        (lambda a: a[REPEATED], [r(4, 3)]),
        (lambda a: a[:, REPEATED], [r(2, 3)]),
        (lambda a: a[REPEATED, np.array([0, 1, 0, 0, 2])], [r(3, 3)]),
        (lambda a: a[[1, 1, 0]], [r(3)]),
        (lambda a: a[np.array([[True, False, True], [False, True, True]])], [r(2, 3)]),
        (lambda a: a[np.array([True, False, True])], [r(3, 2)]),
        (lambda a: a[np.int64(2)], [r(4)]),
    ],
    "reshape": [
        (lambda a: a.reshape(4, 3), [r(3, 4)]),
        (lambda a: a.reshape(-1), [r(2, 3, 2)]),
        (lambda a: a.unsqueeze(1).squeeze(), [r(3, 2)]),
    ],
    "transpose": [
        (lambda a: a.T, [r(3, 4)]),
        (lambda a: a.permute(2, 0, 1), [r(2, 3, 4)]),
        (lambda a: a.transpose(0, -1), [r(2, 3, 4)]),
    ],
    "concatenate": [
        (lambda a, b: tt.concatenate([a, b]), [r(2, 3), r(4, 3)]),
        (lambda a, b, c: tt.concatenate([a, b, c], axis=1), [r(2, 1), r(2, 3), r(2, 2)]),
        (lambda a, b: tt.concatenate([a, b], axis=-1), [r(2, 2, 3), r(2, 2, 1)]),
    ],
    "stack": [
        (lambda a, b: tt.stack([a, b]), [r(2, 3), r(2, 3)]),
        (lambda a, b, c: tt.stack([a, b, c], axis=-1), [r(2, 3), r(2, 3), r(2, 3)]),
        (lambda a: tt.stack([a, a * 2.0], axis=1), [r(3)]),
    ],
    "where": [
        (lambda a, b: tt.where(a.data > 0, a, b), [r(3, 4), r(3, 4)]),
        (lambda a, b: tt.where(np.array([True, False, True, False]), a, b), [r(3, 4), r(4)]),
        (lambda a: tt.where(a.data > 0, a, 0.0), [r(5)]),
    ],
    "cast": [
        (lambda a: a.astype(np.float64) * 2.0, [r(3)]),
    ],
    "exp": [(lambda a: a.exp(), [r(3, 4)])],
    "log": [(lambda a: a.log(), [pos(3, 4)])],
    "sqrt": [(lambda a: a.sqrt(), [pos(3, 4)])],
    "abs": [(lambda a: a.abs(), [away(3, 4)])],
    "clip": [
        (lambda a: a.clip(-0.5, 0.5), [away(4, 5, margin=0.01) * 0.8]),
        (lambda a: a.clip(low=0.1), [r(6) + 0.05]),
        (lambda a: a.clip(high=0.1), [r(6) + 0.05]),
    ],
    "relu": [(lambda a: a.relu(), [away(3, 4)])],
    "sigmoid": [(lambda a: a.sigmoid(), [r(3, 4) * 4])],
    "tanh": [(lambda a: a.tanh(), [r(3, 4) * 2])],
    "gelu": [(lambda a: tt.functional.gelu(a), [r(3, 4) * 2])],
    "softmax": [
        (lambda a: a.softmax(), [r(3, 4)]),
        (lambda a: a.softmax(axis=0), [r(3, 4)]),
        (lambda a: a.softmax(axis=1), [r(2, 3, 4) * 3]),
    ],
    "log_softmax": [
        (lambda a: a.log_softmax(), [r(3, 4)]),
        (lambda a: a.log_softmax(axis=0), [r(3, 4) * 5]),
    ],
}

CASE_LIST = [(op, i, fn, inputs) for op, cases in CASES.items() for i, (fn, inputs) in enumerate(cases)]


def recorded_ops(out) -> set:
    """The op names in the graph behind ``out``."""
    names, stack = set(), [out]
    while stack:
        node = stack.pop()._node
        if node is not None:
            names.add(node.op.name)
            stack.extend(node.parents)
    return names


def test_every_core_op_has_a_rule_and_a_gradcheck_case():
    registry = tt.get_registry()
    core_ops = {c.name for c in registry if c.kind == "op" and c.dist == "tt-core"}
    assert core_ops == set(ops.CORE_OPS)
    missing_rules = sorted(op for op in core_ops if not registry.has("grad_rule", op))
    missing_cases = sorted(core_ops - set(CASES))
    assert not missing_rules, f"ops without a gradient rule: {missing_rules}"
    assert not missing_cases, f"ops without a gradcheck case in CASES: {missing_cases}"


def test_rules_come_from_tt_learn():
    registry = tt.get_registry()
    for op in ops.CORE_OPS:
        assert registry.chosen("grad_rule", op).dist == "tt-learn"


@pytest.mark.parametrize("op, i, fn, inputs", CASE_LIST, ids=[f"{op}-{i}" for op, i, _, _ in CASE_LIST])
def test_gradcheck(op, i, fn, inputs):
    leaves = [tt.tensor(x, dtype=np.float64, requires_grad=True) for x in inputs]
    assert op in recorded_ops(fn(*leaves)), f"case {op}-{i} does not run {op!r}"
    assert gradcheck(fn, inputs)


# -- behaviour beyond finite differences -------------------------------------------------


def test_unbroadcast():
    assert unbroadcast(np.ones((4, 2, 3)), (2, 1)).tolist() == [[12.0], [12.0]]
    grad = np.ones((2, 3))
    assert unbroadcast(grad, (2, 3)) is grad
    scalar = unbroadcast(np.ones(5), ())
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar == 5


def test_repeated_indices_add_up():
    x = tt.tensor([10.0, 20.0, 30.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


def test_fancy_2d_repeated_indices():
    x = tt.zeros(2, 3, requires_grad=True)
    rows, cols = np.array([1, 1, 0]), np.array([2, 2, 0])
    (x[rows, cols] * tt.tensor([1.0, 2.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[4, 0, 0], [0, 0, 3]])


def test_boolean_mask_gradient():
    x = tt.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    x[x.data > 0].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[1, 0], [0, 1]])


def test_max_ties_route_to_the_first_maximum():
    x = tt.tensor([[1.0, 3.0, 3.0], [5.0, 5.0, 5.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 0], [1, 0, 0]])
    y = tt.tensor([2.0, 7.0, 7.0, 1.0], requires_grad=True)
    y.max().backward()
    np.testing.assert_array_equal(y.grad.data, [0, 1, 0, 0])


def test_min_ties_route_to_the_first_minimum():
    x = tt.tensor([[4.0, 1.0, 1.0]], requires_grad=True)
    x.min(axis=-1, keepdims=True).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 0]])


def first_extreme_gradient(x: np.ndarray, upstream: np.ndarray, axis, pick) -> np.ndarray:
    """The documented convention, element by element: for each reduced slice, the upstream
    gradient goes to the first element (row-major over the reduced axes) equal to the slice's
    ``pick`` (max or min); every other element gets 0."""
    axes = tuple(range(x.ndim)) if axis is None else tuple(sorted(a % x.ndim for a in np.atleast_1d(axis)))
    kept = [i for i in range(x.ndim) if i not in axes]
    grad = np.zeros_like(x)
    for out_index in np.ndindex(*(x.shape[i] for i in kept)):
        positions = []
        for red_index in np.ndindex(*(x.shape[i] for i in axes)):
            full = [0] * x.ndim
            for i, v in zip(kept, out_index):
                full[i] = v
            for i, v in zip(axes, red_index):
                full[i] = v
            positions.append(tuple(full))
        extreme = pick(x[p] for p in positions)
        winner = next(p for p in positions if x[p] == extreme)
        grad[winner] = upstream[out_index]
    return grad


@st.composite
def tied_reductions(draw):
    """Arrays of a few repeated values (many ties), a reduction axis and keepdims."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(hnp.arrays(dtype, shape, elements=st.sampled_from([-1.0, 0.0, 2.0])))
    axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1), hnp.valid_tuple_axes(x.ndim, min_size=1)))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name, pick", [("max", max), ("min", min)])
@settings(max_examples=50, deadline=None)
@given(case=tied_reductions())
def test_ties_give_the_whole_gradient_to_the_first_extreme(name, pick, case):
    x, axis, keepdims = case
    t = tt.tensor(x, dtype=x.dtype, requires_grad=True)
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    upstream = np.arange(1, out.size + 1, dtype=x.dtype).reshape(out.shape)  # a different weight per slice
    (out * tt.tensor(upstream, dtype=x.dtype)).sum().backward()
    assert t.grad.dtype == x.dtype
    squeezed = upstream.reshape(np.asarray(getattr(np, name)(x, axis=axis)).shape)
    np.testing.assert_array_equal(t.grad.data, first_extreme_gradient(x, squeezed, axis, pick))


def test_ties_over_several_axes_at_once():
    x = tt.tensor(np.array([[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]]), requires_grad=True)
    x.max(axis=(0, 2)).sum().backward()  # slices x[:, j, :]: [1, 3, 2, 2] and [3, 0, 2, 2]
    np.testing.assert_array_equal(x.grad.data, [[[0, 1], [1, 0]], [[0, 0], [0, 0]]])
    y = tt.tensor([[0.0, -1.0], [-1.0, 5.0]], requires_grad=True)
    y.min().backward()  # the whole array: -1 first at (0, 1), not split with (1, 0)
    np.testing.assert_array_equal(y.grad.data, [[0, 1], [0, 0]])


def test_rules_skip_inputs_that_need_no_gradient():
    a = tt.randn(3, 4, requires_grad=True)
    b = tt.randn(4, 2)
    out = a @ b
    ctx = out._node.ctx
    assert ctx.needs == (True, False)
    grad_a, grad_b = out._node.op.backward(ctx, np.ones(out.shape, dtype=np.float32))
    assert grad_b is None and grad_a.shape == (3, 4)


def test_gradients_keep_float32():
    x = tt.randn(4, 3, requires_grad=True)
    w = tt.randn(3, 2, requires_grad=True)
    loss = (tt.functional.gelu(x @ w).softmax() * 2.5).mean()
    loss.backward()
    assert loss.dtype == np.float32
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_cast_sends_the_gradient_back_in_the_input_dtype():
    x = tt.tensor([1.0, 2.0], requires_grad=True)  # float32
    (x.astype(np.float64) * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_pow_gradient_of_the_exponent_at_zero_base_is_zero():
    base = tt.tensor([0.0, 2.0])
    exponent = tt.tensor([2.0, 3.0], requires_grad=True)
    (base**exponent).sum().backward()
    np.testing.assert_allclose(exponent.grad.data, [0.0, 8 * np.log(2)], rtol=1e-6)


def test_softmax_rules_stay_finite_for_large_logits():
    x = tt.tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    x.log_softmax().sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data, [[1 - 3, 1, 1]], atol=1e-6)


@pytest.mark.parametrize("order", ["F", "C"])
def test_weight_gradient_through_a_transpose_is_laid_out_like_the_weight(order):
    """``x @ weight.T`` (Linear): the weight's gradient comes back in the weight's memory layout
    (column-major, as Linear makes it, or row-major), which keeps the optimizer's element-wise
    updates on the fast path."""
    layer = tt.Linear(5, 3)
    layer.weight.data = layer.weight.data.copy(order=order)
    x = tt.randn(4, 5, requires_grad=True)
    layer(x).sum().backward()
    grad = layer.weight.grad.data
    assert (grad.flags.f_contiguous, grad.flags.c_contiguous) == (order == "F", order == "C")
    assert x.grad.data.flags.c_contiguous
    np.testing.assert_allclose(grad, np.ones((4, 3)).T @ x.data, rtol=1e-6)

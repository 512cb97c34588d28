"""The op table and apply(): activations vs NumPy references, dispatch, recording."""

from __future__ import annotations

import numpy as np
import pytest

import tt_core as tt
from tt_core import Tensor, TinyTorchError, dispatch, ops, plugins
from tt_core import functional as F

LARGE = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 999.0, -5.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float32)


def _softmax64(x, axis=-1):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


REFERENCES = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(x.astype(np.float64) / 2)),  # overflow-free identity
    "tanh": lambda x: np.tanh(x.astype(np.float64)),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x.astype(np.float64) ** 3))),
    "softmax": _softmax64,
    "log_softmax": lambda x: np.log(_softmax64(x)),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_values_vs_numpy(name, rng):
    x = (rng.standard_normal((4, 7)) * 3).astype(np.float32)
    out = getattr(F, name)(Tensor(x))
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.data, REFERENCES[name](x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "log_softmax", "tanh", "relu"])
def test_activations_stay_finite_for_large_inputs(name):
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow on the way
        out = getattr(F, name)(Tensor(LARGE)).data
    assert np.all(np.isfinite(out))
    if name in ("softmax", "log_softmax"):
        want = _softmax64(LARGE)
        np.testing.assert_allclose(out if name == "softmax" else np.exp(out), want, atol=1e-6)
        if name == "log_softmax":
            np.testing.assert_allclose(out[0], [-2000.0, -1000.0, 0.0])
            np.testing.assert_allclose(out[2], np.log([1 / 3] * 3), rtol=1e-6)
    else:
        np.testing.assert_allclose(out, REFERENCES[name](LARGE), atol=1e-6)


def test_softmax_axis(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    for axis in (0, 1, -1):
        out = Tensor(x).softmax(axis=axis).data
        np.testing.assert_allclose(out.sum(axis=axis), 1.0, rtol=1e-6)
        np.testing.assert_allclose(out, _softmax64(x, axis), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(Tensor(x).log_softmax(axis).data, np.log(_softmax64(x, axis)), rtol=1e-5, atol=1e-6)


def test_tensor_methods_match_functional_forms(rng):
    x = Tensor(rng.standard_normal((2, 3)).astype(np.float32))
    for name in ("relu", "sigmoid", "tanh", "softmax", "log_softmax"):
        np.testing.assert_array_equal(getattr(x, name)().data, getattr(F, name)(x).data)


def test_every_core_op_is_in_the_table():
    expected = {
        "add", "sub", "mul", "div", "pow", "neg", "matmul", "sum", "mean", "max", "min", "getitem",
        "reshape", "transpose", "concatenate", "stack", "where", "cast", "exp", "log", "sqrt", "abs",
        "clip", "relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax",
    }
    assert set(ops.CORE_OPS) == expected
    assert set(tt.get_registry().names("op")) >= expected


def test_unknown_op_lists_known_ops():
    with pytest.raises(TinyTorchError) as info:
        tt.apply("frobnicate", tt.ones(2))
    message = str(info.value)
    assert "'frobnicate'" in message and "matmul" in message and "log_softmax" in message


def test_each_op_is_looked_up_once(fresh_plugins, monkeypatch):
    calls = []
    real = plugins.get_plugin_system

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(plugins, "get_plugin_system", counting)
    x = tt.ones(3, 3)
    (x + x).sum()
    assert len(calls) == 2  # the first call of add, then of sum
    assert set(dispatch.ops_used()) == {"add", "sum"}
    for _ in range(50):
        x = ((x * 2 - 1) @ x.T).tanh()
        x.relu().mean(axis=0) + x.sum()
    first_round = len(calls)
    for _ in range(50):
        x = ((x * 2 - 1) @ x.T).tanh()
        x.relu().mean(axis=0) + x.sum()
    assert len(calls) == first_round  # later calls never consult the plugins
    dispatch.reset_dispatch()
    assert dispatch.ops_used() == {}


def test_plugin_kernel_errors_keep_their_message(fresh_plugins, monkeypatch):
    def kernel(ctx, x):
        raise tt.ShapeError("my_op needs a square matrix")

    monkeypatch.setitem(ops.CORE_OPS, "my_op", tt.Op(kernel))  # as if a plugin had registered it
    tt.reset_plugins()
    with pytest.raises(tt.ShapeError, match="^my_op needs a square matrix$"):
        tt.apply("my_op", tt.ones(2, 3))


def test_apply_records_with_grad_mode_and_a_grad_input(fresh_plugins):
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0, 4.0])
    out = a + b
    assert out.requires_grad and out._node is not None
    node = out._node
    assert node.op is dispatch.OP_TABLE["add"] and node.parents == (a, b)
    assert node.op.kernel_dist == "tt-core" and node.op.forward is ops.add
    assert node.op.backward is None and node.op.rule_dist is None  # rules come with tt-learn
    assert node.ctx.needs == (True, False) and node.ctx.attrs == {}
    np.testing.assert_array_equal(node.ctx.out, [4.0, 6.0])
    np.testing.assert_array_equal(node.ctx.inputs[1], [3.0, 4.0])

    assert (b + b)._node is None  # no input needs a gradient
    previous = tt.set_grad_enabled(False)
    try:
        assert previous is True and not tt.is_grad_enabled()
        assert (a + b)._node is None and not (a + b).requires_grad
    finally:
        tt.set_grad_enabled(previous)
    assert tt.is_grad_enabled()


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "sigmoid", "tanh", "softmax", "log_softmax", "mean"])
def test_float_functions_of_integer_tensors_give_float32(name):
    ints = np.array([[1, 2, 3], [4, 5, 6]])
    out = getattr(Tensor(ints), name)()
    assert out.dtype == np.float32
    if name == "mean":
        want = ints.mean()
    elif name in ("softmax", "log_softmax"):
        want = REFERENCES[name](ints.astype(np.float64))
    elif name in REFERENCES:
        want = REFERENCES[name](ints)
    else:
        want = getattr(np, name)(ints)
    np.testing.assert_allclose(out.data, want, rtol=1e-6)
    assert F.gelu(Tensor(ints)).dtype == np.float32


def test_gelu_tanh_is_the_formula(rng):
    x = np.concatenate([(rng.standard_normal(500) * 4), [-1e4, -30.0, 0.0, 30.0, 1e4]]).astype(np.float32)
    exact = x.astype(np.float64)
    formula = np.tanh(np.sqrt(2 / np.pi) * (exact + 0.044715 * exact**3))
    t = ops.gelu_tanh(x)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, formula, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(F.gelu(Tensor(x)).data, 0.5 * x * (1 + t))
    assert ops.GELU_C == float(np.sqrt(2 / np.pi)) and ops.GELU_CUBIC == 0.044715


# -- sums as BLAS products -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (1, 1), (5000,), (64, 128), (2, 40, 64), (2, 3, 16, 16)])
def test_row_sums_and_leading_sums_equal_numpy_sums(dtype, shape):
    """Small arrays take NumPy's reduction, large ones (>= BLAS_SUM_MIN_ELEMENTS) a BLAS product;
    row_dots is the row sum of a product."""
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    rows = ops.row_sums(a)
    assert rows.dtype == dtype and rows.shape == shape[:-1] + (1,)
    np.testing.assert_allclose(rows, a.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-6)
    b = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    dots = ops.row_dots(a, b)
    assert dots.dtype == dtype and dots.shape == shape[:-1] + (1,)
    np.testing.assert_allclose(dots, (a * b).sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-5)
    for count in range(len(shape) + 1):
        lead = ops.leading_sums(a, count)
        assert lead.shape == shape[count:] and lead.dtype == dtype
        np.testing.assert_allclose(lead, a.sum(axis=tuple(range(count))), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("a", [np.arange(12).reshape(3, 4), np.arange(12.0).reshape(3, 4).T, np.zeros((0, 3)),
                               np.zeros((3, 0), np.float32), np.array(2.5)])
def test_row_sums_fall_back_to_numpy_for_integers_views_and_empty_arrays(a):
    np.testing.assert_array_equal(ops.row_sums(a), np.sum(a, axis=-1, keepdims=True))
    count = min(a.ndim, 1)
    np.testing.assert_array_equal(ops.leading_sums(a, count), np.sum(a, axis=tuple(range(count))))
    assert ops.row_sums(a).dtype == np.sum(a, axis=-1).dtype

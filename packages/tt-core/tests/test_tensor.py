"""Tensor: construction, dtypes, arithmetic, indexing, shapes, reductions, constructors."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tt_core as tt
from tt_core import ShapeError, Tensor, TinyTorchError

# -- construction and dtype rules -------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),  # Python float
        (3, np.float32),  # Python int
        ([1, 2, 3], np.float32),  # list of ints
        ([[1.0, 2.0]], np.float32),
        (np.array([1.0, 2.0]), np.float32),  # float64 array
        (np.float64(2.0), np.float32),
        (np.array([1, 2], dtype=np.int64), np.int64),  # labels keep their type
        (np.array([1, 2], dtype=np.int32), np.int32),
        (np.array([1, 2], dtype=np.uint8), np.uint8),
        (np.int64(7), np.int64),
        (np.array([True, False]), np.bool_),
        ([True, False], np.bool_),
        (np.array([1.0], dtype=np.float16), np.float16),
    ],
)
def test_default_dtype_rules(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    assert isinstance(t.data, np.ndarray)
    np.testing.assert_array_equal(t.data, np.asarray(data).astype(dtype))


def test_explicit_dtype_wins():
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64
    assert Tensor(np.array([1.5, 2.5]), dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(Tensor([1.7, -2.2], dtype="int32").data, [1, -2])
    assert tt.tensor([1, 2], dtype=bool).dtype == np.bool_


def test_tensor_from_tensor_and_properties():
    base = Tensor(np.arange(6).reshape(2, 3), dtype=np.float32)
    copy_ = Tensor(base)
    assert copy_.shape == (2, 3) and copy_.ndim == 2 and copy_.size == 6 and len(copy_) == 2
    np.testing.assert_array_equal(copy_.numpy(), base.numpy())
    assert base.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert base.is_leaf and base.grad is None and not base.requires_grad


def test_non_numeric_data_is_refused():
    with pytest.raises(TinyTorchError, match="numeric"):
        Tensor(["a", "b"])


@pytest.mark.parametrize("data, kwargs, match", [
    ([[1.0, 2.0], [3.0]], {}, "ragged"),
    ([1.0], {"dtype": "nonsense"}, "'nonsense' is not a NumPy dtype"),
    ([1.0], {"dtype": np.complex64}, "numeric dtype"),
    (["a"], {"dtype": np.float32}, "cannot make a float32 tensor"),
    (None, {}, "numeric data"),
], ids=["ragged", "unknown-dtype", "complex-dtype", "text-as-float", "none"])
def test_data_or_dtype_that_makes_no_numeric_tensor_is_a_tinytorch_error(data, kwargs, match):
    with pytest.raises(TinyTorchError, match=match):
        Tensor(data, **kwargs)


@pytest.mark.parametrize("make", [tt.zeros, tt.ones, tt.randn, tt.rand])
@pytest.mark.parametrize("shape, bad", [((-1,), "-1"), ((2.5,), "2.5"), ((2, True), "True"), (((3, -2),), "-2")])
def test_constructors_refuse_sizes_that_are_not_whole_numbers(make, shape, bad):
    with pytest.raises(ShapeError, match=f"bad size {bad}"):
        make(*shape)


def test_constructors_take_numpy_integer_sizes():
    assert tt.zeros(np.int64(2), 3).shape == (2, 3) and tt.ones((np.int32(4),)).shape == (4,)


def test_requires_grad_only_for_float_tensors():
    assert Tensor([1.0], requires_grad=True).requires_grad
    with pytest.raises(TinyTorchError, match="floating-point"):
        Tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TinyTorchError, match="int64"):
        tt.zeros(3, dtype=np.int64, requires_grad=True)
    with pytest.raises(TinyTorchError):
        Tensor(np.array([1, 2])).requires_grad_()


def test_detach_shares_data_but_leaves_the_graph():
    t = Tensor([1.0, 2.0], requires_grad=True)
    d = t.detach()
    assert d.data is t.data and not d.requires_grad and d.is_leaf


# -- arithmetic -------------------------------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 2))])
def test_binary_ops_broadcast_like_numpy(op, shape_a, shape_b, rng):
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = (rng.random(shape_b) + 0.5).astype(np.float32)
    out = BINARY[op](Tensor(a), Tensor(b))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, BINARY[op](a, b), rtol=1e-6)


@pytest.mark.parametrize("op", sorted(BINARY))
def test_scalars_and_reflected_forms(op, rng):
    a = (rng.random((2, 3)) + 0.5).astype(np.float32)
    for scalar in (2, 0.5, -3):
        forward = BINARY[op](Tensor(a), scalar)
        reflected = BINARY[op](scalar, Tensor(a))
        assert forward.dtype == reflected.dtype == np.float32
        np.testing.assert_allclose(forward.data, BINARY[op](a, np.float32(scalar)), rtol=1e-6)
        np.testing.assert_allclose(reflected.data, BINARY[op](np.float32(scalar), a), rtol=1e-6)
    # an ndarray on the left defers to the Tensor's reflected method
    b = rng.random((2, 3)).astype(np.float32) + 0.5
    mixed = BINARY[op](b, Tensor(a))
    assert isinstance(mixed, Tensor)
    np.testing.assert_allclose(mixed.data, BINARY[op](b, a), rtol=1e-6)


def test_pow_neg_and_reflected_pow(rng):
    a = (rng.random((3,)) + 0.5).astype(np.float32)
    np.testing.assert_allclose((Tensor(a) ** 2).data, a**2, rtol=1e-6)
    np.testing.assert_allclose((Tensor(a) ** 0.5).data, np.sqrt(a), rtol=1e-6)
    np.testing.assert_allclose((2 ** Tensor(a)).data, 2**a, rtol=1e-6)
    np.testing.assert_allclose((Tensor(a) ** Tensor(a)).data, a**a, rtol=1e-6)
    np.testing.assert_array_equal((-Tensor(a)).data, -a)


def test_mixed_dtypes_stay_float32():
    labels = Tensor(np.array([0, 1, 2]))
    probs = Tensor([0.5, 0.25, 0.125])
    assert (labels + 1).dtype == np.int64  # integer stays integer
    np.testing.assert_array_equal((labels + 1).data, [1, 2, 3])
    assert (labels * 0.5).dtype == np.float32  # never float64 by accident
    np.testing.assert_allclose((labels * 0.5).data, [0, 0.5, 1])
    assert (labels * probs).dtype == np.float32
    np.testing.assert_allclose((probs * labels).data, [0, 0.25, 0.25])
    assert (labels / Tensor(np.array([1, 2, 4]))).dtype == np.float32
    np.testing.assert_allclose((labels / 2).data, [0, 0.5, 1])
    assert (1.5 - labels).dtype == np.float32


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
        ((5, 1, 3, 4), (2, 4, 6)), ((4,), (4, 2)), ((3, 4), (4,)),
    ],
)
def test_matmul_batched_like_numpy(shape_a, shape_b, rng):
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    out = Tensor(a) @ Tensor(b)
    assert out.shape == (a @ b).shape
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose((a @ Tensor(b)).data, a @ b, rtol=1e-5, atol=1e-5)


def test_shape_errors_name_the_op_and_both_shapes():
    with pytest.raises(ShapeError) as info:
        tt.ones(2, 3) + tt.ones(4)
    assert "add" in str(info.value) and "(2, 3)" in str(info.value) and "(4,)" in str(info.value)
    with pytest.raises(ShapeError) as info:
        tt.ones(2, 3) @ tt.ones(4, 5)
    assert "matmul" in str(info.value) and "(2, 3)" in str(info.value) and "(4, 5)" in str(info.value)
    with pytest.raises(ShapeError, match=r"reshape.*\(2, 3\)"):
        tt.ones(2, 3).reshape(4)
    with pytest.raises(ShapeError, match=r"concatenate.*\(2, 3\).*\(2, 4\)"):
        tt.concatenate([tt.ones(2, 3), tt.ones(2, 4)])


# -- comparisons ------------------------------------------------------------------------


def test_comparisons_give_boolean_tensors(rng):
    a = rng.integers(0, 3, size=(4, 5)).astype(np.float32)
    b = rng.integers(0, 3, size=(4, 5)).astype(np.float32)
    ta, tb = Tensor(a), Tensor(b)
    for got, want in [
        (ta == tb, a == b), (ta != tb, a != b), (ta < tb, a < b), (ta <= tb, a <= b),
        (ta > tb, a > b), (ta >= tb, a >= b), (ta == 1, a == 1), (ta > 1.5, a > 1.5), (b < ta, b < a),
    ]:
        assert isinstance(got, Tensor) and got.dtype == np.bool_
        np.testing.assert_array_equal(got.data, want)
    assert (ta == tb).sum().item() == int((a == b).sum())
    assert hash(ta) != hash(tb)  # identity hash: tensors can live in sets and dict keys
    assert len({ta, tb, ta}) == 2


# -- indexing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        1,
        -1,
        slice(1, 3),
        (slice(None), 2),
        (0, slice(None, None, -1)),
        (Ellipsis, 1),
        (None, 0),
        np.array([2, 0, 2]),
        (np.array([0, 1]), np.array([3, 2])),
    ],
    ids=repr,
)
def test_getitem_matches_numpy(key, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    out = Tensor(a)[key]
    assert isinstance(out.data, np.ndarray)
    np.testing.assert_array_equal(out.data, a[key])


def test_getitem_with_masks_and_tensor_indices(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_array_equal(t[a > 0].data, a[a > 0])
    np.testing.assert_array_equal(t[t > 0].data, a[a > 0])  # a boolean Tensor mask
    index = tt.arange(3)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(t[index, Tensor(np.array([0, 1, 3]))].data, a[[0, 1, 2], [0, 1, 3]])
    np.testing.assert_array_equal(t[Tensor(np.array([2, 0]))].data, a[[2, 0]])


def test_getitem_errors():
    t = tt.ones(3, 4)
    with pytest.raises(IndexError, match=r"getitem.*\(3, 4\)"):
        t[5]
    with pytest.raises(TinyTorchError, match="integer or boolean, this one is float32"):
        t[Tensor([0, 1])]  # Python ints make a float32 tensor, which cannot index


def test_iteration_and_numpy_interop():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    rows = list(Tensor(a))
    assert len(rows) == 3 and all(isinstance(r, Tensor) for r in rows)
    np.testing.assert_array_equal(rows[2].data, [4, 5])
    np.testing.assert_array_equal(np.asarray(Tensor(a)), a)
    assert np.asarray(Tensor(a), dtype=np.float64).dtype == np.float64
    with pytest.raises(TinyTorchError, match="0-d"):
        len(Tensor(1.0))


# -- shapes -----------------------------------------------------------------------------


def test_reshape_view_flatten(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_array_equal(t.reshape(6, 4).data, a.reshape(6, 4))
    np.testing.assert_array_equal(t.reshape((4, -1)).data, a.reshape(4, -1))
    np.testing.assert_array_equal(t.reshape([24]).data, a.ravel())
    np.testing.assert_array_equal(t.view(-1, 12).data, a.reshape(-1, 12))
    assert t.flatten().shape == (24,)
    assert t.flatten(1).shape == (2, 12)
    assert t.flatten(-1).shape == (2, 3, 4)
    np.testing.assert_array_equal(t.flatten(1).data, a.reshape(2, 12))


def test_unsqueeze_squeeze():
    t = tt.ones(2, 1, 3)
    assert t.unsqueeze(0).shape == (1, 2, 1, 3)
    assert t.unsqueeze(-1).shape == (2, 1, 3, 1)
    assert t.squeeze().shape == (2, 3)
    assert t.squeeze(1).shape == (2, 3)
    assert t.squeeze(-2).shape == (2, 3)
    with pytest.raises(ShapeError, match=r"squeeze.*\(2, 1, 3\)"):
        t.squeeze(0)


def test_transpose_permute_T(rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = Tensor(a)
    np.testing.assert_array_equal(t.transpose().data, a.swapaxes(-2, -1))
    np.testing.assert_array_equal(t.transpose(0, 2).data, a.swapaxes(0, 2))
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.permute((1, 2, 0)).data, a.transpose(1, 2, 0))
    np.testing.assert_array_equal(t.permute(-1, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.T.data, a.T)
    np.testing.assert_array_equal(Tensor(a[0]).T.data, a[0].T)
    with pytest.raises(TinyTorchError, match="permutation"):
        t.permute(0, 0, 1)
    with pytest.raises(TinyTorchError, match="permutation"):
        t.permute(0, 1)
    with pytest.raises(TinyTorchError, match="permutation"):
        t.permute(0, 1, 5)  # out of range, not wrapped around
    with pytest.raises(TinyTorchError, match="permutation"):
        t.permute(0, 1, -4)
    assert Tensor(2.0).permute().shape == ()
    with pytest.raises(ShapeError, match=r"transpose\(-2, -1\).*\(3,\)"):
        tt.ones(3).transpose()


def test_astype_and_float():
    t = Tensor(np.array([1, 2, 3]))
    assert t.float().dtype == np.float32
    assert t.astype("float64").dtype == np.float64
    np.testing.assert_array_equal(t.float().data, [1.0, 2.0, 3.0])


# -- reductions -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_like_numpy(name, axis, keepdims, rng):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    out = getattr(Tensor(a), name)(axis=axis, keepdims=keepdims)
    want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert isinstance(out.data, np.ndarray) and out.shape == np.shape(want)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, want, rtol=1e-5, atol=1e-6)


def test_argmax_argmin_var(rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    t = Tensor(a)
    assert t.argmax().item() == int(np.argmax(a))
    np.testing.assert_array_equal(t.argmax(axis=1).data, np.argmax(a, axis=1))
    assert t.argmax(axis=0, keepdims=True).shape == (1, 5)
    assert t.argmax(axis=1).dtype == np.int64
    np.testing.assert_array_equal(t.argmin(axis=0).data, np.argmin(a, axis=0))
    np.testing.assert_allclose(t.var().item(), np.var(a), rtol=1e-5)
    np.testing.assert_allclose(t.var(axis=1).data, np.var(a, axis=1), rtol=1e-5)
    assert t.var(axis=0, keepdims=True).shape == (1, 5)


def test_item_and_scalar_conversions():
    assert Tensor([[2.5]]).item() == 2.5
    assert float(Tensor(3)) == 3.0 and int(Tensor([4.0])) == 4
    assert bool(Tensor(1.0)) and not bool(Tensor(0.0))
    with pytest.raises(TinyTorchError, match=r"one element.*\(2,\)"):
        Tensor([1.0, 2.0]).item()
    with pytest.raises(TinyTorchError, match="one element"):
        float(tt.zeros(2, 2))


# -- element-wise functions ---------------------------------------------------------------


def test_elementwise_functions(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    pos = np.abs(a) + 0.1
    t, tp = Tensor(a), Tensor(pos)
    np.testing.assert_allclose(t.exp().data, np.exp(a), rtol=1e-6)
    np.testing.assert_allclose(tp.log().data, np.log(pos), rtol=1e-6)
    np.testing.assert_allclose(tp.sqrt().data, np.sqrt(pos), rtol=1e-6)
    np.testing.assert_array_equal(t.abs().data, np.abs(a))
    np.testing.assert_array_equal(t.clip(-0.5, 0.5).data, np.clip(a, -0.5, 0.5))
    np.testing.assert_array_equal(t.clip(low=0).data, np.maximum(a, 0))
    np.testing.assert_array_equal(t.clip(high=0).data, np.minimum(a, 0))
    for out in (t.exp(), tp.log(), tp.sqrt(), t.abs(), t.clip(-1, 1)):
        assert out.dtype == np.float32
    with pytest.raises(TinyTorchError, match="clip"):
        t.clip()


# -- concatenate, stack, where ------------------------------------------------------------


def test_concatenate_stack_where(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(tt.concatenate([Tensor(a), Tensor(b)]).data, np.concatenate([a, b]))
    np.testing.assert_array_equal(tt.concatenate((Tensor(a), Tensor(b)), axis=1).data, np.concatenate([a, b], 1))
    np.testing.assert_array_equal(tt.stack([Tensor(a), Tensor(b)]).data, np.stack([a, b]))
    np.testing.assert_array_equal(tt.stack([Tensor(a), Tensor(b)], axis=-1).data, np.stack([a, b], -1))
    np.testing.assert_array_equal(tt.where(Tensor(a) > 0, Tensor(a), Tensor(b)).data, np.where(a > 0, a, b))
    np.testing.assert_array_equal(tt.where(a > 0, Tensor(a), 0.0).data, np.where(a > 0, a, 0))
    np.testing.assert_array_equal(tt.where(a > 0, 1.0, Tensor(b)).data, np.where(a > 0, 1, b))
    assert tt.where(a > 0, Tensor(a), 0).dtype == np.float32
    with pytest.raises(TinyTorchError, match="at least one"):
        tt.concatenate([])
    with pytest.raises(TinyTorchError, match="at least one"):
        tt.stack(iter([]))
    with pytest.raises(ShapeError, match=r"stack.*\(2, 3\).*\(3, 2\)"):
        tt.stack([Tensor(a), Tensor(a.T)])


# -- constructors -----------------------------------------------------------------------


def test_zeros_ones_like():
    assert tt.zeros(2, 3).shape == (2, 3) and tt.zeros((2, 3)).dtype == np.float32
    assert tt.ones([4]).data.tolist() == [1.0] * 4
    assert tt.zeros(2, dtype=np.int64).dtype == np.int64
    assert tt.ones(2, requires_grad=True).requires_grad
    src = Tensor(np.array([[1, 2]], dtype=np.int32))
    assert tt.zeros_like(src).dtype == np.int32 and tt.zeros_like(src).data.tolist() == [[0, 0]]
    assert tt.ones_like(src).data.tolist() == [[1, 1]]


def test_arange():
    np.testing.assert_array_equal(tt.arange(5).data, np.arange(5))
    assert tt.arange(5).dtype == np.int64
    np.testing.assert_array_equal(tt.arange(2, 8, 2).data, [2, 4, 6])
    r = tt.arange(0, 1, 0.25)
    assert r.dtype == np.float32 and r.data.tolist() == [0, 0.25, 0.5, 0.75]
    assert tt.arange(3, dtype=np.float32).dtype == np.float32


def test_random_constructors_and_manual_seed():
    tt.manual_seed(123)
    a, b = tt.randn(1000), tt.rand(2, 500)
    tt.manual_seed(123)
    np.testing.assert_array_equal(tt.randn(1000).data, a.data)
    np.testing.assert_array_equal(tt.rand((2, 500)).data, b.data)
    assert a.dtype == b.dtype == np.float32 and b.shape == (2, 500)
    assert abs(a.data.mean()) < 0.15 and 0.85 < a.data.std() < 1.15
    assert b.data.min() >= 0 and b.data.max() < 1 and 0.45 < b.data.mean() < 0.55
    tt.manual_seed(124)
    assert not np.array_equal(tt.randn(1000).data, a.data)
    assert tt.randn(3, requires_grad=True).requires_grad


def test_rng_state_round_trip():
    tt.manual_seed(5)
    state = tt.get_rng_state()
    first = tt.randn(4).data
    tt.set_rng_state(state)
    np.testing.assert_array_equal(tt.randn(4).data, first)
    with pytest.raises(ValueError, match="non-negative integer"):
        tt.manual_seed(-1)
    with pytest.raises(ValueError, match="non-negative integer"):
        tt.manual_seed(1.5)


# -- repr, copy, autograd without tt-learn ------------------------------------------------


def test_repr():
    assert repr(Tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(Tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(Tensor(np.array([1, 2]))) == "tensor([1, 2], dtype=int64)"
    assert "\n" in repr(tt.zeros(2, 2)) and repr(tt.zeros(2, 2)).startswith("tensor([[0., 0.],")


def test_deepcopy_is_independent():
    t = Tensor([1.0, 2.0], requires_grad=True)
    c = copy.deepcopy(t)
    c.data[0] = 5
    assert t.data[0] == 1 and c.requires_grad


def test_backward_without_tt_learn_says_how_to_install(fresh_plugins, monkeypatch):
    monkeypatch.setenv("TT_DISABLE_PLUGINS", "tt-learn")
    tt.reset_plugins()
    loss = (Tensor([1.0, 2.0], requires_grad=True) * 2).sum()
    with pytest.raises(tt.AutogradUnavailableError, match="tt-learn") as info:
        loss.backward()
    assert "pip install" in str(info.value)

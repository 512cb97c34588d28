"""Property-based tests: Tensor ops against NumPy on random shapes, broadcasts and dtypes, and
``tt_core.load`` on random and damaged bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tt_core as tt
from tt_core import CheckpointError, Tensor, serialization

FAST = settings(max_examples=50, deadline=None)
DTYPES = st.sampled_from([np.float32, np.float64])
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


def values(dtype, low=-10.0, high=10.0):
    """Finite floats of ``dtype`` in [low, high]."""
    return st.floats(low, high, width=np.dtype(dtype).itemsize * 8, allow_nan=False, allow_infinity=False)


@st.composite
def array_pairs(draw, low_b=-10.0, high_b=10.0, away_from_zero=False):
    """Two arrays of one dtype whose shapes broadcast together."""
    dtype = draw(DTYPES)
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
    a = draw(hnp.arrays(dtype, shapes.input_shapes[0], elements=values(dtype)))
    b = draw(hnp.arrays(dtype, shapes.input_shapes[1], elements=values(dtype, low_b, high_b)))
    if away_from_zero:  # divisors: magnitude at least low_b, either sign
        b = b * draw(hnp.arrays(dtype, b.shape, elements=st.sampled_from([-1.0, 1.0])))
    return a, b


def check(out: Tensor, expected: np.ndarray, scale: float = 1.0) -> None:
    """``out`` has NumPy's shape and dtype and its values (``scale`` sets the absolute tolerance)."""
    expected = np.asarray(expected)
    assert isinstance(out, Tensor)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    tol = TOLERANCE[expected.dtype.type]
    np.testing.assert_allclose(out.data, expected, rtol=tol, atol=tol * scale)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
}


@pytest.mark.parametrize("op", sorted(BINARY))
@FAST
@given(pair=array_pairs())
def test_binary_ops_broadcast_like_numpy(op, pair):
    a, b = pair
    fn = BINARY[op]
    check(fn(Tensor(a, dtype=a.dtype), Tensor(b, dtype=b.dtype)), fn(a, b), scale=100)


@FAST
@given(pair=array_pairs(low_b=0.5, high_b=10.0, away_from_zero=True))
def test_div_broadcasts_like_numpy(pair):
    a, b = pair
    check(Tensor(a, dtype=a.dtype) / Tensor(b, dtype=b.dtype), a / b, scale=20)


@st.composite
def matmul_operands(draw):
    dtype = draw(DTYPES)
    shapes = draw(hnp.mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, max_side=4))
    a, b = (draw(hnp.arrays(dtype, shape, elements=values(dtype, -3, 3))) for shape in shapes.input_shapes)
    return a, b


@FAST
@given(pair=matmul_operands())
def test_matmul_broadcasts_like_numpy(pair):
    a, b = pair
    check(Tensor(a, dtype=a.dtype) @ Tensor(b, dtype=b.dtype), a @ b, scale=40)


@st.composite
def reductions(draw):
    """An array, and the ``axis`` and ``keepdims`` of a reduction over it."""
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    x = draw(hnp.arrays(dtype, shape, elements=values(dtype)))
    axis = draw(st.one_of(
        st.none(),
        hnp.valid_tuple_axes(x.ndim),
        st.integers(-x.ndim, x.ndim - 1) if x.ndim else st.none(),
    ))
    return x, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@FAST
@given(case=reductions())
def test_reductions_over_axes_like_numpy(name, case):
    x, axis, keepdims = case
    out = getattr(Tensor(x, dtype=x.dtype), name)(axis=axis, keepdims=keepdims)
    check(out, getattr(np, name)(x, axis=axis, keepdims=keepdims), scale=10 * max(x.size, 1))


@st.composite
def arrays_in(draw, low, high):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5))
    return draw(hnp.arrays(dtype, shape, elements=values(dtype, low, high)))


@FAST
@given(x=arrays_in(-20.0, 20.0))
def test_exp_like_numpy(x):
    check(Tensor(x, dtype=x.dtype).exp(), np.exp(x))


@FAST
@given(x=arrays_in(0.0009765625, 1024.0))  # 2**-10 to 2**10: exact in float32
def test_log_of_positives_like_numpy(x):
    check(Tensor(x, dtype=x.dtype).log(), np.log(x))


# -- loading damaged files ---------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def checkpoint(folder) -> bytes:
    """The bytes of a small but varied checkpoint."""
    tree = {"w": tt.ones(2, 3), "b": np.arange(4, dtype=np.int64), "meta": [1, "two", None, {"x": 2.5, "y": True}]}
    return tt.save(tree, folder / "good.npz").read_bytes()


def load_bytes(path, data: bytes):
    """Load ``data`` from a file: a result, or a CheckpointError (anything else fails the test)."""
    path.write_bytes(data)
    try:
        return tt.load(path)
    except CheckpointError:
        return None


@FAST
@given(data=st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=600).map(lambda b: serialization.ZIP_MAGIC + b),
    st.binary(max_size=600).map(lambda b: serialization.NPY_MAGIC + b),
))
def test_random_bytes_only_ever_raise_checkpoint_error(folder, data):
    path = folder / "random.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        tt.load(path)


def header_positions(data: bytes) -> list[int]:
    """The offsets of the zip archive's headers (local, central directory, end record), where
    a changed byte reaches the most code: versions, flags, compression methods, sizes."""
    positions = []
    for signature in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"):
        start = data.find(signature)
        while start != -1:
            positions += range(start + 4, min(start + 46, len(data)))
            start = data.find(signature, start + 1)
    return positions


@st.composite
def mutations(draw, data: bytes):
    """A list of edits of ``data``: overwrite a byte (anywhere, or in a zip header), insert
    bytes, cut the end."""
    size = len(data)
    anywhere = st.integers(0, size - 1)
    edit = st.one_of(
        st.tuples(st.just("set"), st.one_of(anywhere, st.sampled_from(header_positions(data))), st.integers(0, 255)),
        st.tuples(st.just("insert"), st.integers(0, size), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("cut"), st.integers(0, size - 1), st.none()),
    )
    return draw(st.lists(edit, min_size=1, max_size=4))


def mutate(data: bytes, edits) -> bytes:
    data = bytearray(data)
    for kind, where, what in edits:
        where = min(where, max(len(data) - 1, 0))
        if kind == "set" and data:
            data[where] = what
        elif kind == "insert":
            data[where:where] = what
        elif kind == "cut":
            del data[where:]
    return bytes(data)


@FAST
@given(draw=st.data())
def test_damaged_checkpoints_load_or_raise_checkpoint_error(folder, checkpoint, draw):
    edits = draw.draw(mutations(checkpoint))
    loaded = load_bytes(folder / "damaged.npz", mutate(checkpoint, edits))
    assert loaded is None or isinstance(loaded, (dict, list, str, int, float, bool, Tensor, np.ndarray))

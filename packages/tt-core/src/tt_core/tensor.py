"""``Tensor``: a NumPy array that can remember how it was made.

Every differentiable method runs a named primitive through :func:`tt_core.dispatch.apply`; the
gradient rules and the backward pass come with tt-learn.
"""

from __future__ import annotations

import builtins
from typing import Iterable, Sequence

import numpy as np

from . import dispatch
from .errors import AutogradUnavailableError, ShapeError, TinyTorchError
from .rng import generator

DEFAULT_DTYPE = np.float32


def _to_array(data, dtype=None) -> np.ndarray:
    """``data`` as an array: ``dtype`` if given; else float32 for Python numbers and float64
    arrays, while NumPy integer and boolean arrays and scalars (labels, masks) keep their type."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    array = np.asarray(data)
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    if array.dtype == np.float64 or (not from_numpy and array.dtype.kind in "iu"):
        return array.astype(DEFAULT_DTYPE)
    if array.dtype.kind not in "biuf":
        raise TinyTorchError(f"Tensor needs numeric data, got an array of dtype {array.dtype}")
    return array


def _index_part(key):
    """One index: a Tensor becomes its (integer or boolean) array; the rest is NumPy's."""
    if not isinstance(key, Tensor):
        return key
    if key.dtype.kind not in "biu":
        raise TinyTorchError(
            f"index tensors must be integer or boolean, this one is {key.dtype} (a Tensor made from "
            "Python numbers is float32: use tt.tensor(..., dtype='int64') or tt.arange)"
        )
    return key.data


def _index(key):
    """A ``t[key]`` key with its Tensors replaced by arrays (NumPy does the indexing)."""
    if isinstance(key, tuple):
        return tuple(_index_part(k) for k in key)
    return _index_part(key)


def _same_kind(a: "Tensor", b: "Tensor") -> tuple["Tensor", "Tensor"]:
    """When an integer or boolean tensor meets a floating-point one, cast it to the float's
    dtype, as PyTorch does (NumPy would give float64 for int64 and float32)."""
    a_float, b_float = a.dtype.kind == "f", b.dtype.kind == "f"
    if a_float and not b_float:
        return a, Tensor._make(b.data.astype(a.dtype))
    if b_float and not a_float:
        return Tensor._make(a.data.astype(b.dtype)), b
    return a, b


class Tensor:
    """An n-dimensional array (float32 by default) that can take part in autograd.

    Args:
        data: anything ``numpy.asarray`` accepts, or a Tensor. An array that already has
            the resulting dtype is shared, not copied (as ``torch.from_numpy``).
        requires_grad: record operations on it so that ``backward()`` fills ``.grad``.
        dtype: a NumPy dtype; default float32 for Python numbers and float arrays, NumPy
            integer and boolean arrays keep their type.

    Examples:
        >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> (x @ x.T).sum().item()  # [[5, 11], [11, 25]] summed
        52.0
        >>> x.dtype, Tensor(np.arange(3)).dtype  # Python floats -> float32; int64 arrays stay int64
        (dtype('float32'), dtype('int64'))
    """

    __slots__ = ("data", "requires_grad", "grad", "_node", "__weakref__")
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected method

    def __init__(self, data, requires_grad: bool = False, dtype=None) -> None:
        self.data = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self._node = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array: np.ndarray) -> "Tensor":
        """Wrap an array without copying or converting it (the fast path of every op).
        A NumPy scalar (``np.sum`` of a whole array returns one) becomes a 0-d array."""
        t = object.__new__(Tensor)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.requires_grad, t.grad, t._node = False, None, None
        return t

    # -- properties ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True unless the tensor was made by a recorded operation."""
        return self._node is None

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise TinyTorchError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        """The values as (nested) Python lists."""
        return self.data.tolist()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TinyTorchError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        """Iterate over the first axis; each item is ``self[i]``."""
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """``np.asarray(t)`` (and matplotlib) see ``t.data``; no gradient flows through NumPy."""
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.dtype != DEFAULT_DTYPE:
            extra = f", dtype={self.dtype}" + extra
        return f"tensor({body}{extra})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__  # == is element-wise, identity still hashes

    # -- autograd hooks ------------------------------------------------------------------
    def requires_grad_(self, mode: bool = True) -> "Tensor":
        """Switch gradient tracking on (float tensors only) or off, in place; returns self."""
        if mode and self.data.dtype.kind != "f":
            raise TinyTorchError(f"only floating-point tensors can require gradients, this one is {self.dtype}")
        self.requires_grad = bool(mode)
        return self

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Send gradients back through the recorded graph to every leaf that requires them."""
        engine = dispatch.autograd_engine()
        if engine is None:
            raise AutogradUnavailableError(
                "backward() needs the autograd engine, which comes with tt-learn: "
                "pip install packages/tt-learn (or pip install tt-learn)"
            )
        engine.backward(self, gradient, retain_graph=retain_graph)

    # -- arithmetic ----------------------------------------------------------------------
    def _operand(self, other) -> "Tensor":
        """``other`` as a Tensor; a Python number takes this tensor's dtype where it fits
        (``x * 2`` stays float32, ``labels + 1`` stays int64)."""
        if isinstance(other, Tensor):
            return other
        kind = self.dtype.kind
        if (isinstance(other, float) and kind == "f") or (
            isinstance(other, int) and not isinstance(other, bool) and kind in "fiu"
        ):
            return Tensor._make(np.asarray(other, dtype=self.dtype))
        return Tensor(other)

    def _binary(self, name: str, other, reflected: bool = False) -> "Tensor":
        """Run binary op ``name`` on ``(self, other)``, or ``(other, self)`` when reflected."""
        a, b = _same_kind(self, self._operand(other))
        if reflected:
            a, b = b, a
        if name == "div" and a.dtype.kind != "f":  # true division of integers gives float32
            a, b = Tensor._make(a.data.astype(DEFAULT_DTYPE)), Tensor._make(b.data.astype(DEFAULT_DTYPE))
        return dispatch.apply(name, a, b)

    def __add__(self, other):
        return self._binary("add", other)

    def __radd__(self, other):
        return self._binary("add", other, reflected=True)

    def __sub__(self, other):
        return self._binary("sub", other)

    def __rsub__(self, other):
        return self._binary("sub", other, reflected=True)

    def __mul__(self, other):
        return self._binary("mul", other)

    def __rmul__(self, other):
        return self._binary("mul", other, reflected=True)

    def __truediv__(self, other):
        return self._binary("div", other)

    def __rtruediv__(self, other):
        return self._binary("div", other, reflected=True)

    def __pow__(self, other):
        return self._binary("pow", other)

    def __rpow__(self, other):
        return self._binary("pow", other, reflected=True)

    def __neg__(self):
        return dispatch.apply("neg", self)

    def __matmul__(self, other):
        return self._binary("matmul", other)

    def __rmatmul__(self, other):
        return self._binary("matmul", other, reflected=True)

    # -- comparisons (no gradient; boolean tensors) --------------------------------------
    def _compare(self, other, fn) -> "Tensor":
        return Tensor._make(fn(self.data, other.data if isinstance(other, Tensor) else other))

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(other, np.not_equal)

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    # -- indexing and shape --------------------------------------------------------------
    def __getitem__(self, key):
        return dispatch.apply("getitem", self, index=_index(key))

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return dispatch.apply("reshape", self, shape=shape)

    def view(self, *shape) -> "Tensor":
        """The same as :meth:`reshape` (PyTorch's name)."""
        return self.reshape(*shape)

    def flatten(self, start_axis: int = 0) -> "Tensor":
        """Merge the axes from ``start_axis`` on into one."""
        start = start_axis % builtins.max(self.ndim, 1)
        return self.reshape(self.shape[:start] + (-1,))

    def unsqueeze(self, axis: int) -> "Tensor":
        """Insert an axis of size 1 at ``axis``."""
        return self.reshape(np.expand_dims(self.data, axis).shape)

    def squeeze(self, axis=None) -> "Tensor":
        """Drop axes of size 1 (all of them, or the given ``axis``, which must have size 1)."""
        try:
            shape = np.squeeze(self.data, axis).shape
        except ValueError:
            raise ShapeError(f"squeeze: axis {axis} of a tensor of shape {self.shape} does not have size 1") from None
        return self.reshape(shape)

    def permute(self, *axes) -> "Tensor":
        """Reorder the axes: output axis ``i`` is input axis ``axes[i]`` (negative axes count
        from the end)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        order = tuple(a + self.ndim if a < 0 else a for a in axes)
        if sorted(order) != list(range(self.ndim)):
            raise TinyTorchError(f"permute{axes} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return dispatch.apply("transpose", self, axes=order)

    def transpose(self, axis0: int = -2, axis1: int = -1) -> "Tensor":
        """Swap two axes (PyTorch's ``transpose(dim0, dim1)``)."""
        axes = list(range(self.ndim))
        try:
            axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
        except IndexError:
            raise ShapeError(f"transpose({axis0}, {axis1}): a tensor of shape {self.shape} has no such axes") from None
        return dispatch.apply("transpose", self, axes=tuple(axes))

    @property
    def T(self) -> "Tensor":
        """All axes reversed (the matrix transpose for 2-D tensors)."""
        return dispatch.apply("transpose", self, axes=tuple(reversed(range(self.ndim))))

    def astype(self, dtype) -> "Tensor":
        """A copy converted to ``dtype`` (gradients flow back through float casts)."""
        return dispatch.apply("cast", self, dtype=np.dtype(dtype))

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    # -- reductions ----------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        return dispatch.apply("sum", self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        return dispatch.apply("mean", self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        return dispatch.apply("max", self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False) -> "Tensor":
        return dispatch.apply("min", self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Index of the largest value (int64; no gradient)."""
        return Tensor._make(np.argmax(self.data, axis=axis, keepdims=keepdims))

    def argmin(self, axis=None, keepdims: bool = False) -> "Tensor":
        return Tensor._make(np.argmin(self.data, axis=axis, keepdims=keepdims))

    def var(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Biased variance, composed from mean (so it needs no gradient rule of its own)."""
        centred = self - self.mean(axis=axis, keepdims=True)
        return (centred * centred).mean(axis=axis, keepdims=keepdims)

    # -- element-wise functions ----------------------------------------------------------
    def exp(self) -> "Tensor":
        return dispatch.apply("exp", self)

    def log(self) -> "Tensor":
        return dispatch.apply("log", self)

    def sqrt(self) -> "Tensor":
        return dispatch.apply("sqrt", self)

    def abs(self) -> "Tensor":
        return dispatch.apply("abs", self)

    def clip(self, low=None, high=None) -> "Tensor":
        if low is None and high is None:
            raise TinyTorchError("clip() needs low, high or both")
        return dispatch.apply("clip", self, low=low, high=high)

    def relu(self) -> "Tensor":
        return dispatch.apply("relu", self)

    def sigmoid(self) -> "Tensor":
        return dispatch.apply("sigmoid", self)

    def tanh(self) -> "Tensor":
        return dispatch.apply("tanh", self)

    def softmax(self, axis: int = -1) -> "Tensor":
        return dispatch.apply("softmax", self, axis=axis)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        return dispatch.apply("log_softmax", self, axis=axis)


# ----------------------------------------------------------------------------------------
# Functions and constructors
# ----------------------------------------------------------------------------------------


def _shape(shape: Sequence) -> tuple[int, ...]:
    """``zeros(2, 3)`` and ``zeros((2, 3))`` both mean shape (2, 3)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """``Tensor(data, requires_grad, dtype)`` (PyTorch's spelling).

    Examples:
        >>> tensor([1, 2, 3])  # Python numbers become float32
        tensor([1., 2., 3.])
        >>> tensor([1, 2], dtype="int64")
        tensor([1, 2], dtype=int64)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, requires_grad: bool = False, dtype=DEFAULT_DTYPE) -> Tensor:
    """A tensor of zeros; the shape is given as ``zeros(2, 3)`` or ``zeros((2, 3))``.

    Examples:
        >>> zeros(2, 3).shape == zeros((2, 3)).shape == (2, 3)
        True
    """
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, requires_grad: bool = False, dtype=DEFAULT_DTYPE) -> Tensor:
    """A tensor of ones, shaped like :func:`zeros`."""
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor) -> Tensor:
    """Zeros of ``t``'s shape and dtype."""
    return Tensor(np.zeros_like(t.data))


def ones_like(t: Tensor) -> Tensor:
    """Ones of ``t``'s shape and dtype."""
    return Tensor(np.ones_like(t.data))


def randn(*shape, requires_grad: bool = False, dtype=DEFAULT_DTYPE) -> Tensor:
    """Standard normal samples from the global generator (see :func:`manual_seed`).

    Examples:
        >>> from tt_core import manual_seed
        >>> _ = manual_seed(0); a = randn(3)
        >>> _ = manual_seed(0); bool((randn(3) == a).data.all())  # the same seed, the same draws
        True
    """
    return Tensor(generator().standard_normal(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def rand(*shape, requires_grad: bool = False, dtype=DEFAULT_DTYPE) -> Tensor:
    """Uniform samples in [0, 1) from the global generator."""
    return Tensor(generator().random(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """Evenly spaced values in [start, stop), like ``np.arange``: int64 for integer
    arguments (usable as indices), float32 otherwise.

    Examples:
        >>> arange(4)
        tensor([0, 1, 2, 3], dtype=int64)
        >>> arange(0.0, 1.0, 0.25)
        tensor([0.  , 0.25, 0.5 , 0.75])
    """
    return Tensor(np.arange(start, stop, step), dtype=dtype)


def concatenate(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (their other axes must agree).

    Examples:
        >>> concatenate([ones(2), zeros(1)])
        tensor([1., 1., 0.])
    """
    tensors = tuple(tensors)
    if not tensors:
        raise TinyTorchError("concatenate() needs at least one tensor")
    return dispatch.apply("concatenate", *tensors, axis=axis)


def stack(tensors: Iterable[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis.

    Examples:
        >>> stack([ones(2), zeros(2)]).shape
        (2, 2)
    """
    tensors = tuple(tensors)
    if not tensors:
        raise TinyTorchError("stack() needs at least one tensor")
    return dispatch.apply("stack", *tensors, axis=axis)


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` holds, else ``b`` (gradients flow to ``a`` and ``b``).

    Examples:
        >>> x = tensor([1.0, -1.0, 2.0])
        >>> where(x > 0, x, 0.0)
        tensor([1., 0., 2.])
    """
    if not isinstance(a, Tensor):
        a = b._operand(a) if isinstance(b, Tensor) else Tensor(a)
    a, b = _same_kind(a, a._operand(b))
    return dispatch.apply("where", Tensor(condition, dtype=bool), a, b)


dispatch.Tensor = Tensor  # apply() wraps kernel results in Tensors (dispatch cannot import this module)

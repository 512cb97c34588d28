"""Inference-time acceleration, one transformation at a time, each measured and checked.

- :func:`fold_batchnorms`: in eval mode a BatchNorm2d is a fixed per-channel ``y = a x + c``,
  so it folds into the preceding convolution's weights and bias: one layer less.
- :func:`fuse_linear_activations`: a Linear layer and the activation after it become one
  :class:`FusedLinear` that computes ``act(x @ W^T + b)`` in place on one buffer, instead of
  three dispatched ops and three arrays.
- :func:`make_contiguous` / contiguous inputs: BLAS reads C-contiguous (or Fortran) matrices
  directly; a strided view (every other column, a permuted array) must be copied first.
- :func:`to_dtype`: float64 doubles the bytes moved and halves the SIMD width compared with float32.
- :func:`blas_threads`: how many threads BLAS may use (threadpoolctl).

:func:`compare` times a baseline and an optimised callable on the same input and checks that
their outputs agree within a tolerance, so no speed-up is reported for a wrong answer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import pairwise

import numpy as np
import tt_core
from tt_core import Module, Parameter, Tensor

from .kernels import ACTIVATIONS
from .timing import check_counts, clock_function, measure


class Identity(Module):
    """Returns its input: the placeholder left where a folded or fused layer was."""

    def forward(self, x):
        return x


def _is(module, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(module).__mro__)


def _pairs(model: Module, first: Callable[[Module], bool], second: Callable[[Module], bool]):
    """(parent, name_a, a, name_b, b) for each child ``a`` directly followed by ``b`` in a
    ``Sequential`` (only there is "registered next" the same as "applied next")."""
    for _, parent in model.named_modules():
        if not isinstance(parent, tt_core.Sequential):
            continue
        children = list(parent._modules.items())
        for (name_a, a), (name_b, b) in pairwise(children):
            if first(a) and second(b):
                yield parent, name_a, a, name_b, b


# ----------------------------------------------------------------------------------------
# Conv + BatchNorm folding
# ----------------------------------------------------------------------------------------


def fold_batchnorm(conv: Module, bn: Module) -> Module:
    """A copy of ``conv`` whose output equals ``bn(conv(x))`` in eval mode.

    ``bn(z) = gamma (z - mean) / sqrt(var + eps) + beta``; with ``s = gamma / sqrt(var + eps)``
    that is ``W' = s W`` (per output channel) and ``b' = s (b - mean) + beta``.
    """
    if getattr(bn, "running_mean", None) is None:
        raise tt_core.TinyTorchError("fold_batchnorm needs a BatchNorm2d that tracks running statistics")
    scale = 1.0 / np.sqrt(bn.running_var.data.astype(np.float64) + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.data
    shift = -bn.running_mean.data * scale + (bn.bias.data if bn.bias is not None else 0.0)
    folded = copy.deepcopy(conv)
    folded.weight = Parameter((conv.weight.data * scale.reshape(-1, 1, 1, 1)).astype(np.float32))
    bias = conv.bias.data * scale + shift if conv.bias is not None else shift
    folded.bias = Parameter(bias.astype(np.float32))
    return folded


def _positive_scale(bn: Module) -> bool:
    return bn.weight is None or bool(np.all(bn.weight.data > 0))


def fold_batchnorms(model: Module) -> Module:
    """A copy of ``model`` (eval mode) with each BatchNorm2d folded into the Conv2d before it.

    The BatchNorm may follow the convolution directly, or across a MaxPool2d when every
    channel's scale is positive (then ``max(a x + c) = a max(x) + c``, so the order of the
    two does not matter). Other BatchNorms stay.
    """
    model = copy.deepcopy(model).eval()
    for _, parent in list(model.named_modules()):
        if not isinstance(parent, tt_core.Sequential):
            continue
        children = list(parent._modules.items())
        for index, (bn_name, bn) in enumerate(children):
            if not _is(bn, "BatchNorm2d") or index == 0:
                continue
            conv_index = index - 1
            if _is(children[conv_index][1], "MaxPool2d") and conv_index > 0 and _positive_scale(bn):
                conv_index -= 1
            conv_name, conv = children[conv_index]
            if _is(conv, "Conv2d"):
                setattr(parent, conv_name, fold_batchnorm(conv, bn))
                setattr(parent, bn_name, Identity())
    return model


# ----------------------------------------------------------------------------------------
# Linear + activation fusion
# ----------------------------------------------------------------------------------------


class FusedLinear(Module):
    """``activation(x @ W^T + b)`` as one in-place NumPy computation (inference only).

    The weight is kept as a transposed, C-contiguous copy, (in_features, out_features), so
    ``x @ W`` reads it straight; the bias add and the activation overwrite the matmul's output buffer.
    """

    def __init__(self, linear: Module, activation: str | None) -> None:
        super().__init__()
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got {activation!r}")
        self.activation = activation
        self.in_features, self.out_features = linear.weight.shape[1], linear.weight.shape[0]
        self.register_buffer("weight_t", Tensor(np.array(linear.weight.data.T, order="C")))
        self.register_buffer("bias", None if linear.bias is None else Tensor(linear.bias.data.copy()))

    @property
    def weight(self) -> Tensor:
        return Tensor._make(self.weight_t.data.T)

    def forward(self, x) -> Tensor:
        out = (x.data if isinstance(x, Tensor) else x) @ self.weight_t.data
        if self.bias is not None:
            out += self.bias.data
        if self.activation is not None:
            ACTIVATIONS[self.activation](out)
        return Tensor._make(out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


def _activation_name(module) -> str | None:
    return next((name for name in ACTIVATIONS if _is(module, name)), None)


def fuse_linear_activations(model: Module) -> Module:
    """A copy of ``model`` where each Linear followed by ReLU/GELU/Tanh/Sigmoid is one FusedLinear,
    and every other Linear a FusedLinear without activation."""
    model = copy.deepcopy(model).eval()
    for parent, linear_name, linear, act_name, act in list(
            _pairs(model, lambda m: _is(m, "Linear"), lambda m: _activation_name(m) is not None)):
        setattr(parent, linear_name, FusedLinear(linear, _activation_name(act)))
        setattr(parent, act_name, Identity())
    for _, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if _is(child, "Linear"):
                setattr(parent, name, FusedLinear(child, None))
    return model


# ----------------------------------------------------------------------------------------
# Memory layout, precision, threads
# ----------------------------------------------------------------------------------------


def make_contiguous(model: Module) -> Module:
    """Copy every parameter and buffer of ``model`` that is a strided view into a C-contiguous
    array, in place. Column-major arrays (a ``Linear`` weight) are contiguous already and stay."""
    for tensor in [*model.parameters(), *(b for _, b in model.named_buffers())]:
        if isinstance(tensor, Tensor) and not (tensor.data.flags["C_CONTIGUOUS"] or tensor.data.flags["F_CONTIGUOUS"]):
            tensor.data = np.ascontiguousarray(tensor.data)
    return model


def to_dtype(model: Module, dtype) -> Module:
    """A copy of ``model`` with every floating-point parameter and buffer cast to ``dtype``."""
    model = copy.deepcopy(model)
    for tensor in [*model.parameters(), *(b for _, b in model.named_buffers())]:
        if isinstance(tensor, Tensor) and tensor.data.dtype.kind == "f":
            tensor.data = tensor.data.astype(dtype)
    return model


def threadpoolctl_available() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def blas_threads(count: int | None) -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL, ...) to ``count`` threads inside the block (None: no limit).

    Needs the ``threadpoolctl`` package: BLAS reads ``OPENBLAS_NUM_THREADS`` only when NumPy is
    first imported, so changing threads in a running process needs its run-time API.
    """
    if count is None:
        yield
        return
    if not threadpoolctl_available():
        raise tt_core.TinyTorchError(
            "changing the BLAS thread count at run time needs threadpoolctl (pip install threadpoolctl); "
            "otherwise set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting Python")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=count, user_api="blas"):
        yield


# ----------------------------------------------------------------------------------------
# Measuring one optimisation
# ----------------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One optimisation: time before and after, and whether the outputs still agree."""

    name: str
    baseline_ms: float
    optimized_ms: float
    max_abs_diff: float
    tolerance: float
    note: str = ""
    key: str = ""  # a short identifier for reports, e.g. "fused_linear_mlp"

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.optimized_ms if self.optimized_ms > 0 else float("inf")

    @property
    def equal(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return asdict(self) | {"speedup": self.speedup, "equal": self.equal}


def _array(out) -> np.ndarray:
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)


def compare(name: str, baseline: Callable[[], object], optimized: Callable[[], object], *, tolerance: float = 1e-4,
            warmup: int = 3, repeats: int = 20, note: str = "", key: str = "", clock: str = "cpu") -> Comparison:
    """Run both callables (no arguments) once to compare outputs, then time them in turns.

    The two are timed alternately (baseline, optimised, baseline, ...), so that a burst of
    load from other processes hits both alike; the medians are compared. ``clock="cpu"``
    (process CPU time) is the steadier measure on a shared machine; a comparison of thread
    counts needs ``clock="wall"``. The tolerance is on the largest absolute difference.

    Returns:
        A :class:`Comparison`: the median times of both, their largest output difference.

    Raises:
        TimingError: an unknown ``clock``, or counts that are not whole numbers in range
            (before either callable runs).
    """
    clock_function(clock)
    check_counts(warmup, repeats)
    previous = tt_core.set_grad_enabled(False)
    try:
        difference = float(np.max(np.abs(_array(baseline()) - _array(optimized()))))
        for _ in range(warmup):
            baseline(), optimized()
        rounds = [(measure(baseline, warmup=0, repeats=1, clock=clock).median,
                   measure(optimized, warmup=0, repeats=1, clock=clock).median) for _ in range(repeats)]
    finally:
        tt_core.set_grad_enabled(previous)
    before, after = (1e3 * float(np.median(times)) for times in zip(*rounds))
    return Comparison(name, before, after, difference, tolerance, note, key)

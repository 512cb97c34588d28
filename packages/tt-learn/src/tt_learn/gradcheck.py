"""``gradcheck``: compare the gradients autograd computes with finite differences.

For a function ``fn`` of tensors, the analytic gradient of ``L = sum(fn(*inputs) * w)`` (``w``
fixed random weights, so every output element counts with a different factor) comes from one
``backward``; the numeric one from central differences, one input element at a time:

    dL/dx_i ≈ (L(x_i + eps) - L(x_i - eps)) / (2 eps)

in float64, where that estimate is accurate to about eps² + rounding/eps ≈ 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tt_core.errors import TinyTorchError
from tt_core.tensor import Tensor

from .autograd import no_grad

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(TinyTorchError, AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def _as_input(value) -> Tensor:
    """Floating-point data becomes a float64 leaf that requires grad; integer and boolean data
    (indices, masks) pass through as constants."""
    data = np.asarray(value.data if isinstance(value, Tensor) else value)
    if data.dtype.kind == "f":  # a copy: gradcheck perturbs it in place
        return Tensor(np.array(data, dtype=np.float64), dtype=np.float64, requires_grad=True)
    return Tensor(data, dtype=data.dtype)


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s gradients against central differences in float64.

    Args:
        fn: takes the inputs as Tensors, returns one Tensor.
        inputs: Tensors or arrays; floating ones are checked (converted to float64 copies
            that require grad), integer or boolean ones are passed as constants.
        eps: the finite-difference step.
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        seed: seeds the random output weights (a private generator: the global RNG is untouched).

    Returns:
        True when every gradient matches.

    Raises:
        GradcheckError: naming the first input and element that disagree, with both values.

    Examples:
        >>> gradcheck(lambda x: (x * x).sum(), [np.array([1.0, -2.0])])
        True
    """
    tensors = [_as_input(x) for x in inputs]
    checked = [i for i, t in enumerate(tensors) if t.requires_grad]
    if not checked:
        raise TinyTorchError("gradcheck: no floating-point input to check (all inputs are integer or boolean)")
    out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TinyTorchError(f"gradcheck: fn must return a Tensor, it returned {type(out).__name__}")
    if not out.requires_grad:
        raise TinyTorchError("gradcheck: fn's output does not depend on any checked input (no graph was recorded)")
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(weights)

    def weighted_output() -> float:
        with no_grad():
            return float(np.sum(np.asarray(fn(*tensors).data, dtype=np.float64) * weights))

    for i in checked:
        x = tensors[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.data
        data = x.data  # perturbed in place, element by element, whatever its memory layout
        for index in np.ndindex(x.shape):  # one element at a time: finite differences need it
            original = data[index]
            data[index] = original + eps
            plus = weighted_output()
            data[index] = original - eps
            minus = weighted_output()
            data[index] = original
            numeric = (plus - minus) / (2 * eps)
            value = analytic[index]
            if not abs(value - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradcheck: input {i} (shape {x.shape}), element {index}: "
                    f"analytic gradient {value:.8g} vs numeric {numeric:.8g} "
                    f"(difference {abs(value - numeric):.3g} > atol {atol} + rtol {rtol} * |numeric|)"
                )
    return True

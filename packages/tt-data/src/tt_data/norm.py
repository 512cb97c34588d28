"""Batch normalisation: forward kernel and fused gradient rule.

For each channel ``c``, over every other axis (batch and pixels), training mode computes

    mean_c, var_c (biased)  ->  x_hat = (x - mean_c) / sqrt(var_c + eps)  ->  y = gamma_c x_hat + beta_c

and moves the running statistics towards the batch's (``running = (1 - m) running + m batch``,
with the unbiased variance, as PyTorch). Evaluation mode uses the running statistics instead.

The gradient is one fused rule rather than the chain of ops above: with ``M`` values per
channel and ``g`` the output gradient,

    dbeta = sum(g),   dgamma = sum(g x_hat),   dx = gamma / sqrt(var + eps) * (g - (dbeta + x_hat dgamma) / M)

All of it runs on a ``(values, channels)`` matrix: for channels-last activations (what
:func:`tt_data.spatial.conv2d` writes) that matrix is a free view, and the output keeps the
layout.
"""

from __future__ import annotations

import numpy as np
from tt_core import Op, dispatch
from tt_core.errors import ShapeError, TinyTorchError
from tt_core.ops import leading_sums
from tt_core.tensor import Tensor

__all__ = ["OPS", "batch_norm"]


def _channel_matrix(x: np.ndarray) -> np.ndarray:
    """``(N, C, ...)`` as a ``(values, C)`` matrix: a view for channels-last memory, else a copy."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _from_channel_matrix(matrix: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_channel_matrix`: back to ``like``'s shape (channels-last memory)."""
    return np.moveaxis(matrix.reshape(np.moveaxis(like, 1, -1).shape), -1, 1)


def _column_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b, axis=0)`` for two ``(values, C)`` matrices, without the temporary product."""
    return np.einsum("ij,ij->j", a, b)


def _batch_norm(ctx, x, weight, bias, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
    """Forward kernel of ``batch_norm`` (see :func:`batch_norm`). Training saves the centred
    input ``d = x - mean`` (``x_hat = d / std`` is never stored: ``y = d * (gamma / std) + beta``)."""
    xm = _channel_matrix(x)
    if training:
        count = xm.shape[0]
        if count < 2:
            raise ValueError(f"batch_norm in training mode needs more than one value per channel, input shape {x.shape}")
        mean = leading_sums(xm, 1) / count
        centred = xm - mean
        var = _column_dot(centred, centred) / count
        inv_std = 1 / np.sqrt(var + eps)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += (momentum * count / (count - 1)) * var
        out = centred * (weight * inv_std)
        out += bias
        ctx.centred = centred
    else:
        inv_std = 1 / np.sqrt(running_var + eps)
        scale = weight * inv_std
        out = xm * scale
        out += bias - running_mean * scale
    ctx.inv_std = inv_std.astype(x.dtype, copy=False)
    return _from_channel_matrix(out, x)


def _batch_norm_grad(ctx, grad):
    """Fused gradient rule of ``batch_norm`` (training: through the batch statistics too).

    With ``d`` the centred input and ``s = sum(g d)``: ``dgamma = s / std``, and in training
    ``dx = gamma / std * (g - d s / (M std^2) - dbeta / M)`` (the formula of the module
    docstring with ``x_hat = d / std``)."""
    x, weight, _ = ctx.inputs
    training, inv_std = ctx.attrs.get("training", True), ctx.inv_std
    g = _channel_matrix(grad)
    grad_bias = leading_sums(g, 1)
    centred = ctx.centred if training else None
    if centred is None and ctx.needs[1]:
        centred = _channel_matrix(x) - ctx.attrs["running_mean"]
    dot = _column_dot(g, centred) if centred is not None else None
    grad_x = None
    if ctx.needs[0]:
        scale = weight * inv_std
        if training:
            count = g.shape[0]
            gx = centred * (-dot * inv_std * inv_std / count)
            gx += g
            gx -= grad_bias / count
            gx *= scale
        else:
            gx = g * scale
        grad_x = _from_channel_matrix(gx, x)
    return (
        grad_x,
        dot * inv_std if ctx.needs[1] else None,
        grad_bias if ctx.needs[2] else None,
    )


def _as_array(value) -> np.ndarray | None:
    return value.data if isinstance(value, Tensor) else value


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) of ``x``; PyTorch's ``F.batch_norm``.

    Args:
        x: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
        running_mean, running_var: ``(C,)`` statistics; in training they are updated in place
            (when given); in evaluation they are used. None means none are kept (then
            ``training`` must be True).
        weight, bias: ``(C,)`` affine parameters (gamma, beta); None means 1 and 0.
        training: use the batch's statistics (True) or the running ones (False).
        momentum: how far the running statistics move towards each batch's.
        eps: added to the variance before the square root.

    Raises:
        ShapeError: ``x`` has no channel axis, or a statistic or parameter is not ``(C,)``.

    Examples:
        >>> import tt_core as tt
        >>> x = tt.tensor([[1.0], [3.0]])  # two samples, one channel
        >>> mean, var = tt.zeros(1), tt.ones(1)
        >>> batch_norm(x, mean, var, training=True).data.round(3).ravel().tolist()
        [-1.0, 1.0]
        >>> round(mean.item(), 4), round(var.item(), 4)  # 10% of the way to the batch's mean 2 and variance 2
        (0.2, 1.1)
    """
    if x.ndim < 2:
        raise ShapeError(f"batch_norm needs an input with a channel axis (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != (channels,):
            raise ShapeError(
                f"batch_norm: input shape {x.shape} has {channels} channels but {name} has shape {tuple(value.shape)}"
            )
    if (running_mean is None) != (running_var is None):
        raise TinyTorchError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise TinyTorchError("batch_norm in evaluation mode needs running_mean and running_var")
    if not 0 <= momentum <= 1 or eps <= 0:
        raise ValueError(f"batch_norm needs 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
    weight = weight if weight is not None else Tensor._make(np.ones(channels, dtype=x.dtype))
    bias = bias if bias is not None else Tensor._make(np.zeros(channels, dtype=x.dtype))
    return dispatch.apply(
        "batch_norm", x, weight, bias,
        running_mean=_as_array(running_mean), running_var=_as_array(running_var),
        training=bool(training), momentum=float(momentum), eps=float(eps),
    )


OPS = {"batch_norm": Op(_batch_norm, _batch_norm_grad, saves=("x_hat", "inv_std"))}

"""Spatial layers with PyTorch's names, arguments and initialisation: ``Conv2d``,
``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``BatchNorm2d`` and ``Flatten``.

Inputs and outputs are NCHW, ``(batch, channels, height, width)``.

Examples:
    >>> import tt_core as tt
    >>> net = tt.Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), tt.ReLU(), MaxPool2d(2), Flatten())
    >>> net(tt.randn(2, 1, 8, 8)).shape
    (2, 64)
"""

from __future__ import annotations

import math

import numpy as np
from tt_core.errors import ShapeError
from tt_core.module import Module, Parameter
from tt_core.rng import generator
from tt_core.tensor import Tensor

from .norm import batch_norm
from .spatial import _pair, adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Conv2d", "Flatten", "MaxPool2d"]


class Conv2d(Module):
    """2-D convolution over a batch of images.

    Args:
        in_channels, out_channels: channels of the input and of the output.
        kernel_size: an int or ``(kh, kw)``.
        stride, padding, dilation: an int or an ``(h, w)`` pair; padding adds zeros.
        groups: split the channels into independent convolutions (``in_channels`` and
            ``out_channels`` must both divide by it).
        bias: learn an additive bias per output channel (default True).

    Shape:
        ``(N, in_channels, H, W)`` -> ``(N, out_channels, H_out, W_out)``,
        ``H_out = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1``.

    The weight ``(out_channels, in_channels / groups, kh, kw)`` and the bias are initialised
    as in PyTorch: uniform in ``±1/sqrt(fan_in)``, ``fan_in = in_channels / groups * kh * kw``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        if min(in_channels, out_channels, groups) <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d needs positive channels divisible by groups, got in_channels={in_channels}, "
                f"out_channels={out_channels}, groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = _pair(padding, "padding", 0)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype=np.float32))
        self.bias = Parameter(np.empty(out_channels, dtype=np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.weight.data[0].size
        bound = 1 / math.sqrt(fan_in)
        self.weight.data = generator().uniform(-bound, bound, self.weight.shape).astype(np.float32)
        if self.bias is not None:
            self.bias.data = generator().uniform(-bound, bound, self.bias.shape).astype(np.float32)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class MaxPool2d(Module):
    """The maximum of each window. ``stride`` defaults to ``kernel_size``.

    Shape: ``(N, C, H, W)`` -> ``(N, C, H_out, W_out)``, sizes as in :class:`Conv2d`.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AvgPool2d(Module):
    """The mean of each window (zero padding counts). ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed ``output_size``: 1 (global average pooling) or a size that
    divides the input's height and width."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = _pair(output_size, "output_size")

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class BatchNorm2d(Module):
    """Batch normalisation of each channel of ``(N, C, H, W)`` images.

    Args:
        num_features: the number of channels ``C``.
        eps: added to the variance for stability.
        momentum: how far the running statistics move towards each training batch's.
        affine: learn a per-channel scale (``weight``, init 1) and shift (``bias``, init 0).
        track_running_stats: keep ``running_mean`` / ``running_var`` buffers (saved in the
            state dict) and use them in ``eval()``; otherwise always use the batch's.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"BatchNorm2d needs num_features > 0, got {num_features}")
        if not 0 <= momentum <= 1 or eps <= 0:
            raise ValueError(f"BatchNorm2d needs 0 <= momentum <= 1 and eps > 0, got momentum={momentum}, eps={eps}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))
        else:
            self.running_mean = self.running_var = None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"BatchNorm2d({self.num_features}) needs input (N, {self.num_features}, H, W), got shape {x.shape}"
            )
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          use_batch_stats, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class Flatten(Module):
    """Merge the axes ``start_axis..end_axis`` into one (by default all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x: Tensor) -> Tensor:
        start, end = self.start_axis % x.ndim, self.end_axis % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"

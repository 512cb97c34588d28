"""Convolution and pooling: forward kernels and gradient rules, side by side.

The ops (:data:`OPS`, registered under kind ``op``, each kernel with its rule) take and return NCHW-shaped arrays,
``(batch, channels, height, width)``, as PyTorch does. How the numbers lie in memory is a
separate matter, chosen for speed:

* A convolution writes its output **channels-last** (NHWC memory, seen through an NCHW
  view). Then the im2col copies of the next convolution move runs of ``C`` contiguous floats,
  and element-wise ops, batch norm and pooling keep that layout (NumPy's ufuncs follow the
  memory order of their inputs).
* An input in the ordinary NCHW memory (images from a data loader) is read the other way:
  its im2col matrix is built **channels-first**, ``(kernel offsets x channels, pixels)``, where
  every copy moves whole image rows; BLAS multiplies the transposed matrix just as fast.

**The idea first.** :func:`conv2d_reference` is the convolution written plainly: every
window of the padded input (a sliding-window view) times the weights, summed over channels
and kernel positions in one ``einsum``. It computes the same values as the fast kernel (the
tests hold them equal) and is the place to start reading. Everything below it — im2col into
reused scratch buffers, the two memory layouts, col2im — is how the same numbers are made
fast, and can be skipped on first reading.

**im2col.** A convolution is one matrix product: each output pixel's receptive field, laid
out as a row of ``kh * kw * C`` numbers, times the weights reshaped to ``(kh * kw * C, out)``.
The matrix of receptive fields is filled with one slice copy per kernel offset (9 for 3x3) —
never a loop over pixels, channels or samples — into a buffer reused from call to call
(:mod:`tt_data._scratch`). Zero padding costs nothing: each offset copies only the output
pixels whose input lies inside the image, and the rest of the buffer stays zero. The matrix
is built for a few images at a time (:data:`CHUNK_BYTES`) and multiplied while it is still
in the cache: the whole matrix is nine times the input, tens of megabytes.

**Gradients.** With ``cols`` the im2col matrix and ``g`` the output gradient as ``(pixels,
out)``: ``dW = cols.T @ g``, built again chunk by chunk rather than kept from the forward
pass; the bias gradient is ``g`` summed over pixels. At stride 1 the input gradient ``dx`` is
itself a convolution, of ``g`` by the weights turned 180 degrees with input and output
channels swapped, and goes through the same kernel. At larger strides ``dcols = g @ W.T`` is
summed back onto the image with the slices of the im2col copies (col2im). Groups split the
channels into independent convolutions, one batched matmul.

**Winograd.** 3x3 convolutions with stride 1 and padding 1 of many channels (the body of a
CNN) take another route with fewer multiplications: Winograd's F(2x2, 3x3) transforms, then
16 batched matmuls (:func:`_winograd_conv`, the maths in its docstring).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from tt_core import Op, dispatch
from tt_core.errors import ShapeError
from tt_core.tensor import Tensor

from ._scratch import SCRATCH

__all__ = [
    "OPS", "adaptive_avg_pool2d", "avg_pool2d", "conv2d", "conv2d_reference", "max_pool2d", "sliding_windows",
]


# ----------------------------------------------------------------------------------------
# Geometry shared by convolution and pooling
# ----------------------------------------------------------------------------------------


def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as ``(height, width)``, each at least ``minimum``."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Offset(NamedTuple):
    """One kernel offset ``(i, j)``: the output pixels whose input at that offset lies inside
    the image (``out_rows, out_cols``) and those input pixels (``in_rows, in_cols``)."""

    i: int
    j: int
    out_rows: slice
    out_cols: slice
    in_rows: slice
    in_cols: slice


def _valid_range(size: int, out_size: int, offset: int, stride: int, padding: int) -> tuple[slice, slice] | None:
    """Along one axis: output positions ``o`` with ``0 <= o*stride + offset - padding < size``."""
    start = max(0, -(-(padding - offset) // stride))  # ceil division
    stop = min(out_size, (size - 1 + padding - offset) // stride + 1)
    if stop <= start:
        return None
    first = start * stride + offset - padding
    return slice(start, stop), slice(first, first + (stop - start - 1) * stride + 1, stride)


@functools.lru_cache(maxsize=512)
def _axis_steps(size: int, out_size: int, kernel: int, stride: int, padding: int, dilation: int):
    """The kernel positions along one axis that touch the input: ``(position, out_slice,
    in_slice)`` for each (the output positions it reaches and the input positions they read)."""
    steps = []
    for j in range(kernel):
        valid = _valid_range(size, out_size, j * dilation, stride, padding)
        if valid is not None:
            steps.append((j, *valid))
    return tuple(steps)


def _geometry(op: str, x_shape, kernel, stride, padding, dilation):
    """Output size ``(H_out, W_out)`` of a sliding window (arguments are pairs), and its steps
    along height and along width; an error when the output would be empty."""
    size = x_shape[2:]
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    if min(out) <= 0:
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        raise ShapeError(
            f"{op}: input of shape {tuple(x_shape)} is too small: its padded size "
            f"{tuple(n + 2 * p for n, p in zip(size, padding))} is less than the kernel's span {span}"
        )
    steps = tuple(_axis_steps(*args) for args in zip(size, out, kernel, stride, padding, dilation))
    return out, steps


def _offsets(steps) -> list[Offset]:
    """The 2-D kernel offsets: every pair of a step along height and a step along width."""
    return [Offset(i, j, out_rows, out_cols, in_rows, in_cols)
            for i, out_rows, in_rows in steps[0] for j, out_cols, in_cols in steps[1]]


def _channels_last(x: np.ndarray) -> bool:
    """True when an NCHW-shaped array lies in NHWC memory."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous


def _empty_like_layout(like: np.ndarray, shape: tuple[int, ...], dtype=None, zero: bool = False) -> np.ndarray:
    """A new NCHW-shaped array laid out in memory like ``like`` (channels-last or not)."""
    make = np.zeros if zero else np.empty
    dtype = like.dtype if dtype is None else dtype
    if _channels_last(like):
        n, c, h, w = shape
        return make((n, h, w, c), dtype=dtype).transpose(0, 3, 1, 2)
    return make(shape, dtype=dtype)


# ----------------------------------------------------------------------------------------
# conv2d, plainly: the reference to read first
# ----------------------------------------------------------------------------------------


def sliding_windows(x, kernel_size, stride=1, padding=0, dilation=1, fill: float = 0.0) -> np.ndarray:
    """Every window a sliding kernel sees in a batch of images, as one array.

    Args:
        x: an ``(N, C, H, W)`` array (or Tensor).
        kernel_size, stride, padding, dilation: an int or an ``(h, w)`` pair, as for :func:`conv2d`.
        fill: the value of the padding border (0 for convolution, ``-inf`` for max pooling).

    Returns:
        A read-only ``(N, C, H_out, W_out, kh, kw)`` view of a padded copy of ``x``:
        ``windows[n, c, y, x]`` is the ``kh x kw`` patch that output pixel ``(y, x)`` reads.

    Examples:
        >>> sliding_windows(np.arange(16.0).reshape(1, 1, 4, 4), 2, stride=2)[0, 0, 1, 0]
        array([[ 8.,  9.],
               [12., 13.]])
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ShapeError(f"sliding_windows needs a 4-D input (N, C, H, W), got shape {x.shape}")
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    (ph, pw), (dh, dw) = _pair(padding, "padding", 0), _pair(dilation, "dilation")
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    span = np.lib.stride_tricks.sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return span[:, :, ::sh, ::sw, ::dh, ::dw]


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """The convolution of :func:`conv2d`, written plainly on arrays and computed in float64::

        out[n, o, y, x] = bias[o] + sum over c, i, j of
                          weight[o, c, i, j] * padded[n, g * C/groups + c, y*s + i*d, x*s + j*d]

    where ``g`` is the group of output channel ``o``. No gradient, no speed: this is the
    definition that the fast kernel (im2col, below) must agree with.

    Args:
        x: ``(N, C, H, W)``; weight: ``(out_channels, C / groups, kh, kw)``; bias:
            ``(out_channels,)`` or None (arrays or Tensors).
        stride, padding, dilation, groups: as for :func:`conv2d`.

    Returns:
        A float64 array ``(N, out_channels, H_out, W_out)``.

    Examples:
        >>> x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((1, 1, 2, 2))
        >>> conv2d_reference(x, w, stride=2)[0, 0]  # the sum of each 2x2 block
        array([[10., 18.],
               [42., 50.]])
    """
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    out_channels, cg, kh, kw = weight.shape
    windows = sliding_windows(x, (kh, kw), stride, padding, dilation)  # (N, C, H_out, W_out, kh, kw)
    n, c, out_h, out_w = windows.shape[:4]
    if c != cg * groups or out_channels % groups:
        raise ShapeError(f"conv2d_reference: input shape {x.shape} does not fit weight shape {weight.shape} "
                         f"with groups={groups}")
    windows = windows.reshape(n, groups, cg, out_h, out_w, kh, kw)
    per_group = weight.reshape(groups, out_channels // groups, cg, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", windows, per_group).reshape(n, out_channels, out_h, out_w)
    return out if bias is None else out + np.asarray(bias, dtype=np.float64).reshape(-1, 1, 1)


# ----------------------------------------------------------------------------------------
# conv2d, fast: im2col with reused buffers (may be skipped on first reading)
# ----------------------------------------------------------------------------------------


CHUNK_BYTES = 1 << 21
"""How much of a convolution's im2col matrix (or of its gradient) exists at a time: a few
images' rows, about what a core's caches hold. Each chunk is multiplied while it is still in
the cache, instead of writing tens of megabytes to memory and reading them back; the gradient
rule builds the chunks again rather than keeping them."""


class ConvPlan(NamedTuple):
    """How :func:`_conv2d` lays out one convolution's im2col matrix (kept for the gradient).

    ``dims`` is ``(n, out_h, out_w, groups, kh, kw, cg)``; ``channels_last`` the input's
    memory layout; ``offsets`` the kernel offsets; ``key`` everything that decides which
    entries of a chunk the copies write (the others are the zero padding, left untouched in
    a reused buffer)."""

    dims: tuple[int, ...]
    channels_last: bool
    offsets: tuple[Offset, ...]
    key: tuple

    @property
    def rows_per_image(self) -> int:
        return self.dims[1] * self.dims[2]

    def chunks(self, itemsize: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of each chunk of images of the im2col matrix, in order: as many
        images as fit in :data:`CHUNK_BYTES`, at least one."""
        n = self.dims[0]
        images = max(1, min(n, CHUNK_BYTES // (math.prod(self.dims[1:]) * itemsize)))
        return [(start, min(n, start + images)) for start in range(0, n, images)]


def _plan(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> ConvPlan:
    n = x.shape[0]
    out_channels, cg, kh, kw = weight.shape
    (out_h, out_w), steps = _geometry("conv2d", x.shape, (kh, kw), stride, padding, dilation)
    channels_last = _channels_last(x)
    key = (channels_last, x.shape[1:], weight.shape, stride, padding, dilation, groups, x.dtype.str)
    return ConvPlan((n, out_h, out_w, groups, kh, kw, cg), channels_last, tuple(_offsets(steps)), key)


def _weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(out, in/groups, kh, kw)`` -> ``(groups, kh*kw*in/groups, out/groups)``, rows ordered
    (kernel row, kernel column, channel) like the columns of the im2col matrix."""
    out, cg, kh, kw = weight.shape
    per_group = weight.reshape(groups, out // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    return per_group.reshape(groups, kh * kw * cg, out // groups)


def _column_views(buffer: np.ndarray, channels_last: bool, dims):
    """The im2col buffer seen two ways: as ``(groups, pixels, kh*kw*cg)`` matrices (for the
    matmuls) and as ``(n, out_h, out_w, groups, kh, kw, cg)`` (for the slice copies).

    Channels-last memory is ``(groups, pixels, kh*kw*cg)``; channels-first memory is
    ``(groups, kh*kw*cg, pixels)``, read through a transposed view.
    """
    n, out_h, out_w, g, kh, kw, cg = dims
    if channels_last:
        matrix = buffer.reshape(g, n * out_h * out_w, kh * kw * cg)
        windows = buffer.reshape(g, n, out_h, out_w, kh, kw, cg).transpose(1, 2, 3, 0, 4, 5, 6)
    else:
        matrix = buffer.reshape(g, kh * kw * cg, n * out_h * out_w).transpose(0, 2, 1)
        windows = buffer.reshape(g, kh, kw, cg, n, out_h, out_w).transpose(4, 5, 6, 0, 1, 2, 3)
    return matrix, windows


def _grouped_pixels(x: np.ndarray, groups: int) -> np.ndarray:
    """An NCHW array as an ``(n, h, w, groups, channels per group)`` view (no copy)."""
    n, c, h, w = x.shape
    return x.transpose(0, 2, 3, 1).reshape(n, h, w, groups, c // groups)


def _im2col_chunks(x: np.ndarray, plan: ConvPlan):
    """Yield ``(start, stop, cols)``: the im2col matrix of images ``start:stop`` as
    ``(groups, pixels, kh*kw*cg)``, one chunk after the other in a reused buffer (each
    ``cols`` is valid until the next is asked for)."""
    pixels = _grouped_pixels(x, plan.dims[3])
    for start, stop in plan.chunks(x.dtype.itemsize):
        dims = (stop - start, *plan.dims[1:])
        key = ("cols", plan.key, dims[0])
        buffer = SCRATCH.take(key, (math.prod(dims),), x.dtype)
        cols, windows = _column_views(buffer, plan.channels_last, dims)
        chunk = pixels[start:stop]
        for o in plan.offsets:  # one slice copy per kernel offset
            windows[:, o.out_rows, o.out_cols, :, o.i, o.j, :] = chunk[:, o.in_rows, o.in_cols]
        yield start, stop, cols
        SCRATCH.give(key, buffer)


def _conv2d(ctx, x, weight, *bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """Forward kernel of ``conv2d`` (see :func:`conv2d` for the arguments): the values of
    :func:`conv2d_reference`, made fast by :func:`_convolve`."""
    out, ctx.plan, ctx.wmat, ctx.tiles = _convolve(x, weight, stride, padding, dilation, groups)
    if bias:
        out += bias[0][:, None, None]
    return out


def _convolve(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> tuple:
    """The convolution of ``x`` by ``weight`` (no bias), written channels-last, and what its
    gradient needs: ``(out, plan, wmat, tiles)``. The 3x3 convolutions that Winograd's
    transforms suit go through :func:`_winograd_conv` (``plan`` and ``wmat`` are None, ``tiles``
    its input tiles); the others through im2col a few images at a time (``tiles`` is None)."""
    if _winograd_applies(x, weight, stride, padding, dilation, groups):
        out, tiles = _winograd_conv(x, weight)
        return out, None, None, tiles
    plan = _plan(x, weight, stride, padding, dilation, groups)
    wmat = _weight_matrix(weight, groups)
    n, out_h, out_w = plan.dims[:3]
    out_channels = weight.shape[0]
    rows = plan.rows_per_image
    out = np.empty((groups, n * rows, out_channels // groups), x.dtype)
    for start, stop, cols in _im2col_chunks(x, plan):
        np.matmul(cols, wmat, out=out[:, start * rows: stop * rows])
    out = out[0] if groups == 1 else out.transpose(1, 0, 2).reshape(-1, out_channels)
    return out.reshape(n, out_h, out_w, out_channels).transpose(0, 3, 1, 2), plan, wmat, None


def _transposed_padding(weight: np.ndarray, stride, padding, dilation) -> tuple[int, int] | None:
    """The padding of the stride-1 convolution that maps a ``conv2d``'s output gradient to
    its input gradient, ``d (k - 1) - p`` per axis; None when there is none (strides above
    1, or padding wider than the kernel's span)."""
    back = tuple(d * (k - 1) - p for k, p, d in zip(weight.shape[2:], padding, dilation))
    return back if stride == (1, 1) and min(back) >= 0 else None


def _transposed_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """The weight of that convolution: input and output channels swapped within each group,
    each kernel turned by 180 degrees, ``(in, out / groups, kh, kw)``."""
    out, cg, kh, kw = weight.shape
    per_group = weight.reshape(groups, out // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(per_group.reshape(groups * cg, out // groups, kh, kw)[:, :, ::-1, ::-1])


def _conv2d_grad(ctx, grad):
    """Gradient rule of ``conv2d``: input, weight and bias gradients.

    At stride 1 the input gradient is itself a convolution, of the output gradient by the
    transposed weight (:func:`_transposed_weight`), and goes through the forward kernel. At
    larger strides it is col2im: each chunk's ``g @ W.T`` summed back onto the image
    (:func:`_col2im`) while it is in the cache. The weight gradient builds the im2col matrix
    again, chunk by chunk as in the forward kernel, and sums ``cols.T @ g`` over the chunks
    (Winograd's route takes it in the transform domain, :func:`_winograd_weight_grad`)."""
    x, weight = ctx.inputs[0], ctx.inputs[1]
    stride, padding, dilation, groups = (ctx.attrs[k] for k in ("stride", "padding", "dilation", "groups"))
    grad_b = grad.sum(axis=(0, 2, 3)) if len(ctx.inputs) == 3 and ctx.needs[2] else None
    grad_x = None
    back_padding = _transposed_padding(weight, stride, padding, dilation)
    if ctx.needs[0] and back_padding is not None:
        grad_x = _convolve(grad, _transposed_weight(weight, groups), (1, 1), back_padding, dilation, groups)[0]
    col2im = ctx.needs[0] and grad_x is None
    if ctx.tiles is not None or not (ctx.needs[1] or col2im):  # Winograd, or no im2col pass left to make
        grad_w = _winograd_weight_grad(weight, ctx.tiles, grad) if ctx.needs[1] else None
        return (grad_x, grad_w) if len(ctx.inputs) == 2 else (grad_x, grad_w, grad_b)
    plan, out_channels = ctx.plan, weight.shape[0]
    kh, kw, cg = plan.dims[4:]
    rows = plan.rows_per_image
    g = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(-1, out_channels)  # (pixels, out)
    g_groups = g.reshape(-1, groups, out_channels // groups).transpose(1, 0, 2)
    if col2im:
        grad_x = _empty_like_layout(x, x.shape, zero=True)
    grad_wmat = np.zeros_like(ctx.wmat) if ctx.needs[1] else None
    if ctx.needs[1]:
        chunks = _im2col_chunks(x, plan)
    else:  # no weight gradient: the chunks' bounds only, no im2col copies
        chunks = ((start, stop, None) for start, stop in plan.chunks(x.dtype.itemsize))
    for start, stop, cols in chunks:
        g_chunk = g_groups[:, start * rows: stop * rows]
        if cols is not None:
            grad_wmat += np.matmul(cols.transpose(0, 2, 1), g_chunk)  # (groups, kh*kw*cg, out/groups)
        if col2im:
            _col2im(plan, ctx.wmat, g_chunk, grad_x[start:stop])
    grad_w = None
    if grad_wmat is not None:
        grad_w = grad_wmat.reshape(groups, kh, kw, cg, -1).transpose(0, 4, 3, 1, 2).reshape(weight.shape)
    return (grad_x, grad_w) if len(ctx.inputs) == 2 else (grad_x, grad_w, grad_b)


def _col2im(plan: ConvPlan, wmat: np.ndarray, g_chunk: np.ndarray, grad_x: np.ndarray) -> None:
    """Add to ``grad_x`` (some images' input gradient) the gradient of their im2col rows,
    ``g @ W.T``, summed back onto the image with the slices of the im2col copies."""
    dims = (grad_x.shape[0], *plan.dims[1:])
    key = ("grad_cols", plan.channels_last, dims, grad_x.dtype.str)
    buffer = SCRATCH.take(key, (math.prod(dims),), grad_x.dtype)
    grad_cols, windows = _column_views(buffer, plan.channels_last, dims)
    if plan.channels_last:
        np.matmul(g_chunk, wmat.transpose(0, 2, 1), out=grad_cols)
    else:  # channels-first memory: write the transposed product, which is contiguous there
        np.matmul(wmat, g_chunk.transpose(0, 2, 1), out=grad_cols.transpose(0, 2, 1))
    pixels = _grouped_pixels(grad_x, plan.dims[3])
    for o in plan.offsets:
        pixels[:, o.in_rows, o.in_cols] += windows[:, o.out_rows, o.out_cols, :, o.i, o.j, :]
    SCRATCH.give(key, buffer)


# ----------------------------------------------------------------------------------------
# conv2d, fast for 3x3 "same" convolutions: Winograd F(2x2, 3x3) (may be skipped too)
# ----------------------------------------------------------------------------------------


WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float32)
"""``B^T``: a 4x4 input tile ``d`` goes to the transform domain as ``B^T d B``."""

WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float32)
"""``G``: a 3x3 filter ``g`` goes to the transform domain as ``G g G^T``."""

WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float32)
"""``A^T``: a transform-domain product ``m`` comes back as the 2x2 output tile ``A^T m A``."""

WINOGRAD_MIN_CHANNELS = 100
"""The fewest channels for which :func:`_conv2d` uses Winograd, as the harmonic mean of the
input and output channel counts, ``2 C O / (C + O)``: the transforms cost in proportion to
``C + O`` per pixel, the multiplications they save to ``C O``. The mean is symmetric, so an
input gradient (a convolution from ``O`` channels to ``C``) takes the same route as the
forward pass. Measured at one thread, batch 128, forward and backward of the milestone 04
network with OpenBLAS's AVX-512 kernels: Winograd is faster from 128 to 128 channels (4x4
images), slower from 64 to 64 and 64 to 128 (8x8) and from 32 to 64 (16x16)."""


def _winograd_applies(x: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups: int) -> bool:
    """True for the convolutions :func:`_winograd_conv` computes: 3x3, stride 1, padding 1,
    dilation 1, one group, channels in and out of harmonic mean at least
    :data:`WINOGRAD_MIN_CHANNELS`."""
    c, o = x.shape[1], weight.shape[0]
    return (weight.shape[2:] == (3, 3) and stride == (1, 1) and padding == (1, 1) and dilation == (1, 1)
            and groups == 1 and 2 * c * o >= WINOGRAD_MIN_CHANNELS * (c + o))


@functools.lru_cache(maxsize=8)
def _terms(matrix: tuple[tuple[float, ...], ...]) -> tuple:
    """Each row of a matrix of 0 and +-1 (as nested tuples) as its nonzero ``(coefficient,
    column)`` terms, a positive one first when there is one."""
    return tuple(tuple(sorted(((c, i) for i, c in enumerate(row) if c), key=lambda term: term[0] < 0))
                 for row in matrix)


def _combine(parts, matrix: np.ndarray, out) -> None:
    """``out[a] = sum_i matrix[a, i] * parts[i]`` for a matrix of 0 and +-1, by adds and
    subtracts of whole arrays (each ``parts[i]`` and ``out[a]`` of one shape)."""
    for target, terms in zip(out, _terms(tuple(map(tuple, matrix.tolist())))):
        (c0, i0), *rest = terms
        if c0 > 0 and rest:
            (c1, i1), *rest = rest
            (np.add if c1 > 0 else np.subtract)(parts[i0], parts[i1], out=target)
        else:
            np.copyto(target, parts[i0]) if c0 > 0 else np.negative(parts[i0], out=target)
        for c, i in rest:
            (np.add if c > 0 else np.subtract)(target, parts[i], out=target)


def _tile_grid(h: int, w: int) -> tuple[int, int]:
    """How many 2x2 output tiles cover an ``h x w`` output: odd sizes round up."""
    return -(-h // 2), -(-w // 2)


def _winograd_input(x: np.ndarray) -> np.ndarray:
    """``B^T d B`` of every 4x4 tile ``d`` of the zero-padded image (tiles start every 2
    pixels), as ``(16, tiles, channels)``; ``x`` is NCHW-shaped, in either memory layout.

    The two sides of the product go one at a time: ``B^T`` combines rows of the padded image
    (tile row ``i`` of every tile is every second image row from ``i``), then ``B`` combines
    columns of the result the same way, so no tile is ever copied out.
    """
    n, c, h, w = x.shape
    th, tw = _tile_grid(h, w)
    padded = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), x.dtype)
    padded[:, 1:h + 1, 1:w + 1] = x.transpose(0, 2, 3, 1)
    rows = np.empty((4, n, th, 2 * tw + 2, c), x.dtype)
    _combine([padded[:, i:i + 2 * th:2] for i in range(4)], WINOGRAD_BT, rows)
    tiles = np.empty((4, 4, n, th, tw, c), x.dtype)
    for a in range(4):
        _combine([rows[a][:, :, j:j + 2 * tw:2] for j in range(4)], WINOGRAD_BT, tiles[a])
    return tiles.reshape(16, n * th * tw, c)


def _winograd_filter(weight: np.ndarray) -> np.ndarray:
    """``G g G^T`` of every ``(out, in)`` filter ``g``, as ``(16, in, out)``: one matmul by
    ``G (x) G`` (Kronecker product) on the filters as rows of 9."""
    out, cin = weight.shape[:2]
    by_tap = weight.reshape(out, cin * 9).T.reshape(cin, 9, out).transpose(1, 0, 2).reshape(9, cin * out)
    return (np.kron(WINOGRAD_G, WINOGRAD_G).astype(weight.dtype) @ by_tap).reshape(16, cin, out)


def _winograd_output(products: np.ndarray, out: np.ndarray) -> None:
    """``A^T m A`` of every transform-domain tile ``m`` of ``(16, tiles, out)``, written into
    ``out``, the ``(n, h, w, channels)`` image of 2x2 output tiles (columns, then rows, as in
    :func:`_winograd_input`)."""
    n, h, w, c = out.shape
    th, tw = _tile_grid(h, w)
    m = products.reshape(4, 4, n, th, tw, c)
    cols = np.empty((4, 2, *m.shape[2:]), m.dtype)
    for a in range(4):
        _combine(m[a], WINOGRAD_AT, cols[a])
    even = (2 * th, 2 * tw) == (h, w)
    tiles = out.reshape(n, th, 2, tw, 2, c) if even else np.empty((n, th, 2, tw, 2, c), m.dtype)
    for x in range(2):
        _combine(cols[:, x], WINOGRAD_AT, tiles[:, :, :, :, x].transpose(2, 0, 1, 3, 4))
    if not even:
        out[...] = tiles.reshape(n, 2 * th, 2 * tw, c)[:, :h, :w]


def _winograd_gradient_tiles(grad: np.ndarray) -> np.ndarray:
    """``A dY A^T`` of every 2x2 tile ``dY`` of the output gradient (NCHW-shaped, odd sizes
    padded with zeros): the gradient of the transform-domain products, ``(16, tiles, out)``."""
    n, c, h, w = grad.shape
    th, tw = _tile_grid(h, w)
    g = grad.transpose(0, 2, 3, 1)
    if (2 * th, 2 * tw) != (h, w):
        g = np.pad(g, ((0, 0), (0, 2 * th - h), (0, 2 * tw - w), (0, 0)))
    rows = np.empty((4, n, th, 2 * tw, c), grad.dtype)
    _combine([g[:, y::2] for y in range(2)], WINOGRAD_AT.T, rows)
    tiles = np.empty((4, 4, n, th, tw, c), grad.dtype)
    for a in range(4):
        _combine([rows[a][:, :, x::2] for x in range(2)], WINOGRAD_AT.T, tiles[a])
    return tiles.reshape(16, n * th * tw, c)


def _winograd_conv(x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3, stride-1, padding-1 convolution of ``x`` by ``weight`` (no bias), written
    channels-last (an NCHW view of NHWC memory), and the input tiles (for the weight gradient).

    **Winograd F(2x2, 3x3).** A 2x2 block of outputs reads a 4x4 tile ``d`` of the padded
    input; per channel pair it is ``A^T [(G g G^T) * (B^T d B)] A`` with ``*`` element-wise,
    16 multiplications where the direct sum takes 36. Summed over input channels, the 16
    transform-domain entries are 16 matrix products ``(tiles, in) @ (in, out)``: 2.25 times
    fewer multiply-adds than im2col, for the price of the transforms, which are adds and
    subtracts of whole arrays. The matrices are exact in binary (0, +-1, +-1/2), so float32
    results differ from im2col's only by rounding.
    """
    n, _, h, w = x.shape
    tiles = _winograd_input(x)
    out = np.empty((n, h, w, weight.shape[0]), x.dtype)
    _winograd_output(np.matmul(tiles, _winograd_filter(weight)), out)
    return out.transpose(0, 3, 1, 2), tiles


def _winograd_weight_grad(weight: np.ndarray, tiles: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Weight gradient of :func:`_winograd_conv`, taken in the transform domain: the products'
    gradient ``A dY A^T``, times the input tiles summed over tiles (16 matmuls ``(in, tiles) @
    (tiles, out)``), back through the filter transform by ``G^T . G``. (The input gradient is
    a convolution of its own, see :func:`_conv2d_grad`.)"""
    out, cin = weight.shape[:2]
    grad_u = np.matmul(tiles.transpose(0, 2, 1), _winograd_gradient_tiles(grad))  # (16, in, out)
    by_tap = np.kron(WINOGRAD_G, WINOGRAD_G).T.astype(weight.dtype) @ grad_u.reshape(16, cin * out)
    return np.ascontiguousarray(by_tap.reshape(3, 3, cin, out).transpose(3, 2, 0, 1))


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) of a batch of images.

    Args:
        x: input ``(N, C, H, W)``.
        weight: ``(out_channels, C / groups, kh, kw)``.
        bias: ``(out_channels,)`` or None.
        stride, padding, dilation: an int or an ``(h, w)`` pair; padding is with zeros.
        groups: split the channels into this many independent convolutions.

    Returns:
        ``(N, out_channels, H_out, W_out)`` with ``H_out = (H + 2p - d(k-1) - 1) // s + 1``.
        The values are those of :func:`conv2d_reference`, the plain definition.

    Raises:
        ShapeError: inputs that are not 4-D, or channels that do not fit the weight.

    Examples:
        >>> import tt_core as tt
        >>> conv2d(tt.randn(2, 3, 8, 8), tt.randn(4, 3, 3, 3), padding=1).shape
        (2, 4, 8, 8)
    """
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"conv2d needs a 4-D input (N, C, H, W) and a 4-D weight (out, in/groups, kh, kw), "
            f"got input shape {x.shape} and weight shape {weight.shape}"
        )
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    out_channels, cg = weight.shape[:2]
    if x.shape[1] != cg * groups or out_channels % groups:
        raise ShapeError(
            f"conv2d: input shape {x.shape} has {x.shape[1]} channels but weight shape {weight.shape} "
            f"with groups={groups} expects {cg * groups} (and out_channels divisible by groups)"
        )
    if bias is not None and bias.shape != (out_channels,):
        raise ShapeError(f"conv2d: bias shape {bias.shape} does not match weight shape {weight.shape}: expected ({out_channels},)")
    attrs = {
        "stride": _pair(stride, "stride"), "padding": _pair(padding, "padding", 0),
        "dilation": _pair(dilation, "dilation"), "groups": int(groups),
    }
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return dispatch.apply("conv2d", *inputs, **attrs)


# ----------------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------------


def _along(axis: int, index) -> tuple:
    """An index that applies ``index`` to one axis: ``x[_along(2, s)] is x[:, :, s]``."""
    return (slice(None),) * axis + (index,)


def _resized(x: np.ndarray, axis: int, length: int, dtype=None, zero: bool = False) -> np.ndarray:
    """A new array like ``x`` (shape, memory layout) but ``length`` long along ``axis``."""
    shape = x.shape[:axis] + (length,) + x.shape[axis + 1:]
    return _empty_like_layout(x, shape, dtype=dtype, zero=zero)


def _running_max(x: np.ndarray, axis: int, steps, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The maximum over the window steps along one axis, and which step won (the first on
    ties). The winner is updated by arithmetic, not by masked writes (several times slower)."""
    best = _resized(x, axis, length)
    winner = _resized(x, axis, length, dtype=np.uint8 if len(steps) < 256 else np.uint16, zero=True)
    covers_all = steps[0][1] == slice(0, length)
    if covers_all:  # the first step reaches every output: start from its values
        best[...] = x[_along(axis, steps[0][2])]
    else:
        best.fill(-np.inf)
    for k, (_, out_slice, in_slice) in enumerate(steps):
        if k == 0 and covers_all:
            continue
        region, window = best[_along(axis, out_slice)], x[_along(axis, in_slice)]
        better = window > region
        np.maximum(region, window, out=region)
        won = winner[_along(axis, out_slice)]
        np.maximum(won, better * won.dtype.type(k), out=won)  # the winner so far is < k
    return best, winner


def _disjoint(steps) -> bool:
    """True when no input position is in two windows: the steps start at different
    positions modulo the stride (a stride at least the window's span, typically)."""
    stride = steps[0][2].step
    return len({in_slice.start % stride for _, _, in_slice in steps}) == len(steps)


def _route_back(grad: np.ndarray, winner: np.ndarray, axis: int, steps, length: int) -> np.ndarray:
    """Gradient of :func:`_running_max`: each output's gradient goes to the step that won."""
    out = _resized(grad, axis, length, zero=True)
    disjoint = _disjoint(steps)
    for k, (_, out_slice, in_slice) in enumerate(steps):
        won = winner[_along(axis, out_slice)] == k
        target = out[_along(axis, in_slice)]
        if disjoint:  # each input element hears from one window: write, don't add
            np.multiply(grad[_along(axis, out_slice)], won, out=target)
        else:
            target += grad[_along(axis, out_slice)] * won
    return out


def _window_sum(x: np.ndarray, axis: int, steps, length: int) -> np.ndarray:
    """The sum over the window steps along one axis (zero padding adds nothing)."""
    out = _resized(x, axis, length, zero=True)
    for _, out_slice, in_slice in steps:
        out[_along(axis, out_slice)] += x[_along(axis, in_slice)]
    return out


def _spread_back(grad: np.ndarray, axis: int, steps, length: int) -> np.ndarray:
    """Gradient of :func:`_window_sum`: each output's gradient to every input of its window."""
    out = _resized(grad, axis, length, zero=True)
    for _, out_slice, in_slice in steps:
        out[_along(axis, in_slice)] += grad[_along(axis, out_slice)]
    return out


def _max_pool2d(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
    """Forward kernel of ``max_pool2d``. A window's maximum is separable: the maximum along
    each row of the window, then the maximum of those down its rows, so two passes of ``kw``
    and ``kh`` steps replace ``kh * kw``. Scanning rows first keeps PyTorch's tie rule (the
    first maximum in row-major order wins)."""
    (out_h, out_w), (ctx.steps_h, ctx.steps_w) = _geometry("max_pool2d", x.shape, kernel_size, stride, padding, dilation)
    rows, ctx.winner_w = _running_max(x, 3, ctx.steps_w, out_w)  # (N, C, H, W_out)
    out, ctx.winner_h = _running_max(rows, 2, ctx.steps_h, out_h)
    return out


def _max_pool2d_grad(ctx, grad):
    """Each output's gradient goes to the input element that was its window's maximum."""
    h, w = ctx.inputs[0].shape[2:]
    grad_rows = _route_back(grad, ctx.winner_h, 2, ctx.steps_h, h)
    return (_route_back(grad_rows, ctx.winner_w, 3, ctx.steps_w, w),)


def _avg_pool2d(ctx, x, kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)):
    """Forward kernel of ``avg_pool2d``: window sums along rows, then down columns, over
    ``kh * kw`` (zero padding counts, as PyTorch's default ``count_include_pad=True``)."""
    (out_h, out_w), (ctx.steps_h, ctx.steps_w) = _geometry("avg_pool2d", x.shape, kernel_size, stride, padding, (1, 1))
    out = _window_sum(_window_sum(x, 3, ctx.steps_w, out_w), 2, ctx.steps_h, out_h)
    out *= 1 / (kernel_size[0] * kernel_size[1])
    return out


def _avg_pool2d_grad(ctx, grad):
    h, w = ctx.inputs[0].shape[2:]
    kh, kw = ctx.attrs["kernel_size"]
    share = grad * (1 / (kh * kw))
    return (_spread_back(_spread_back(share, 2, ctx.steps_h, h), 3, ctx.steps_w, w),)


def _pool_attrs(op: str, x: Tensor, kernel_size, stride, padding) -> dict:
    if x.ndim != 4:
        raise ShapeError(f"{op} needs a 4-D input (N, C, H, W), got shape {x.shape}")
    kernel = _pair(kernel_size, "kernel_size")
    padding = _pair(padding, "padding", 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    return {"kernel_size": kernel, "stride": kernel if stride is None else _pair(stride, "stride"), "padding": padding}


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """The maximum of each ``kernel_size`` window (stride defaults to the kernel size).

    Examples:
        >>> import tt_core as tt
        >>> max_pool2d(tt.arange(16.0).reshape(1, 1, 4, 4), 2).data.ravel().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    attrs = _pool_attrs("max_pool2d", x, kernel_size, stride, padding)
    return dispatch.apply("max_pool2d", x, dilation=_pair(dilation, "dilation"), **attrs)


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """The mean of each ``kernel_size`` window (stride defaults to the kernel size).

    Examples:
        >>> import tt_core as tt
        >>> avg_pool2d(tt.arange(16.0).reshape(1, 1, 4, 4), 2).data.ravel().tolist()
        [2.5, 4.5, 10.5, 12.5]
    """
    return dispatch.apply("avg_pool2d", x, **_pool_attrs("avg_pool2d", x, kernel_size, stride, padding))


def adaptive_avg_pool2d(x: Tensor, output_size) -> Tensor:
    """Average-pool to ``output_size`` (an int or ``(h, w)``).

    1x1 is the global average (a mean over height and width). Other sizes must divide the
    input's height and width, so that the windows tile the image exactly.

    Examples:
        >>> import tt_core as tt
        >>> adaptive_avg_pool2d(tt.arange(16.0).reshape(1, 1, 4, 4), 1).data.ravel().tolist()
        [7.5]
    """
    out_h, out_w = _pair(output_size, "output_size")
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d needs a 4-D input (N, C, H, W), got shape {x.shape}")
    h, w = x.shape[2:]
    if (out_h, out_w) == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    if h % out_h or w % out_w:
        raise ShapeError(
            f"adaptive_avg_pool2d: output size {(out_h, out_w)} must divide the input's height and "
            f"width (input shape {x.shape})"
        )
    return avg_pool2d(x, (h // out_h, w // out_w))


OPS = {
    "conv2d": Op(_conv2d, _conv2d_grad, saves=("plan", "wmat", "tiles")),
    "max_pool2d": Op(_max_pool2d, _max_pool2d_grad, saves=("steps_h", "steps_w", "winner_h", "winner_w")),
    "avg_pool2d": Op(_avg_pool2d, _avg_pool2d_grad, saves=("steps_h", "steps_w")),
}

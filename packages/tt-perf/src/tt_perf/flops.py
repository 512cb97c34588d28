"""How many floating-point operations a layer performs, counted from its shapes.

Convention (the usual one): a multiply-add is **2 FLOPs**, so a Linear layer on N rows costs
``2 * N * in_features * out_features`` plus ``N * out_features`` for the bias. Element-wise
layers count the operations their kernel performs per element (ReLU 1: a max; softmax 5: max,
subtract, exp, sum, divide). Integer (quantized) layers count the same multiply-adds as their
float originals: the arithmetic is the same, only its type differs.

A layer's FLOPs are found, in this order:

1. the layer's own method ``flops(input_shape) -> int`` (a third-party layer declares its cost);
2. a counter registered by a plugin under kind ``"flop_counter"`` with the layer's class name;
3. the built-in :data:`COUNTERS` below, by class name (the class or any base class), so a
   learner's own ``Linear`` with the same name and attributes is counted too.

A counter is ``counter(module, input_shapes, output_shape) -> int``: the shapes of the
tensor arguments of one call, and of its (first) output. For a layer that contains other
layers (multi-head attention holds its projections) the counter counts only what the layer
computes itself; its children are counted on their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Shape = tuple[int, ...]
FlopCounter = Callable[[object, Sequence[Shape], Shape], int]


def _elements(shape: Shape) -> int:
    return int(math.prod(shape))


def _rows(shape: Shape) -> int:
    """Everything but the last axis: the number of vectors a Linear layer transforms."""
    return int(math.prod(shape[:-1]))


def linear_flops(module, input_shapes, output_shape) -> int:
    out_features, in_features = module.weight.shape
    rows = _rows(output_shape)
    bias = rows * out_features if getattr(module, "bias", None) is not None else 0
    return 2 * rows * in_features * out_features + bias


def conv2d_flops(module, input_shapes, output_shape) -> int:
    """(N, C_out, H_out, W_out) outputs, each a dot product of C_in/groups * kh * kw terms."""
    _, in_per_group, kh, kw = module.weight.shape
    outputs = _elements(output_shape)
    bias = outputs if getattr(module, "bias", None) is not None else 0
    return 2 * outputs * in_per_group * kh * kw + bias


def _per_element(cost: int) -> FlopCounter:
    def count(module, input_shapes, output_shape) -> int:
        return cost * _elements(output_shape)

    count.__doc__ = f"{cost} FLOP(s) per output element."
    return count


def _pool_flops(module, input_shapes, output_shape) -> int:
    """One comparison (max) or addition (average) per window element and output."""
    size = getattr(module, "kernel_size", 1)
    kh, kw = (size, size) if isinstance(size, int) else tuple(size)
    return _elements(output_shape) * kh * kw


def _adaptive_pool_flops(module, input_shapes, output_shape) -> int:
    return _elements(input_shapes[0]) if input_shapes else 0


def _dropout_flops(module, input_shapes, output_shape) -> int:
    # identity in eval(); a multiply by the mask and a scale in training
    return 2 * _elements(output_shape) if getattr(module, "training", False) else 0


def _zero(module, input_shapes, output_shape) -> int:
    return 0


def _heads(module) -> int:
    for name in ("num_heads", "n_heads", "heads"):
        if isinstance(getattr(module, name, None), int):
            return getattr(module, name)
    return 1


def attention_flops(module, input_shapes, output_shape) -> int:
    """The attention core of multi-head attention, for queries (B, T, E) over S keys.

    Scores ``Q @ K^T`` (2·B·T·S·E), scaling (B·H·T·S), softmax (5·B·H·T·S) and the weighted
    sum ``A @ V`` (2·B·T·S·E). The Q/K/V and output projections are Linear children and
    are counted as such. S is T, or the length of a separate key input (B, S, E) (keys
    held in a KV cache are not an input and not counted: profile an uncached pass).
    """
    query = input_shapes[0]
    batch, t, embed = int(math.prod(query[:-2])), query[-2], query[-1]
    heads = _heads(module)
    s = t
    for shape in input_shapes[1:]:
        if len(shape) == len(query) and shape[-1] == embed:  # cross-attention keys
            s = shape[-2]
            break
    scores = batch * heads * t * s
    return 4 * batch * t * s * embed + 6 * scores


def _residual_flops(module, input_shapes, output_shape) -> int:
    """A pre-norm transformer block adds two residuals; its sub-layers count themselves."""
    return 2 * _elements(output_shape)


COUNTERS: dict[str, FlopCounter] = {
    "Linear": linear_flops,
    "QuantizedLinear": linear_flops,
    "FusedLinear": linear_flops,
    "Conv2d": conv2d_flops,
    "QuantizedConv2d": conv2d_flops,
    "ReLU": _per_element(1),
    "Sigmoid": _per_element(3),  # exp, add, divide
    "Tanh": _per_element(1),
    "GELU": _per_element(8),  # cube, 3 multiplies, 2 adds, tanh, final multiply
    "Softmax": _per_element(5),
    "LogSoftmax": _per_element(5),
    "Dropout": _dropout_flops,
    "BatchNorm2d": _per_element(2),  # in eval: x * scale + shift per element
    "LayerNorm": _per_element(7),  # mean, subtract, square, mean, rsqrt-multiply, scale, shift
    "MaxPool2d": _pool_flops,
    "AvgPool2d": _pool_flops,
    "AdaptiveAvgPool2d": _adaptive_pool_flops,
    "Flatten": _zero,
    "Embedding": _zero,  # a table look-up: memory traffic, no arithmetic
    "PositionalEncoding": _per_element(1),
    "MultiHeadAttention": attention_flops,
    "TransformerBlock": _residual_flops,
}


def find_counter(module, extra: dict[str, FlopCounter] | None = None) -> FlopCounter | None:
    """The FLOP counter for ``module``: its ``flops`` method, a plugin's, or a built-in one."""
    method = getattr(type(module), "flops", None)
    if callable(method):
        return lambda m, input_shapes, output_shape: int(m.flops(input_shapes[0] if input_shapes else None))
    for cls in type(module).__mro__:
        name = cls.__name__
        if extra and name in extra:
            return extra[name]
        if name in COUNTERS:
            return COUNTERS[name]
    return None

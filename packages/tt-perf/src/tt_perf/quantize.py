"""Post-training int8 quantization: int8 weights, uint8 activations, integer arithmetic.

A float32 weight takes 4 bytes; an int8 code takes 1. Each output channel ``c`` of a weight
gets its own scale ``s_c = max|W_c| / 127`` (*per-channel symmetric*): ``W_c ≈ s_c * q_c`` with
integer codes ``q_c`` in [-127, 127], and the error of every weight is at most ``s_c / 2``.

Activations are quantized too, with one scale and zero point per layer input (*affine*,
uint8): the range ``[low, high]`` that the layer's input took on a *calibration set* is
mapped onto the codes 0..255, ``x ≈ s_x * (code - z)``. A quantized layer then computes

    y = s_x * s_c * sum_k (code_k - z) * q_ck  +  b_c

The sum is over integers. NumPy has no fast integer matrix product, so the integer codes are
held in float32 and multiplied by BLAS: every product and partial sum is an integer, exact in
float32 up to 2**24 (for example all sums of up to 520 products of 255 * 127), and rounded
only beyond. ``mode="dequantize"`` instead rebuilds float weights ``s_c * q_c`` on the fly
and multiplies the float input, without quantizing it.

Quantized layers are for inference: they record no graph. The int8 codes are buffers, so
``tt_core.save(model.state_dict(), path)`` writes int8 arrays and the file is about 4x smaller.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable

import numpy as np
import tt_core
from tt_core import Module, Tensor
from tt_data import conv2d

from .hooks import input_arrays, wrapped_forwards

QMAX = 127  # int8 weight codes are symmetric: [-127, 127]
ACTIVATION_LEVELS = 255  # uint8 activation codes: 0..255
MODES = ("integer", "dequantize")


class CalibrationError(tt_core.TinyTorchError, ValueError):
    """Calibration data that cannot give activation ranges: missing, empty, not numbers,
    non-finite, all zeros, or a layer it never reached."""


class CalibrationWarning(UserWarning):
    """A calibration that worked but left a layer with an uninformative input range."""


# ----------------------------------------------------------------------------------------
# Weights: per-channel symmetric int8
# ----------------------------------------------------------------------------------------


def _channel_shape(ndim: int, axis: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def quantize_per_channel(weight: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 codes and one float32 scale per slice along ``axis`` (the output channels).

    Returns ``(codes, scales)`` with ``weight ≈ codes * scales`` (scales broadcast along
    ``axis``) and ``|weight - codes * scales| <= scales / 2``. An all-zero channel gets scale 1.
    """
    weight = np.asarray(weight, dtype=np.float32)
    others = tuple(a for a in range(weight.ndim) if a != axis % weight.ndim)
    max_abs = np.abs(weight).max(axis=others) if others else np.abs(weight)
    scales = np.where(max_abs > 0, max_abs / QMAX, 1.0).astype(np.float32)
    codes = np.clip(np.rint(weight / scales.reshape(_channel_shape(weight.ndim, axis))), -QMAX, QMAX)
    return codes.astype(np.int8), scales


def dequantize_per_channel(codes: np.ndarray, scales: np.ndarray, axis: int = 0) -> np.ndarray:
    """The float32 weights that int8 ``codes`` with per-channel ``scales`` stand for."""
    return codes.astype(np.float32) * scales.reshape(_channel_shape(codes.ndim, axis))


# ----------------------------------------------------------------------------------------
# Activations: affine uint8 from a calibrated range
# ----------------------------------------------------------------------------------------


class RangeObserver:
    """Tracks the smallest and largest value a layer input takes during calibration.

    Args:
        name: the layer's dotted name, for error messages.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.low, self.high, self.batches = np.inf, -np.inf, 0

    @property
    def only_zeros(self) -> bool:
        """Every value observed was 0 (the range is no information about real inputs)."""
        return self.batches > 0 and self.low == self.high == 0.0

    def observe(self, array: np.ndarray) -> None:
        """Widen the range to ``array``'s values (an empty array tells nothing and is ignored).

        Raises:
            CalibrationError: ``array`` holds NaN or inf (the range would be unusable).
        """
        if array.size == 0:
            return
        low, high = float(array.min()), float(array.max())  # NaN propagates through both
        if not (math.isfinite(low) and math.isfinite(high)):
            raise CalibrationError(
                f"the input of layer {self.name or '(unnamed)'!r} took non-finite values (NaN or inf) during "
                "calibration although the calibration data is finite: the float model overflows on it; check its "
                "weights (e.g. after training with a too large learning rate), or skip=[that layer]")
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.batches += 1

    def qparams(self) -> tuple[float, float]:
        """``(scale, zero_point)`` mapping ``[low, high]`` (widened to include 0) onto 0..255.

        Raises:
            CalibrationError: nothing was observed.
        """
        if not self.batches:
            name = f"layer {self.name!r}" if self.name else "this layer"
            raise CalibrationError(
                f"{name} never ran during calibration: feed data that reaches it, or keep it in float32 "
                f"with skip=[{self.name or '<its name>'!r}]")
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        scale = (high - low) / ACTIVATION_LEVELS if high > low else 1.0
        zero_point = float(np.clip(np.rint(-low / scale), 0, ACTIVATION_LEVELS))
        return float(scale), zero_point


def quantize_activation(x: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    """Centred integer codes ``code - zero_point`` (code in 0..255) as float32, ready for BLAS."""
    return np.clip(np.rint(x * np.float32(1 / scale)), -zero_point, ACTIVATION_LEVELS - zero_point).astype(
        np.float32, copy=False)


# ----------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------


class _QuantizedBase(Module):
    """State shared by the quantized layers: int8 weight, per-channel scales, input qparams."""

    def __init__(self, codes: np.ndarray, scales: np.ndarray, bias: np.ndarray | None,
                 input_scale: float, input_zero_point: float, mode: str) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if codes.dtype != np.int8:
            raise tt_core.TinyTorchError(f"{type(self).__name__} stores int8 codes, got {codes.dtype}")
        self.mode = mode
        self.register_buffer("weight_int8", Tensor(codes, dtype=np.int8))
        self.register_buffer("weight_scale", Tensor(scales, dtype=np.float32))
        self.register_buffer("bias", None if bias is None else Tensor(bias, dtype=np.float32))
        self.register_buffer("input_scale", Tensor(input_scale, dtype=np.float32))
        self.register_buffer("input_zero_point", Tensor(input_zero_point, dtype=np.float32))
        self._codes_source: np.ndarray | None = None
        self._codes_f32: np.ndarray | None = None

    @property
    def weight(self) -> Tensor:
        """The dequantized float32 weight (what the int8 codes stand for)."""
        return Tensor._make(dequantize_per_channel(self.weight_int8.data, self.weight_scale.data))

    def weight_codes(self) -> np.ndarray:
        """The int8 codes as float32, converted once and reused (rebuilt if the codes change)."""
        if self._codes_source is not self.weight_int8.data:
            self._codes_source = self.weight_int8.data
            self._codes_f32 = self._codes_source.astype(np.float32)
        return self._codes_f32

    def _quantized_input(self, x: np.ndarray) -> np.ndarray:
        return quantize_activation(x, float(self.input_scale.data), float(self.input_zero_point.data))

    def _output_scale(self) -> np.ndarray:
        return (self.input_scale.data * self.weight_scale.data).astype(np.float32)

    def _input_array(self, x) -> np.ndarray:
        return (x.data if isinstance(x, Tensor) else np.asarray(x)).astype(np.float32, copy=False)


class QuantizedLinear(_QuantizedBase):
    """A Linear layer with int8 weights (per output row) and uint8-quantized inputs.

    Build it from a float layer with :meth:`from_float`; see the module docstring for the
    arithmetic. Shape: input (*, in_features) -> output (*, out_features).
    """

    def __init__(self, codes, scales, bias=None, input_scale: float = 1.0, input_zero_point: float = 0.0,
                 mode: str = "integer") -> None:
        super().__init__(codes, scales, bias, input_scale, input_zero_point, mode)
        self.out_features, self.in_features = codes.shape

    @classmethod
    def from_float(cls, linear, observer: RangeObserver | None = None, mode: str = "integer") -> QuantizedLinear:
        codes, scales = quantize_per_channel(linear.weight.data, axis=0)
        scale, zero_point = observer.qparams() if observer is not None else (1.0, 0.0)
        bias = None if linear.bias is None else linear.bias.data
        return cls(codes, scales, bias, scale, zero_point, mode)

    def forward(self, x) -> Tensor:
        x = self._input_array(x)
        if self.mode == "integer":
            out = self._quantized_input(x) @ self.weight_codes().T
            out *= self._output_scale()
        else:
            out = x @ dequantize_per_channel(self.weight_int8.data, self.weight_scale.data).T
        if self.bias is not None:
            out += self.bias.data
        return Tensor._make(out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}"


class QuantizedConv2d(_QuantizedBase):
    """A Conv2d layer with int8 filters (per output channel) and uint8-quantized inputs.

    The convolution itself is tt-data's ``conv2d`` applied to the integer codes (zero
    padding is exact: the centred code of 0.0 is 0). Shape: input (N, C_in, H, W) -> output
    (N, C_out, H_out, W_out).
    """

    def __init__(self, codes, scales, bias=None, input_scale: float = 1.0, input_zero_point: float = 0.0,
                 mode: str = "integer", stride=1, padding=0, dilation=1, groups: int = 1) -> None:
        super().__init__(codes, scales, bias, input_scale, input_zero_point, mode)
        self.out_channels, in_per_group, kh, kw = codes.shape
        self.in_channels = in_per_group * groups
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    @classmethod
    def from_float(cls, conv, observer: RangeObserver | None = None, mode: str = "integer") -> QuantizedConv2d:
        codes, scales = quantize_per_channel(conv.weight.data, axis=0)
        scale, zero_point = observer.qparams() if observer is not None else (1.0, 0.0)
        bias = None if conv.bias is None else conv.bias.data
        return cls(codes, scales, bias, scale, zero_point, mode, stride=conv.stride, padding=conv.padding,
                   dilation=getattr(conv, "dilation", 1), groups=getattr(conv, "groups", 1))

    def _conv(self, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        out = conv2d(Tensor._make(x), Tensor._make(weight), None, self.stride, self.padding, self.dilation, self.groups)
        return out.data

    def forward(self, x) -> Tensor:
        x = self._input_array(x)
        if self.mode == "integer":
            out = self._conv(self._quantized_input(x), self.weight_codes())
            out = out * self._output_scale()[:, None, None]
        else:
            out = self._conv(x, dequantize_per_channel(self.weight_int8.data, self.weight_scale.data))
        if self.bias is not None:
            out = out + self.bias.data[:, None, None]
        return Tensor._make(out.astype(np.float32, copy=False))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, mode={self.mode}")


QUANTIZED = {"Linear": QuantizedLinear, "Conv2d": QuantizedConv2d}


def _kind(module) -> str | None:
    """'Linear' or 'Conv2d' when the module is (a subclass of) one, by class name."""
    for cls in type(module).__mro__:
        if cls.__name__ in QUANTIZED:
            return cls.__name__
    return None


# ----------------------------------------------------------------------------------------
# The whole model
# ----------------------------------------------------------------------------------------


CALIBRATION_HINT = ("calibrate with a few hundred real inputs, e.g. a slice of the training set: one array or Tensor, "
                    "or batches / (x, y) pairs from a DataLoader")


def calibration_inputs(calibration) -> list[Tensor]:
    """The model input of every calibration batch, checked, as Tensors.

    Args:
        calibration: one array or Tensor, or an iterable of batches (arrays, Tensors, or
            ``(x, y)`` pairs whose first item is the input). A generator is read once.

    Returns:
        One Tensor per batch.

    Raises:
        CalibrationError: ``None``, no batches, an empty batch, a batch that is not numbers,
            a batch holding NaN or inf, or data whose every value is 0 (no information about
            the range of real inputs: a model calibrated on it silently gives worse predictions).
    """
    if calibration is None:
        raise CalibrationError(f"quantize_int8 needs calibration data to measure each layer's input range: "
                               f"{CALIBRATION_HINT}")
    if isinstance(calibration, (np.ndarray, Tensor)):
        batches = [calibration]
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes, dict)):
        batches = list(calibration)
    else:
        raise CalibrationError(f"calibration data must be an array, a Tensor or an iterable of batches, got "
                               f"{type(calibration).__name__}: {CALIBRATION_HINT}")
    if not batches:
        raise CalibrationError(f"the calibration data holds no batches: {CALIBRATION_HINT}")
    inputs = []
    for index, batch in enumerate(batches):
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        array = x.data if isinstance(x, Tensor) else np.asarray(x)
        where = f"calibration batch {index}" if len(batches) > 1 else "the calibration data"
        if array.dtype.kind not in "biuf":
            raise CalibrationError(f"{where} is not numbers (dtype {array.dtype}): {CALIBRATION_HINT}")
        if array.size == 0:
            raise CalibrationError(f"{where} is empty (shape {array.shape}): {CALIBRATION_HINT}")
        bad = array.size - int(np.count_nonzero(np.isfinite(array)))
        if bad:
            raise CalibrationError(
                f"{where} holds {bad} non-finite value(s) (NaN or inf) among {array.size}: the measured ranges would "
                "be infinite and every quantized output NaN; drop or clean those samples")
        inputs.append(x if isinstance(x, Tensor) else Tensor(array))
    if not any(np.any(x.data) for x in inputs):
        raise CalibrationError(
            "every value of the calibration data is 0: ranges measured on it say nothing about real inputs (the "
            f"quantized model would silently disagree with the float one); {CALIBRATION_HINT}")
    return inputs


def calibrate(model: Module, calibration, layers: Iterable[Module]) -> dict[Module, RangeObserver]:
    """Run ``model`` on the calibration batches and record the input range of each of ``layers``.

    Args:
        model: the float model (its layers are observed, not changed).
        calibration: as :func:`calibration_inputs` takes it.
        layers: sub-modules of ``model`` whose first input is observed.

    Returns:
        One :class:`RangeObserver` per layer, named by the layer's dotted name in ``model``.

    Raises:
        CalibrationError: bad calibration data (see :func:`calibration_inputs`), or a layer
            input that became NaN or inf.
    """
    inputs = calibration_inputs(calibration)
    names = {}
    for name, module in model.named_modules():
        names.setdefault(id(module), name)
    observers = {layer: RangeObserver(names.get(id(layer), type(layer).__name__)) for layer in layers}

    def watching(layer):
        def wrap(original):
            def forward(*args, **kwargs):
                observers[layer].observe(input_arrays(args)[0])
                return original(*args, **kwargs)

            return forward

        return wrap

    previous = tt_core.set_grad_enabled(False)
    try:
        with wrapped_forwards({layer: watching(layer) for layer in observers}):
            for x in inputs:
                model(x)
    finally:
        tt_core.set_grad_enabled(previous)
    return observers


def quantize_int8(model: Module, calibration, *, mode: str = "integer", inplace: bool = False,
                  skip: Iterable[str] = ()) -> Module:
    """Post-training int8 quantization of every Linear and Conv2d layer of ``model``.

    Args:
        model: a trained float model (put in eval mode for calibration).
        calibration: input batches that look like real data (a few hundred samples are
            enough): one array or Tensor, or an iterable of batches or ``(x, y)`` pairs.
        mode: ``"integer"`` (quantize inputs, integer products) or ``"dequantize"``.
        inplace: replace the layers in ``model`` itself instead of in a copy.
        skip: dotted names of layers to keep in float32.

    Returns:
        The quantized model; ``tt_core.save(q.state_dict(), path)`` stores int8 weights.

    Raises:
        ValueError: an unknown ``mode``.
        TinyTorchError: no Linear or Conv2d layer to quantize.
        CalibrationError: ``calibration`` is ``None``, empty, not numbers, holds NaN or inf
            or only zeros; a layer input became NaN or inf; a layer never ran. No layer is
            replaced (with ``inplace=True`` either) when it is raised.

    Warns:
        CalibrationWarning: a layer saw only zeros at its input (e.g. after a ReLU that never
            fired on this data): its inputs are quantized with scale 1.0.

    Examples:
        >>> import tt_core as tt
        >>> model = tt.Sequential(tt.Linear(16, 32), tt.ReLU(), tt.Linear(32, 4))
        >>> q = quantize_int8(model, tt.randn(64, 16))
        >>> type(q[0]).__name__, q.state_dict()["0.weight_int8"].dtype
        ('QuantizedLinear', dtype('int8'))
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    skip = set(skip)
    targets = []  # (parent, attribute name, layer)
    for prefix, parent in model.named_modules():
        for attr, child in parent._modules.items():
            name = f"{prefix}.{attr}" if prefix else attr
            if _kind(child) and name not in skip:
                targets.append((parent, attr, child))
    if not targets:
        raise tt_core.TinyTorchError(f"{type(model).__name__} has no Linear or Conv2d layer to quantize")
    observers = calibrate(model, calibration, [layer for _, _, layer in targets])
    quantized = [QUANTIZED[_kind(layer)].from_float(layer, observers[layer], mode) for _, _, layer in targets]
    for observer in observers.values():
        if observer.only_zeros:
            warnings.warn(
                f"layer {observer.name!r} saw only zeros at its input during calibration (a ReLU before it never "
                "fired on this data?): its inputs are quantized with scale 1.0; calibrate with more varied data, "
                f"or keep it in float32 with skip=[{observer.name!r}]", CalibrationWarning, stacklevel=2)
    for (parent, attr, _), layer in zip(targets, quantized):
        setattr(parent, attr, layer)
    return model

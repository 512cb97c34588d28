import os
import warnings

import numpy as np
import pytest
import tt_core
import tt_data
from tt_core import Module, Tensor
from tt_perf import CalibrationError, CalibrationWarning, QuantizedLinear, quantize_int8
from tt_perf.quantize import RangeObserver, dequantize_per_channel, quantize_activation, quantize_per_channel


def test_per_channel_codes_are_int8_and_error_is_at_most_half_a_step(rng):
    weight = rng.standard_normal((16, 40)).astype(np.float32) * rng.uniform(0.01, 3, (16, 1)).astype(np.float32)
    weight[3] = 0  # an all-zero channel
    codes, scales = quantize_per_channel(weight)
    assert codes.dtype == np.int8 and scales.shape == (16,)
    assert np.abs(codes).max() == 127
    np.testing.assert_allclose(scales[[0, 5]], np.abs(weight[[0, 5]]).max(axis=1) / 127, rtol=1e-6)
    error = np.abs(dequantize_per_channel(codes, scales) - weight)
    assert np.all(error <= scales[:, None] / 2 * (1 + 1e-5))
    assert np.all(codes[3] == 0)


def test_conv_weights_get_one_scale_per_output_channel(rng):
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    codes, scales = quantize_per_channel(weight, axis=0)
    assert scales.shape == (4,)
    np.testing.assert_allclose(dequantize_per_channel(codes, scales), weight, atol=scales.max() / 2 + 1e-7)


def test_observer_range_includes_zero_and_maps_onto_uint8():
    observer = RangeObserver()
    observer.observe(np.array([0.5, 2.0]))
    observer.observe(np.array([1.0, 3.0]))
    scale, zero_point = observer.qparams()
    assert zero_point == 0 and scale == pytest.approx(3.0 / 255)
    centred = quantize_activation(np.array([-1.0, 0.0, 1.5, 3.0, 9.0], dtype=np.float32), scale, zero_point)
    np.testing.assert_array_equal(centred, [0, 0, np.rint(1.5 / scale), 255, 255])  # clipped to the range
    with pytest.raises(tt_core.TinyTorchError, match="calibration"):
        RangeObserver().qparams()


def test_integer_mode_is_integer_arithmetic(mlp, rng):
    x = rng.random((32, 64), dtype=np.float32)
    qmodel = quantize_int8(mlp, x)
    layer = qmodel[0]
    assert isinstance(layer, QuantizedLinear) and layer.weight_int8.dtype == np.int8
    centred = quantize_activation(x, float(layer.input_scale.data), float(layer.input_zero_point.data))
    exact = centred.astype(np.int64) @ layer.weight_int8.data.astype(np.int64).T  # the integer reference
    expected = exact * (layer.input_scale.data * layer.weight_scale.data) + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["integer", "dequantize"])
def test_quantized_model_stays_close_to_float_and_original_is_untouched(mlp, rng, mode):
    x = rng.random((64, 64), dtype=np.float32)
    reference = mlp(Tensor(x)).data
    qmodel = quantize_int8(mlp, [x[:32], (x[32:], None)], mode=mode)
    assert type(mlp[0]).__name__ == "Linear"  # a copy was quantized
    assert [type(m).__name__ for m in qmodel] == ["QuantizedLinear", "ReLU", "QuantizedLinear", "ReLU", "QuantizedLinear"]
    error = np.abs(qmodel(Tensor(x)).data - reference).max()
    assert error < 0.02 * np.abs(reference).max()
    assert np.array_equal(qmodel(Tensor(x)).data.argmax(1), reference.argmax(1)) or error < 1e-2


def test_saved_file_holds_int8_and_is_about_four_times_smaller(rng, tmp_path):
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_core.Linear(256, 256), tt_core.ReLU(), tt_core.Linear(256, 128))
    qmodel = quantize_int8(model, rng.random((16, 256), dtype=np.float32))
    tt_core.save(model.state_dict(), tmp_path / "f32.npz")
    tt_core.save(qmodel.state_dict(), tmp_path / "int8.npz")
    loaded = tt_core.load(tmp_path / "int8.npz")
    assert loaded["0.weight_int8"].dtype == np.int8
    ratio = os.path.getsize(tmp_path / "f32.npz") / os.path.getsize(tmp_path / "int8.npz")
    assert 3.5 < ratio < 4.0
    # and it loads back into a quantized model of the same shape
    tt_core.manual_seed(5)
    other = quantize_int8(tt_core.Sequential(tt_core.Linear(256, 256), tt_core.ReLU(), tt_core.Linear(256, 128)),
                          rng.random((4, 256), dtype=np.float32))
    other.load_state_dict(loaded)
    x = Tensor(rng.random((3, 256), dtype=np.float32))
    np.testing.assert_array_equal(other(x).data, qmodel(x).data)


def test_errors(mlp):
    with pytest.raises(ValueError, match="mode"):
        quantize_int8(mlp, np.zeros((1, 64), np.float32), mode="int4")
    with pytest.raises(tt_core.TinyTorchError, match="no Linear"):
        quantize_int8(tt_core.Sequential(tt_core.ReLU()), np.zeros((1, 3), np.float32))
    with pytest.raises(tt_core.TinyTorchError, match="int8"):
        QuantizedLinear(np.zeros((2, 2), np.float32), np.ones(2, np.float32))


def test_quantized_conv_matches_integer_reference_and_float(rng):
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_data.Conv2d(3, 8, 3, padding=1), tt_core.ReLU(), tt_data.Conv2d(8, 4, 3, stride=2))
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    reference = model(Tensor(x)).data
    qmodel = quantize_int8(model, x)
    conv = qmodel[0]
    assert type(conv).__name__ == "QuantizedConv2d" and conv.weight_int8.dtype == np.int8
    assert (conv.stride, conv.padding) == ((1, 1), (1, 1))
    # integer reference: centred input codes, int64 products, sums per output pixel
    centred = quantize_activation(x, float(conv.input_scale.data), float(conv.input_zero_point.data))
    padded = np.pad(centred.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # (N, C, 9, 9, 3, 3)
    exact = np.einsum("nchwij,ocij->nohw", windows, conv.weight_int8.data.astype(np.int64))
    expected = exact * (conv.input_scale.data * conv.weight_scale.data)[:, None, None] + conv.bias.data[:, None, None]
    np.testing.assert_allclose(conv(Tensor(x)).data, expected, rtol=1e-5, atol=1e-5)
    out = qmodel(Tensor(x)).data
    assert out.shape == reference.shape == (4, 4, 4, 4)
    assert np.abs(out - reference).max() < 0.03 * np.abs(reference).max()
    dequantized = quantize_int8(model, x, mode="dequantize")(Tensor(x)).data
    assert np.abs(dequantized - reference).max() < 0.02 * np.abs(reference).max()


# -- calibration data that cannot calibrate -------------------------------------------------


def _empty_generator():
    yield from ()


REAL = np.random.default_rng(7).random((8, 64), dtype=np.float32)


@pytest.mark.parametrize("calibration, message", [
    (None, "needs calibration data"),
    ([], "holds no batches"),
    (_empty_generator(), "holds no batches"),
    (np.zeros((0, 64), np.float32), r"is empty \(shape \(0, 64\)\)"),
    ([REAL, np.zeros((0, 64), np.float32)], r"calibration batch 1 is empty"),
    (np.zeros((32, 64), np.float32), "every value of the calibration data is 0"),
    ([np.zeros((4, 64)), (Tensor(np.zeros((4, 64))), np.arange(4))], "every value of the calibration data is 0"),
    (np.full((4, 64), np.inf, np.float32), r"holds 256 non-finite value\(s\) \(NaN or inf\) among 256"),
    ([REAL, (np.where(REAL > 0.5, np.nan, REAL), None)], r"calibration batch 1 holds \d+ non-finite"),
    (np.full((2, 64), "x"), r"is not numbers \(dtype <U1\)"),
    ("calibration.npy", "must be an array, a Tensor or an iterable of batches, got str"),
    (3, "got int"),
])
def test_bad_calibration_data_is_refused_and_the_model_is_left_alone(mlp, calibration, message):
    reference = mlp(Tensor(REAL)).data
    with pytest.raises(CalibrationError, match=message) as caught:
        quantize_int8(mlp, calibration, inplace=True)
    assert isinstance(caught.value, tt_core.TinyTorchError) and "calibrat" in str(caught.value)
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    np.testing.assert_array_equal(mlp(Tensor(REAL)).data, reference)


class Blowup(Module):
    """Turns one activation into inf, as an overflowing float model would."""

    def forward(self, x):
        out = x.data.copy()
        out[0, 0] = np.inf
        return Tensor(out)


def test_a_layer_input_that_becomes_non_finite_is_named():
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_core.Linear(4, 3), Blowup(), tt_core.Linear(3, 2))
    with pytest.raises(CalibrationError, match=r"input of layer '2' took non-finite values.*skip"):
        quantize_int8(model, np.ones((2, 4), np.float32))
    with np.errstate(invalid="ignore"):  # the float layer multiplies the inf: NaN, as its user asked
        quantized = quantize_int8(model, np.ones((2, 4), np.float32), skip=["2"])  # keeping it in float works
    assert [type(m).__name__ for m in quantized] == ["QuantizedLinear", "Blowup", "Linear"]


def test_a_layer_that_sees_only_zeros_warns_and_the_result_stays_right(rng):
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_core.Linear(4, 3), tt_core.ReLU(), tt_core.Linear(3, 2))
    model[0].weight.data[:] = -1.0  # positive inputs never get past the ReLU
    model[0].bias.data[:] = -1.0
    x = rng.random((16, 4), dtype=np.float32)
    with pytest.warns(CalibrationWarning, match=r"layer '2' saw only zeros.*skip=\['2'\]"):
        quantized = quantize_int8(model, x)
    np.testing.assert_allclose(quantized(Tensor(x)).data, model(Tensor(x)).data, atol=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an informative range gives no warning
        quantize_int8(tt_core.Sequential(tt_core.Linear(4, 2)), x)


class TwoPaths(Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = tt_core.Linear(4, 2), tt_core.Linear(4, 2)

    def forward(self, x):
        return self.used(x)


def test_a_layer_that_never_ran_is_named_with_the_way_out(rng):
    x = rng.random((4, 4), dtype=np.float32)
    with pytest.raises(CalibrationError, match=r"layer 'unused' never ran during calibration.*skip=\['unused'\]"):
        quantize_int8(TwoPaths(), x)
    assert type(quantize_int8(TwoPaths(), x, skip=["unused"]).used).__name__ == "QuantizedLinear"


def test_calibration_batches_may_be_a_generator_of_pairs(mlp, rng):
    x = rng.random((64, 64), dtype=np.float32)
    from_array = quantize_int8(mlp, x)
    from_pairs = quantize_int8(mlp, ((x[i:i + 16], None) for i in range(0, 64, 16)))
    for a, b in zip(from_array.modules(), from_pairs.modules()):
        if isinstance(a, QuantizedLinear):
            assert float(a.input_scale.data) == pytest.approx(float(b.input_scale.data), rel=1e-6)
            assert float(a.input_zero_point.data) == float(b.input_zero_point.data)

import warnings

import numpy as np
import tt_core as tt
from tt_core import functional as TF
from tt_language import functional as LF
from tt_perf.kernels import gelu_, normalize


def test_gelu_equals_the_tanh_formula_everywhere_without_overflow_warnings():
    x = np.concatenate([np.linspace(-60, 60, 2001), [-1e4, -88.0, 0.0, 1e4]]).astype(np.float32)
    u = np.sqrt(2 / np.pi) * (x.astype(np.float64) + 0.044715 * x.astype(np.float64) ** 3)
    expected = 0.5 * x * (1 + np.tanh(u))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp must never overflow
        out = gelu_(x.copy())
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32


def test_gelu_writes_into_its_argument():
    x = np.array([[-1.0, 0.5], [2.0, -3.0]], dtype=np.float32)
    assert gelu_(x) is x


def test_normalize_is_a_layer_norm_without_scale_and_shift():
    x = (np.random.default_rng(0).standard_normal((6, 48)) * 3 + 2).astype(np.float32)
    wide = x.astype(np.float64)
    expected = (wide - wide.mean(-1, keepdims=True)) / np.sqrt(wide.var(-1, keepdims=True) + 1e-5)
    out = normalize(x, 1e-5)
    np.testing.assert_allclose(out, expected, atol=2e-5)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(x, wide.astype(np.float32))  # the input is left alone


def test_the_kernels_give_the_training_ops_values_to_the_last_bit():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((5, 64)) * 3).astype(np.float32)
    np.testing.assert_array_equal(gelu_(x.copy()), TF.gelu(tt.Tensor(x)).data)
    ones, zeros = tt.Tensor(np.ones(64, np.float32)), tt.Tensor(np.zeros(64, np.float32))
    np.testing.assert_array_equal(normalize(x, 1e-5), LF.layer_norm(tt.Tensor(x), ones, zeros).data)

import numpy as np
import pytest
import tt_core
import tt_data
from tt_core import Tensor
from tt_perf.accelerate import (
    FusedLinear,
    Identity,
    blas_threads,
    compare,
    fold_batchnorms,
    fuse_linear_activations,
    make_contiguous,
    threadpoolctl_available,
    to_dtype,
)


def run(model, x):
    previous = tt_core.set_grad_enabled(False)
    try:
        return model(Tensor(x)).data
    finally:
        tt_core.set_grad_enabled(previous)


def test_conv_batchnorm_folding_keeps_outputs(rng):
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_data.Conv2d(3, 6, 3, padding=1), tt_data.BatchNorm2d(6), tt_core.ReLU(),
                               tt_data.Conv2d(6, 4, 3, bias=False), tt_data.BatchNorm2d(4))
    for bn in (model[1], model[4]):  # trained-looking statistics and affine parameters
        bn.running_mean.data = rng.standard_normal(bn.num_features).astype(np.float32)
        bn.running_var.data = rng.uniform(0.5, 2.0, bn.num_features).astype(np.float32)
        bn.weight.data = rng.uniform(0.5, 1.5, bn.num_features).astype(np.float32)
        bn.bias.data = rng.standard_normal(bn.num_features).astype(np.float32)
    model.eval()
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    folded = fold_batchnorms(model)
    assert [type(m).__name__ for m in folded] == ["Conv2d", "Identity", "ReLU", "Conv2d", "Identity"]
    assert folded[3].bias is not None
    np.testing.assert_allclose(run(folded, x), run(model, x), atol=1e-5)
    assert type(model[1]).__name__ == "BatchNorm2d"  # the original is untouched


@pytest.mark.parametrize("act", ["ReLU", "GELU", "Tanh", "Sigmoid"])
def test_fused_linear_activation_equals_the_pair(act, rng):
    tt_core.manual_seed(1)
    model = tt_core.Sequential(tt_core.Linear(12, 20), getattr(tt_core, act)(), tt_core.Linear(20, 3))
    x = (3 * rng.standard_normal((5, 12))).astype(np.float32)
    fused = fuse_linear_activations(model)
    assert [type(m).__name__ for m in fused] == ["FusedLinear", "Identity", "FusedLinear"]
    assert fused[0].activation == act and fused[2].activation is None
    assert fused[0].weight_t.data.flags["C_CONTIGUOUS"] and fused[0].weight_t.shape == (12, 20)
    np.testing.assert_allclose(run(fused, x), run(model, x), atol=1e-5)


def test_fused_linear_keeps_a_copy_of_the_weight():
    linear = tt_core.Linear(3, 2)
    fused = FusedLinear(linear, None)
    expected = linear.weight.data.T.copy()
    linear.weight.data[...] = 0.0
    np.testing.assert_array_equal(fused.weight_t.data, expected)


def test_fused_linear_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        FusedLinear(tt_core.Linear(2, 2), "Softplus")


def test_dtype_and_contiguity(mlp, rng):
    x = rng.standard_normal((4, 64)).astype(np.float32)
    wide = to_dtype(mlp, np.float64)
    assert all(p.dtype == np.float64 for p in wide.parameters())
    assert all(p.dtype == np.float32 for p in mlp.parameters())
    np.testing.assert_allclose(run(wide, x.astype(np.float64)), run(mlp, x), atol=1e-5)
    weight = mlp[0].weight.data
    mlp[0].weight.data = np.repeat(weight, 2, axis=1)[:, ::2]  # the same values, as a strided view
    column_major = mlp[2].weight.data
    assert column_major.flags["F_CONTIGUOUS"]  # as every Linear weight is made
    make_contiguous(mlp)
    assert mlp[0].weight.data.flags["C_CONTIGUOUS"] and mlp[2].weight.data is column_major
    np.testing.assert_array_equal(mlp[0].weight.data, weight)


def test_compare_reports_speed_and_equality(mlp, rng):
    x = rng.standard_normal((8, 64)).astype(np.float32)
    fused = fuse_linear_activations(mlp)
    result = compare("fused", lambda: run(mlp, x), lambda: run(fused, x), warmup=1, repeats=3)
    assert result.equal and result.max_abs_diff < 1e-5
    assert result.speedup == pytest.approx(result.baseline_ms / result.optimized_ms)
    wrong = compare("wrong", lambda: run(mlp, x), lambda: run(mlp, x) + 1, warmup=0, repeats=1)
    assert not wrong.equal and wrong.to_dict()["equal"] is False
    assert wrong.max_abs_diff == pytest.approx(1.0)


def test_compare_times_are_the_medians_the_clock_recorded(monkeypatch):
    from tt_perf.timing import CLOCKS

    now = [0.0]
    costs = iter([0.003, 0.001] * 2 + [0.003, 0.001, 0.009, 0.001, 0.003, 0.002])  # 2 untimed pairs, 3 timed

    def work(value):
        def run_once():
            now[0] += next(costs)
            return np.full(3, value)
        return run_once

    monkeypatch.setitem(CLOCKS, "fake", lambda: now[0])
    result = compare("fake", work(1.0), work(1.0), warmup=1, repeats=3, clock="fake")
    # baseline took 3, 9, 3 ms (median 3); optimised 1, 1, 2 ms (median 1)
    assert (result.baseline_ms, result.optimized_ms) == pytest.approx((3.0, 1.0))
    assert result.speedup == pytest.approx(3.0) and result.to_dict()["speedup"] == pytest.approx(3.0)
    assert result.equal and result.max_abs_diff == 0.0


def test_compare_checks_its_clock_and_counts_before_running():
    from tt_perf import TimingError

    def never():
        raise AssertionError("compare() ran a callable before checking its arguments")

    with pytest.raises(TimingError, match="clock must be one of"):
        compare("x", never, never, clock="gpu")
    with pytest.raises(TimingError, match="repeats >= 1"):
        compare("x", never, never, repeats=0)


def test_blas_threads():
    if not threadpoolctl_available():
        with pytest.raises(tt_core.TinyTorchError, match="threadpoolctl"), blas_threads(1):
            pass
        return
    from threadpoolctl import threadpool_info

    with blas_threads(1):
        assert all(info["num_threads"] == 1 for info in threadpool_info() if info["user_api"] == "blas")


def test_identity():
    x = Tensor(np.ones(3))
    assert Identity()(x) is x


def test_folding_across_a_max_pool_only_with_positive_scales(rng):
    tt_core.manual_seed(0)
    model = tt_core.Sequential(tt_data.Conv2d(2, 3, 3, padding=1, bias=False), tt_data.MaxPool2d(2),
                               tt_data.BatchNorm2d(3), tt_core.ReLU())
    bn = model[2]
    bn.running_mean.data = rng.standard_normal(3).astype(np.float32)
    bn.running_var.data = rng.uniform(0.5, 2, 3).astype(np.float32)
    bn.weight.data = np.array([0.5, 1.2, 2.0], np.float32)
    model.eval()
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    folded = fold_batchnorms(model)
    assert [type(m).__name__ for m in folded] == ["Conv2d", "MaxPool2d", "Identity", "ReLU"]
    np.testing.assert_allclose(run(folded, x), run(model, x), atol=1e-5)
    bn.weight.data[1] = -1.0  # a negative scale does not commute with max: left alone
    assert type(fold_batchnorms(model)[2]).__name__ == "BatchNorm2d"

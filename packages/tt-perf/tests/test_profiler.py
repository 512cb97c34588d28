import numpy as np
import pytest
import tt_core
from tt_core import Module, Parameter, Tensor
from tt_perf import ProfileError, TimingError, profile
from tt_perf.flops import attention_flops, conv2d_flops
from tt_perf.timing import CLOCKS


def test_mlp_flops_params_and_memory_match_hand_counts(mlp, rng):
    x = rng.random((8, 64), dtype=np.float32)
    report = profile(mlp, x, warmup=1, repeats=3)
    # Linear: 2*N*in*out multiply-adds + N*out bias adds; ReLU: one max per element
    linears = [2 * 8 * 64 * 32 + 8 * 32, 2 * 8 * 32 * 16 + 8 * 16, 2 * 8 * 16 * 10 + 8 * 10]
    relus = [8 * 32, 8 * 16]
    assert [layer.name for layer in report.layers] == ["0", "1", "2", "3", "4"]
    assert report.layer("0").flops == linears[0]
    assert report.total_flops == sum(linears) + sum(relus)
    assert report.total_params == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert report.layer("2").params == 32 * 16 + 16
    assert report.layer("4").output_shape == (8, 10)
    assert report.activation_bytes == 4 * 8 * (32 + 32 + 16 + 16 + 10)
    assert report.latency.repeats == 3 and report.latency.warmup == 1


def test_profiling_leaves_the_model_unchanged(mlp, rng):
    x = Tensor(rng.random((4, 64), dtype=np.float32))
    before = mlp(x).data
    profile(mlp, x, warmup=0, repeats=1)
    assert all("forward" not in m.__dict__ for m in mlp.modules())
    np.testing.assert_array_equal(mlp(x).data, before)


class Doubler(Module):
    """A third-party layer that declares its own cost."""

    def forward(self, x):
        return x * 2.0

    def flops(self, input_shape):
        return int(np.prod(input_shape))


class Mystery(Module):
    def forward(self, x):
        return x + 1.0


def test_third_party_layers_declare_flops_and_unknown_ones_are_flagged(rng):
    model = tt_core.Sequential(tt_core.Linear(4, 6), Doubler(), Mystery())
    report = profile(model, rng.random((3, 4), dtype=np.float32), warmup=0, repeats=1)
    assert report.layer("1").flops == 3 * 6
    assert report.layer("2").flops is None
    assert report.unknown == ["2"]
    assert report.total_flops == 2 * 3 * 4 * 6 + 3 * 6 + 3 * 6
    assert any("flops(input_shape)" in note for note in report.notes)


def test_extra_counters_by_class_name(rng):
    model = tt_core.Sequential(Mystery())
    report = profile(model, rng.random((2, 5), dtype=np.float32), warmup=0, repeats=1,
                     counters={"Mystery": lambda module, inputs, output: 7})
    assert report.total_flops == 7


def test_conv_and_attention_counters_by_hand():
    class Conv:
        weight = Tensor(np.zeros((8, 3, 3, 3), dtype=np.float32))
        bias = None

    # 2 * (N * C_out * H_out * W_out) * C_in * kh * kw
    assert conv2d_flops(Conv(), [(2, 3, 10, 10)], (2, 8, 8, 8)) == 2 * (2 * 8 * 8 * 8) * 3 * 3 * 3

    class Attention:
        num_heads = 4

    b, t, e = 2, 5, 16
    expected = 2 * (2 * b * t * t * e) + 6 * b * 4 * t * t
    assert attention_flops(Attention(), [(b, t, e)], (b, t, e)) == expected
    # one query over 8 keys of a separate key input (B, 8, E)
    crossed = 2 * (2 * b * 1 * 8 * e) + 6 * b * 4 * 1 * 8
    assert attention_flops(Attention(), [(b, 1, e), (b, 8, e), (b, 8, e)], (b, 1, e)) == crossed


def test_table_and_plot(mlp, rng, tmp_path):
    from rich.console import Console

    report = profile(mlp, rng.random((2, 64), dtype=np.float32), warmup=0, repeats=2)
    console = Console(record=True, width=140)
    console.print(report.table())
    text = console.export_text()
    assert "Linear" in text and "total" in text and "GFLOP/s" in text
    path = report.plot(tmp_path / "profile.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = report.to_dict()
    assert summary["total_flops"] == report.total_flops and len(summary["layers"]) == 5


def test_plugins_register_flop_counters_by_class_name(rng, plugin_component):
    plugin_component("flop_counter", "Mystery", lambda module, inputs, output: 11)
    report = profile(tt_core.Sequential(Mystery()), rng.random((2, 5), dtype=np.float32), warmup=0, repeats=1)
    assert report.total_flops == 11 and report.unknown == []


def test_a_plugin_counter_is_gone_after_its_test(rng):
    report = profile(tt_core.Sequential(Mystery()), rng.random((2, 5), dtype=np.float32), warmup=0, repeats=1)
    assert report.unknown == ["0"]


# -- times: a clock that only the layers move, so every figure is known exactly --------------


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Costs(Module):
    """A leaf that takes ``cost`` seconds of the fake clock and declares 1 GFLOP per second of it."""

    def __init__(self, clock, cost):
        super().__init__()
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.now += self.cost
        return x

    def flops(self, input_shape):
        return int(1e9 * self.cost)


class Outer(Module):
    """Own work (``cost`` seconds, a parameter) around a child's."""

    def __init__(self, clock, cost, inner):
        super().__init__()
        self.clock, self.cost, self.inner = clock, cost, inner
        self.scale = Parameter(np.ones(1, np.float32))

    def forward(self, x):
        self.clock.now += self.cost
        return self.inner(x)


def test_self_times_and_latency_are_what_the_clock_measured(monkeypatch, rng):
    clock = FakeClock()
    monkeypatch.setitem(CLOCKS, "fake", clock)
    model = tt_core.Sequential(Costs(clock, 0.25), Outer(clock, 0.5, Costs(clock, 0.125)))
    report = profile(model, rng.random((2, 3), dtype=np.float32), warmup=2, repeats=5, clock="fake")
    assert [layer.name for layer in report.layers] == ["0", "1", "1.inner"]
    # self time: the outer layer's own 0.5 s, not the 0.625 s it took with its child
    assert [layer.latency for layer in report.layers] == pytest.approx([0.25, 0.5, 0.125])
    assert report.latency.median == pytest.approx(0.875) and report.latency.iqr_ms == pytest.approx(0.0)
    assert report.latency.repeats == 5
    assert report.total_flops == int(1e9 * 0.375)
    assert report.gflops_per_second == pytest.approx(0.375 / 0.875)
    # 2 warm-up and 5 instrumented passes, then 1 warm-up and 5 timed ones
    assert clock.now == pytest.approx(0.875 * (2 + 5 + 1 + 5))


# -- what profile() refuses, before running the model -----------------------------------------


class Untouchable(Module):
    def forward(self, x):
        raise AssertionError("profile() ran the model on input it should have refused")


@pytest.mark.parametrize("example, message", [
    ("hello", r"the example input is text \('hello'\), not numbers"),
    (b"\x00\x01", "is text"),
    ((np.ones((2, 3)), "mask"), "argument 1 of the example input is text"),
    ([[1.0, 2.0], [3.0]], "not a rectangular array"),
    (np.array([["a", "b"]]), r"not numbers \(dtype <U1\)"),
    (None, "needs an example input to run the model on, got NoneType"),
    ((), "needs an example input"),
    (3.0, "got float"),
])
def test_example_inputs_that_are_not_arrays_are_refused(example, message):
    with pytest.raises(ProfileError, match=message):
        profile(Untouchable(), example, warmup=0, repeats=1)


@pytest.mark.parametrize("options, message", [
    ({"clock": "gpu"}, r"clock must be one of \['cpu', 'wall'\], got 'gpu'"),
    ({"clock": None}, "clock must be one of"),
    ({"repeats": 0}, "repeats >= 1"),
    ({"repeats": 2.5}, "whole numbers"),
    ({"warmup": -1}, "warmup >= 0"),
])
def test_clock_and_counts_are_checked_before_the_model_runs(options, message):
    with pytest.raises(TimingError, match=message):
        profile(Untouchable(), np.ones((2, 3), np.float32), **options)


def test_profile_takes_modules_only():
    with pytest.raises(ProfileError, match="takes a tt_core.Module, got function"):
        profile(lambda x: x, np.ones(3))


def test_errors_are_tinytorch_and_value_errors():
    with pytest.raises(tt_core.TinyTorchError):
        profile(Untouchable(), "hello")
    with pytest.raises(ValueError):
        profile(Untouchable(), np.ones(2), clock="gpu")

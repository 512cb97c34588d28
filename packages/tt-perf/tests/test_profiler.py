import numpy as np
import tt_core
from tt_core import Module, Tensor
from tt_perf import profile
from tt_perf.flops import attention_flops, conv2d_flops


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
    assert report.latency.median > 0 and report.latency.repeats == 3
    assert all(layer.latency >= 0 for layer in report.layers)


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
    # one new query over 7 cached positions (past keys and values of shape (B, H, 7, E/H)) + itself
    cached = 2 * (2 * b * 1 * 8 * e) + 6 * b * 4 * 1 * 8
    assert attention_flops(Attention(), [(b, 1, e), (b, 4, 7, 4), (b, 4, 7, 4)], (b, 1, e)) == cached


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


def test_plugins_register_flop_counters_by_class_name(rng, plugin_components):
    plugin_components("flop_counter", "Mystery", lambda module, inputs, output: 11)
    report = profile(tt_core.Sequential(Mystery()), rng.random((2, 5), dtype=np.float32), warmup=0, repeats=1)
    assert report.total_flops == 11 and report.unknown == []

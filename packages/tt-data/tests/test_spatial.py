"""Convolution, pooling and batch norm: values against straightforward references (conv2d
against its plain version in the source, ``conv2d_reference``), gradients against finite
differences (tt_learn.gradcheck, float64), layers, and errors for bad input."""

import numpy as np
import pytest
import tt_core as tt
import tt_data
from tt_core.errors import ShapeError, TinyTorchError
from tt_data import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    MaxPool2d,
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    conv2d,
    max_pool2d,
)
from tt_data._scratch import SCRATCH, ScratchPool
from tt_data.spatial import conv2d_reference, sliding_windows
from tt_learn import gradcheck

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same NCHW array, laid out in NHWC memory (how conv2d writes its outputs)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def windows(x, kernel, stride, padding, dilation, fill=0.0):
    """(N, C, OH, OW, kh, kw) windows of a padded input, in float64 (the pooling references)."""
    return sliding_windows(x.astype(np.float64), kernel, stride, padding, dilation, fill)


# ----------------------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------------------

CONV_CASES = {  # name: (in, out, kernel, stride, padding, dilation, groups, bias, (H, W))
    "plain": (2, 3, 3, 1, 0, 1, 1, True, (5, 6)),
    "padding": (2, 3, 3, 1, 1, 1, 1, False, (5, 5)),
    "stride": (2, 2, 3, 2, 1, 1, 1, True, (7, 6)),
    "dilation": (2, 2, 3, 1, 2, 2, 1, True, (6, 6)),
    "groups": (4, 6, 3, 1, 1, 1, 2, True, (4, 5)),
    "depthwise": (3, 3, 3, 1, 1, 1, 3, False, (5, 4)),
    "rectangular": (2, 3, (1, 3), (2, 1), (0, 1), 1, 1, True, (5, 4)),
    "1x1": (3, 2, 1, 1, 0, 1, 1, True, (3, 3)),
    "rectangular_stride_1": (2, 3, (1, 3), 1, (0, 1), 1, 1, False, (4, 5)),
    "padding_past_kernel": (2, 3, 3, 1, 3, 1, 1, True, (4, 4)),  # input gradient by col2im at stride 1
}


def _conv_arrays(case, batch=2, dtype=np.float32):
    cin, cout, k, s, p, d, g, bias, (h, w) = case
    kernel = (k, k) if isinstance(k, int) else k
    x = randn(batch, cin, h, w, dtype=dtype)
    weight = randn(cout, cin // g, *kernel, dtype=dtype)
    b = randn(cout, dtype=dtype) if bias else None
    return x, weight, b, {"stride": s, "padding": p, "dilation": d, "groups": g}


def test_conv2d_reference_is_the_definition():
    """The plain reference against the formula, element by element, with every option at once."""
    x, w, b = randn(2, 4, 6, 5, dtype=np.float64), randn(6, 2, 2, 3, dtype=np.float64), randn(6, dtype=np.float64)
    (sh, sw), (ph, pw), (dh, dw), groups = (2, 1), (1, 2), (2, 1), 2
    out = conv2d_reference(x, w, b, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    per_group = w.shape[0] // groups
    assert out.shape == (2, 6, 3, 7) and out.dtype == np.float64
    for n, o, y, z in np.ndindex(out.shape):
        first = (o // per_group) * w.shape[1]
        total = b[o]
        for c, i, j in np.ndindex(w.shape[1:]):
            total += w[o, c, i, j] * padded[n, first + c, y * sh + i * dh, z * sw + j * dw]
        assert out[n, o, y, z] == pytest.approx(total, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_values_match_reference(name, layout):
    x, w, b, options = _conv_arrays(CONV_CASES[name])
    if layout == "channels_last":
        x = channels_last(x)
    out = conv2d(tt.Tensor(x), tt.Tensor(w), None if b is None else tt.Tensor(b), **options)
    expected = conv2d_reference(x, w, b, **options)
    assert out.shape == expected.shape
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-4)


def via_channels_last(x: tt.Tensor) -> tt.Tensor:
    """``x`` itself, laid out channels-last by a 1x1 identity convolution (gradients flow
    through it; gradcheck perturbs only C-contiguous inputs, so the layout is made inside)."""
    channels = x.shape[1]
    identity = tt.Tensor(np.eye(channels, dtype=x.dtype).reshape(channels, channels, 1, 1))
    return conv2d(x, identity)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_gradcheck(name, layout):
    x, w, b, options = _conv_arrays(CONV_CASES[name], batch=1, dtype=np.float64)
    arrange = via_channels_last if layout == "channels_last" else (lambda t: t)
    inputs = [x, w] if b is None else [x, w, b]
    assert gradcheck(lambda x, *wb: conv2d(arrange(x), *wb, **options), inputs)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", ["padding", "groups", "stride"])
def test_conv2d_in_chunks_of_images(name, layout, monkeypatch):
    """im2col a few images at a time (here one, and two with a shorter last chunk) gives the
    same output and gradients as all images at once, and passes the finite-difference check."""
    x, w, b, options = _conv_arrays(CONV_CASES[name], batch=3, dtype=np.float64)
    arrange = via_channels_last if layout == "channels_last" else (lambda t: t)
    inputs = [x, w] if b is None else [x, w, b]

    def output_and_grads():
        tensors = [tt.Tensor(a, requires_grad=True) for a in inputs]
        out = conv2d(arrange(tensors[0]), *tensors[1:], **options)
        out.backward(np.cos(np.arange(out.data.size)).reshape(out.shape))
        return [out.data.copy()] + [t.grad for t in tensors], out.shape

    whole, (_, _, out_h, out_w) = output_and_grads()
    one_image = out_h * out_w * w[0].size * options["groups"] * x.dtype.itemsize  # its im2col rows
    for images in (1, 2):
        monkeypatch.setattr(tt_data.spatial, "CHUNK_BYTES", images * one_image)
        for got, expected in zip(output_and_grads()[0], whole):  # float32: the sums' order differs
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert gradcheck(lambda x, *wb: conv2d(arrange(x), *wb, **options), inputs)


def test_conv2d_writes_channels_last_and_reads_either_layout():
    x = randn(2, 3, 5, 5)
    out = via_channels_last(tt.Tensor(x))
    assert out.data.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_allclose(out.data, x, atol=1e-6)


def test_conv2d_skips_the_input_gradient_when_not_needed():
    x, w, _b, _options = _conv_arrays(CONV_CASES["padding"])
    weight = tt.Tensor(w, requires_grad=True)
    conv2d(tt.Tensor(x), weight, padding=1).sum().backward()
    expected = windows(x, (3, 3), (1, 1), (1, 1), (1, 1)).sum(axis=(0, 2, 3))  # d sum / d w[o, c, i, j]
    np.testing.assert_allclose(weight.grad.data, np.broadcast_to(expected, w.shape), rtol=1e-4)


@pytest.mark.parametrize("name", ["padding", "stride", "padding_past_kernel"])
def test_conv2d_input_gradient_alone_with_a_frozen_weight(name):
    """A weight without a gradient (a frozen layer): the input gradient is the one computed
    alongside the weight gradient, by either route (a convolution at stride 1, col2im else)."""
    x, w, _b, options = _conv_arrays(CONV_CASES[name])
    grads = []
    for weight_needs_grad in (True, False):
        xt, wt = tt.Tensor(x, requires_grad=True), tt.Tensor(w, requires_grad=weight_needs_grad)
        out = conv2d(xt, wt, **options)
        out.backward(np.cos(np.arange(out.data.size)).reshape(out.shape).astype(x.dtype))
        grads.append(xt.grad)
        assert (wt.grad is None) != weight_needs_grad
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)


def test_stacked_convolutions_of_the_same_shape_share_buffers_correctly():
    """Two convolutions with identical shapes in one graph reuse the same scratch buffers."""
    x = randn(1, 2, 5, 5, dtype=np.float64)
    w1, w2 = randn(2, 2, 3, 3, dtype=np.float64), randn(2, 2, 3, 3, dtype=np.float64)
    assert gradcheck(lambda x, a, b: conv2d(conv2d(x, a, padding=1), b, padding=1), [x, w1, w2])


def test_reused_buffers_keep_their_zero_padding():
    """Convolutions whose im2col matrices have one shape but zero padding in other places
    (padding 2 with dilation 2, then padding 1 with dilation 1 on a larger image) each get
    the reference values, in either order."""
    w = randn(3, 2, 3, 3)
    cases = [(randn(2, 2, 6, 6), {"padding": 2, "dilation": 2}), (randn(2, 2, 6, 6), {"padding": 1})]
    for x, options in cases + cases[::-1]:
        np.testing.assert_allclose(conv2d(tt.Tensor(x), tt.Tensor(w), **options).data,
                                   conv2d_reference(x, w, **options), rtol=1e-5, atol=1e-5)


def test_scratch_buffers_are_reused_from_call_to_call():
    SCRATCH.clear()
    x = tt.Tensor(randn(2, 3, 8, 8))
    w = tt.Tensor(randn(4, 3, 3, 3), requires_grad=True)
    conv2d(x, w, padding=1).sum().backward()
    held = SCRATCH.nbytes
    assert held > 0  # the im2col chunks and their gradient, given back
    conv2d(x, w, padding=1).sum().backward()  # the same buffers again, nothing new
    assert SCRATCH.nbytes == held


def test_scratch_pool_reuses_by_key_and_respects_its_limit():
    pool = ScratchPool(max_bytes=1000)
    a = pool.take("k", (10,), np.float32)
    assert not a.any()
    pool.give("k", a)
    assert pool.take("k", (10,), np.float32) is a
    pool.give("big", np.zeros(1000, dtype=np.float32))  # 4000 bytes: over the limit, dropped
    assert pool.nbytes == 0


# ----------------------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------------------

POOL_CASES = {  # name: (kernel, stride, padding, dilation)
    "2x2": (2, None, 0, 1),
    "3x3 stride 2 padded": (3, 2, 1, 1),
    "overlapping": (3, 1, 0, 1),
    "rectangular": ((2, 3), (1, 2), (1, 1), 1),
    "dilated": (2, 1, 1, 2),
}


def _pool_options(name, with_dilation=True):
    k, s, p, d = POOL_CASES[name]
    options = {"kernel_size": k, "stride": s, "padding": p}
    if with_dilation:
        options["dilation"] = d
    return options


def _pool_geometry(options):
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    k = pair(options["kernel_size"])
    s = k if options["stride"] is None else pair(options["stride"])
    return k, s, pair(options["padding"]), pair(options.get("dilation", 1))


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_max_pool2d_values_and_gradcheck(name, layout):
    x = randn(2, 3, 6, 7)
    arrange = via_channels_last if layout == "channels_last" else (lambda t: t)
    options = _pool_options(name)
    expected = windows(x, *_pool_geometry(options), fill=-np.inf).max(axis=(4, 5))
    out = max_pool2d(arrange(tt.Tensor(x)), **options)
    np.testing.assert_array_equal(out.data, expected.astype(np.float32))
    assert gradcheck(lambda t: max_pool2d(arrange(t), **options), [x[:1].astype(np.float64)])


@pytest.mark.parametrize("name", [n for n in sorted(POOL_CASES) if POOL_CASES[n][3] == 1])
def test_avg_pool2d_values_and_gradcheck(name):
    x = randn(2, 3, 6, 7)
    options = _pool_options(name, with_dilation=False)
    expected = windows(x, *_pool_geometry(options)).mean(axis=(4, 5))
    np.testing.assert_allclose(avg_pool2d(tt.Tensor(x), **options).data, expected, rtol=1e-5, atol=1e-6)
    assert gradcheck(lambda t: avg_pool2d(t, **options), [x[:1].astype(np.float64)])


def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum():
    x = tt.Tensor(np.zeros((1, 1, 2, 2), dtype=np.float32), requires_grad=True)
    max_pool2d(x, 2).sum().backward()
    assert x.grad.data.ravel().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_adaptive_avg_pool2d():
    x = randn(2, 3, 4, 6)
    np.testing.assert_allclose(adaptive_avg_pool2d(tt.Tensor(x), 1).data, x.mean(axis=(2, 3), keepdims=True), rtol=1e-6)
    expected = x.reshape(2, 3, 2, 2, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(adaptive_avg_pool2d(tt.Tensor(x), (2, 2)).data, expected, rtol=1e-6)
    assert gradcheck(lambda t: adaptive_avg_pool2d(t, (2, 3)), [x[:1].astype(np.float64)])
    with pytest.raises(ShapeError, match="divide"):
        adaptive_avg_pool2d(tt.Tensor(x), (3, 3))


# ----------------------------------------------------------------------------------------
# batch_norm
# ----------------------------------------------------------------------------------------


def test_batch_norm_training_normalises_and_updates_running_stats():
    x = randn(8, 3, 4, 4) * 3 + 2
    weight, bias = randn(3), randn(3)
    running_mean, running_var = np.zeros(3, np.float32), np.ones(3, np.float32)
    out = batch_norm(tt.Tensor(x), running_mean, running_var, tt.Tensor(weight), tt.Tensor(bias),
                     training=True, momentum=0.1, eps=1e-5)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * weight[:, None, None] + bias[:, None, None]
    np.testing.assert_allclose(out.data, expected, rtol=1e-4, atol=1e-5)
    count = x.size // 3
    np.testing.assert_allclose(running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * var * count / (count - 1), rtol=1e-5)


def test_batch_norm_eval_uses_running_stats():
    x = randn(4, 3, 2, 2)
    mean, var = randn(3), np.abs(randn(3)) + 0.5
    out = batch_norm(tt.Tensor(x), mean, var, training=False, eps=1e-5)
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 2, 3, 2), (4, 3)])
def test_batch_norm_gradcheck(training, shape):
    x = randn(*shape, dtype=np.float64) * 2 + 1
    channels = shape[1]
    stats = (randn(channels, dtype=np.float64), np.abs(randn(channels, dtype=np.float64)) + 0.5)
    weight, bias = randn(channels, dtype=np.float64), randn(channels, dtype=np.float64)
    assert gradcheck(lambda x, w, b: batch_norm(x, *stats, w, b, training=training, momentum=0.0), [x, weight, bias])


def test_batch_norm_keeps_channels_last_layout():
    x = channels_last(randn(2, 3, 4, 4))
    out = batch_norm(tt.Tensor(x), None, None, training=True)
    assert out.data.transpose(0, 2, 3, 1).flags.c_contiguous


# ----------------------------------------------------------------------------------------
# every op tt-data registers has a gradcheck case above
# ----------------------------------------------------------------------------------------

GRADCHECKED = {"conv2d", "max_pool2d", "avg_pool2d", "batch_norm"}


def test_every_registered_op_has_a_gradient_rule_and_a_gradcheck_case():
    registry = tt.get_registry()
    ours = {c.name for c in registry if c.kind == "op" and c.dist == "tt-data"}
    assert ours, "tt-data registers no ops (is the package installed?)"
    assert ours <= GRADCHECKED, f"ops without a gradcheck test: {sorted(ours - GRADCHECKED)}"
    assert all(registry.get("op", name).backward is not None for name in ours)  # each op with its rule


# ----------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------


def test_conv2d_layer_shapes_and_torch_style_init():
    tt.manual_seed(0)
    layer = Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert layer.weight.shape == (6, 2, 3, 3) and layer.bias.shape == (6,)
    bound = 1 / np.sqrt(2 * 3 * 3)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.8 * bound
    assert layer(tt.randn(2, 4, 9, 9)).shape == (2, 6, 5, 5)
    assert Conv2d(3, 2, 1, bias=False).bias is None
    assert "groups=2" in repr(layer)


def test_batchnorm2d_layer_train_and_eval():
    layer = BatchNorm2d(3, momentum=0.5)
    x = tt.Tensor(randn(4, 3, 2, 2) + 5)
    train_out = layer(x)
    np.testing.assert_allclose(train_out.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(layer.running_mean.data, 0.5 * x.data.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert set(layer.state_dict()) == {"weight", "bias", "running_mean", "running_var"}
    layer.eval()
    before = layer.running_mean.data.copy()
    eval_out = layer(x)
    np.testing.assert_array_equal(layer.running_mean.data, before)  # eval does not update
    assert not np.allclose(eval_out.data, train_out.data)
    plain = BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    assert list(plain.parameters()) == [] and plain.state_dict() == {}
    np.testing.assert_allclose(plain(x).data.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # batch stats even in eval


def test_pooling_flatten_and_adaptive_layers():
    x = tt.randn(2, 3, 8, 8)
    assert MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert MaxPool2d(3, stride=2, padding=1)(x).shape == (2, 3, 4, 4)
    assert AvgPool2d(4)(x).shape == (2, 3, 2, 2)
    assert AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert Flatten()(x).shape == (2, 192)
    assert Flatten(start_axis=2)(x).shape == (2, 3, 64)
    np.testing.assert_array_equal(Flatten()(tt.Tensor(channels_last(x.data))).data, x.data.reshape(2, -1))


def test_a_small_cnn_learns():
    """A few SGD steps on a fixed batch drive the loss down (the ops compose in a graph)."""
    tt.manual_seed(0)
    net = tt.Sequential(
        Conv2d(1, 4, 3, padding=1, bias=False), MaxPool2d(2), BatchNorm2d(4), tt.ReLU(),
        Conv2d(4, 8, 3, padding=1), BatchNorm2d(8), tt.ReLU(), AdaptiveAvgPool2d(1), Flatten(), tt.Linear(8, 2),
    )
    x = tt.Tensor(randn(16, 1, 8, 8))
    labels = (x.data[:, 0, :4].mean(axis=(1, 2)) > x.data[:, 0, 4:].mean(axis=(1, 2))).astype(np.float32)
    target = tt.Tensor(np.stack([labels, 1 - labels], axis=1))
    losses = []
    for _ in range(30):
        net.zero_grad()
        loss = ((net(x) - target) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        for p in net.parameters():
            p.data -= 0.1 * p.grad.data
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------


def test_conv2d_channel_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"\(2, 3, 8, 8\).*\(4, 2, 3, 3\)"):
        conv2d(tt.randn(2, 3, 8, 8), tt.randn(4, 2, 3, 3))
    with pytest.raises(ShapeError, match=r"\(2, 5, 8, 8\).*\(4, 3, 3, 3\)"):
        Conv2d(3, 4, 3)(tt.randn(2, 5, 8, 8))


def test_conv2d_bad_input_is_refused_with_a_reason():
    with pytest.raises(ShapeError, match="4-D"):
        conv2d(tt.randn(3, 8, 8), tt.randn(4, 3, 3, 3))
    with pytest.raises(ShapeError, match="too small"):
        conv2d(tt.randn(1, 3, 2, 2), tt.randn(4, 3, 5, 5))
    with pytest.raises(ShapeError, match="bias"):
        conv2d(tt.randn(1, 3, 4, 4), tt.randn(4, 3, 3, 3), tt.randn(3))
    with pytest.raises(ValueError, match="stride"):
        conv2d(tt.randn(1, 3, 4, 4), tt.randn(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match="groups"):
        Conv2d(3, 4, 3, groups=2)


def test_pool_and_batch_norm_errors():
    with pytest.raises(ShapeError, match="4-D"):
        max_pool2d(tt.randn(3, 4, 4), 2)
    with pytest.raises(ValueError, match="padding"):
        max_pool2d(tt.randn(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\).*\(2, 4, 5, 5\)"):
        BatchNorm2d(3)(tt.randn(2, 4, 5, 5))
    with pytest.raises(ShapeError, match=r"\(2, 4\).*running_mean has shape \(3,\)"):
        batch_norm(tt.randn(2, 4), np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="more than one value"):
        batch_norm(tt.randn(1, 4), None, None, training=True)
    with pytest.raises(TinyTorchError, match="evaluation mode"):
        batch_norm(tt.randn(2, 4), None, None, training=False)


def test_components_are_registered():
    registry = tt.get_registry()
    for name in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Flatten", "AdaptiveAvgPool2d"):
        assert registry.get("layer", name) is getattr(tt_data, name)


# ----------------------------------------------------------------------------------------
# conv2d by Winograd F(2x2, 3x3)
# ----------------------------------------------------------------------------------------

WINOGRAD_SHAPES = {"even": (2, 4, 3, 6, 4), "odd": (2, 3, 4, 5, 7), "batch 1, 1x1 image": (1, 2, 3, 1, 1)}  # N, C, O, H, W


def _conv_both_ways(x, w, b, monkeypatch):
    """Output and gradients of x, w, b by Winograd and by im2col (thresholds patched)."""
    results = []
    for threshold in (1, 10**9):
        monkeypatch.setattr(tt_data.spatial, "WINOGRAD_MIN_CHANNELS", threshold)
        xt, wt, bt = (tt.Tensor(a, requires_grad=True) for a in (x, w, b))
        out = conv2d(xt, wt, bt, padding=1)
        out.backward(np.cos(np.arange(out.data.size)).reshape(out.shape).astype(x.dtype))
        results.append((out.data, xt.grad, wt.grad, bt.grad))
    return results


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", sorted(WINOGRAD_SHAPES))
def test_winograd_matches_im2col_and_the_reference(name, layout, monkeypatch):
    n, c, o, h, w = WINOGRAD_SHAPES[name]
    x, weight, bias = randn(n, c, h, w), randn(o, c, 3, 3), randn(o)
    if layout == "channels_last":
        x = channels_last(x)
    winograd, im2col = _conv_both_ways(x, weight, bias, monkeypatch)
    np.testing.assert_allclose(winograd[0], conv2d_reference(x, weight, bias, padding=1), rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(winograd, im2col):
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("name", sorted(WINOGRAD_SHAPES))
def test_winograd_gradcheck(name, monkeypatch):
    monkeypatch.setattr(tt_data.spatial, "WINOGRAD_MIN_CHANNELS", 1)
    _, c, o, h, w = WINOGRAD_SHAPES[name]
    inputs = [randn(1, c, h, w, dtype=np.float64), randn(o, c, 3, 3, dtype=np.float64), randn(o, dtype=np.float64)]
    assert gradcheck(lambda x, wt, b: conv2d(via_channels_last(x), wt, b, padding=1), inputs)
    assert gradcheck(lambda x, wt: conv2d(x, wt, padding=1), inputs[:2])


def test_winograd_is_used_only_where_it_applies(monkeypatch):
    calls = []
    monkeypatch.setattr(tt_data.spatial, "WINOGRAD_MIN_CHANNELS", 4)
    real = tt_data.spatial._winograd_conv
    monkeypatch.setattr(tt_data.spatial, "_winograd_conv", lambda *a: calls.append(1) or real(*a))
    x = tt.Tensor(randn(1, 4, 6, 6))
    cases = {  # options: uses Winograd
        (3, 1, 1, 1, 1): True, (3, 2, 1, 1, 1): False, (3, 1, 0, 1, 1): False, (3, 1, 2, 2, 1): False,
        (3, 1, 1, 1, 2): False, (5, 1, 2, 1, 1): False,
    }
    for (k, s, p, d, g), expected in cases.items():
        calls.clear()
        conv2d(x, tt.Tensor(randn(4, 4 // g, k, k)), stride=s, padding=p, dilation=d, groups=g)
        assert bool(calls) == expected, (k, s, p, d, g)
    calls.clear()
    conv2d(tt.Tensor(randn(1, 3, 6, 6)), tt.Tensor(randn(4, 3, 3, 3)), padding=1)  # too few channels
    conv2d(x, tt.Tensor(randn(2, 4, 3, 3)), padding=1)  # enough in, too few out: harmonic mean 2.7
    assert not calls

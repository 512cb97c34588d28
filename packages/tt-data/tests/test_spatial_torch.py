"""The spatial layers against PyTorch (the oracle): outputs and gradients in float32 agree to
1e-4. Skipped when torch is not installed."""

import numpy as np
import pytest
import tt_core as tt
from tt_data import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-4, "atol": 1e-4}
rng = np.random.default_rng(1)


def run_both(tt_layer, torch_layer, x: np.ndarray):
    """Forward and backward (with the same random output gradient) through both layers;
    returns the outputs and input gradients, tt's first."""
    tx = tt.Tensor(x, requires_grad=True)
    out = tt_layer(tx)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(grad)
    px = torch.tensor(x, requires_grad=True)
    pout = torch_layer(px)
    pout.backward(torch.tensor(grad))
    np.testing.assert_allclose(out.data, pout.detach().numpy(), **TOL)
    np.testing.assert_allclose(tx.grad.data, px.grad.numpy(), **TOL)


def copy_parameters(tt_layer, torch_layer):
    for name, param in torch_layer.named_parameters():
        getattr(tt_layer, name).data = param.detach().numpy().copy()


def assert_parameter_grads_match(tt_layer, torch_layer):
    for name, param in torch_layer.named_parameters():
        np.testing.assert_allclose(getattr(tt_layer, name).grad.data, param.grad.numpy(), **TOL, err_msg=name)


CONV_OPTIONS = [
    {},
    {"padding": 1},
    {"stride": 2, "padding": 1},
    {"padding": 2, "dilation": 2},
    {"padding": 1, "groups": 2},
    {"kernel_size": (3, 1), "stride": (1, 2), "padding": (1, 0), "bias": False},
]


@pytest.mark.parametrize("options", CONV_OPTIONS, ids=str)
def test_conv2d_matches_torch(options):
    options = dict(options)
    kernel = options.pop("kernel_size", 3)
    ours, theirs = Conv2d(4, 6, kernel, **options), torch.nn.Conv2d(4, 6, kernel, **options)
    copy_parameters(ours, theirs)
    run_both(ours, theirs, rng.standard_normal((3, 4, 9, 8)).astype(np.float32))
    assert_parameter_grads_match(ours, theirs)


@pytest.mark.parametrize("options", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                                     {"kernel_size": 2, "stride": 1, "dilation": 2}], ids=str)
def test_max_pool2d_matches_torch(options):
    run_both(MaxPool2d(**options), torch.nn.MaxPool2d(**options), rng.standard_normal((2, 3, 8, 7)).astype(np.float32))


@pytest.mark.parametrize("options", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1}], ids=str)
def test_avg_pool2d_matches_torch(options):
    run_both(AvgPool2d(**options), torch.nn.AvgPool2d(**options), rng.standard_normal((2, 3, 8, 7)).astype(np.float32))


@pytest.mark.parametrize("size", [1, 2])
def test_adaptive_avg_pool2d_matches_torch(size):
    run_both(AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), rng.standard_normal((2, 3, 4, 6)).astype(np.float32))


def test_flatten_matches_torch():
    run_both(Flatten(), torch.nn.Flatten(), rng.standard_normal((2, 3, 4, 5)).astype(np.float32))


def test_batchnorm2d_matches_torch_in_training_and_eval():
    ours, theirs = BatchNorm2d(5, momentum=0.3), torch.nn.BatchNorm2d(5, momentum=0.3)
    theirs.weight.data.uniform_(0.5, 1.5)
    theirs.bias.data.uniform_(-0.5, 0.5)
    copy_parameters(ours, theirs)
    for _ in range(3):  # the running statistics follow torch's step by step
        x = (rng.standard_normal((6, 5, 4, 4)) * 2 + 1).astype(np.float32)
        run_both(ours, theirs, x)
        np.testing.assert_allclose(ours.running_mean.data, theirs.running_mean.numpy(), **TOL)
        np.testing.assert_allclose(ours.running_var.data, theirs.running_var.numpy(), **TOL)
    assert_parameter_grads_match(ours, theirs)
    ours.eval(), theirs.eval()
    ours.zero_grad(), theirs.zero_grad()
    run_both(ours, theirs, rng.standard_normal((2, 5, 3, 3)).astype(np.float32))
    assert_parameter_grads_match(ours, theirs)


def test_a_cnn_matches_torch_end_to_end():
    """Conv, pool, batch norm, ReLU, global pooling and a linear head, stacked: same output
    and the same gradient for every parameter."""

    def build(nn):
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
        )

    from types import SimpleNamespace

    ours = build(SimpleNamespace(
        Sequential=tt.Sequential, Conv2d=Conv2d, MaxPool2d=MaxPool2d, BatchNorm2d=BatchNorm2d, ReLU=tt.ReLU,
        AdaptiveAvgPool2d=AdaptiveAvgPool2d, Flatten=Flatten, Linear=tt.Linear,
    ))
    theirs = build(torch.nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items() if "num_batches" not in k})
    run_both(ours, theirs, rng.standard_normal((4, 3, 8, 8)).astype(np.float32))
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), **TOL, err_msg=name)

"""Losses: values against hand-computed references, gradients against finite differences,
errors for bad targets, and (with torch installed) values and gradients against PyTorch."""

import math

import numpy as np
import pytest
import tt_core as tt
from tt_core import ShapeError, Tensor
from tt_learn import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    NLLLoss,
    TargetError,
    gradcheck,
)
from tt_learn import losses as L

RNG = np.random.default_rng(0)


def log_softmax_np(x, axis=1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# -- values ------------------------------------------------------------------------------


def test_registered_under_contract_names():
    registry = tt.get_registry()
    for name, cls in [("MSELoss", MSELoss), ("BCELoss", BCELoss), ("BCEWithLogitsLoss", BCEWithLogitsLoss),
                      ("CrossEntropyLoss", CrossEntropyLoss), ("NLLLoss", NLLLoss)]:
        assert registry.get("loss", name) is cls


def test_cross_entropy_of_uniform_logits_is_log_classes():
    loss = CrossEntropyLoss()(Tensor(np.zeros((4, 10), np.float32)), np.array([0, 3, 7, 9]))
    assert loss.item() == pytest.approx(math.log(10), rel=1e-6)


def test_cross_entropy_hand_computed():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]], np.float32)
    target = np.array([0, 1])
    # row 0: -log(e^2 / (e^2 + 1 + e^-1)); row 1: -log(e / (e + 2))
    rows = [-math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1))), -math.log(math.e / (math.e + 2))]
    assert L.cross_entropy(Tensor(logits), target).item() == pytest.approx(np.mean(rows), rel=1e-6)
    assert L.cross_entropy(Tensor(logits), target, reduction="sum").item() == pytest.approx(sum(rows), rel=1e-6)
    np.testing.assert_allclose(L.cross_entropy(Tensor(logits), target, reduction="none").data, rows, rtol=1e-6)


def test_label_smoothing_matches_the_smoothed_target_distribution():
    logits = RNG.standard_normal((5, 4)).astype(np.float32)
    target = np.array([0, 1, 2, 3, 1])
    eps = 0.2
    smooth = np.full((5, 4), eps / 4)
    smooth[np.arange(5), target] += 1 - eps
    expected = -(smooth * log_softmax_np(logits)).sum(axis=1).mean()
    assert L.cross_entropy(Tensor(logits), target, label_smoothing=eps).item() == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = Tensor(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]], np.float32))
    assert CrossEntropyLoss()(logits, np.array([0, 1])).item() == 0.0
    assert CrossEntropyLoss()(logits, np.array([1, 1])).item() == pytest.approx(1000.0)


def test_cross_entropy_with_spatial_axes_and_unbatched_input():
    logits = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)  # (N, C, H, W)
    target = RNG.integers(0, 3, (2, 4, 5))
    per_element = L.cross_entropy(Tensor(logits), target, reduction="none")
    assert per_element.shape == (2, 4, 5)
    expected = -np.take_along_axis(log_softmax_np(logits), target[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(per_element.data, expected, rtol=1e-5)
    single = L.cross_entropy(Tensor(logits[0, :, 0, 0]), np.array(target[0, 0, 0]))
    assert single.item() == pytest.approx(expected[0, 0, 0], rel=1e-5)


def test_nll_loss_picks_the_target_log_probability():
    log_probs = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32))
    loss = NLLLoss(reduction="none")(Tensor(log_probs), np.array([1, 2]))
    np.testing.assert_allclose(loss.data, [-math.log(0.2), -math.log(0.8)], rtol=1e-6)


def test_mse_hand_computed():
    a, b = np.array([1.0, 2.0, 4.0], np.float32), np.array([0.0, 2.0, 1.0], np.float32)
    assert MSELoss()(Tensor(a), b).item() == pytest.approx(10 / 3)
    assert MSELoss(reduction="sum")(Tensor(a), b).item() == pytest.approx(10)
    np.testing.assert_allclose(MSELoss(reduction="none")(Tensor(a), b).data, [1, 0, 9])


def test_bce_hand_computed_and_clamped():
    p, t = np.array([0.9, 0.2, 0.5], np.float32), np.array([1.0, 0.0, 1.0], np.float32)
    expected = [-math.log(0.9), -math.log(0.8), -math.log(0.5)]
    np.testing.assert_allclose(BCELoss(reduction="none")(Tensor(p), t).data, expected, rtol=1e-6)
    # a confident wrong probability costs 100 (PyTorch's clamp), not inf, and no nan gradient
    p = Tensor(np.array([0.0, 1.0], np.float32), requires_grad=True)
    loss = BCELoss(reduction="sum")(p, np.array([1.0, 0.0], np.float32))
    loss.backward()
    assert loss.item() == pytest.approx(200.0)
    assert np.isfinite(p.grad.data).all()


def test_bce_with_logits_equals_bce_of_sigmoid_and_is_stable():
    x = RNG.standard_normal(7).astype(np.float32) * 3
    t = RNG.random(7).astype(np.float32)
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(BCEWithLogitsLoss(reduction="none")(Tensor(x), t).data, expected, rtol=1e-5)
    huge = BCEWithLogitsLoss(reduction="none")(Tensor(np.array([1000.0, -1000.0, 1000.0], np.float32)),
                                               np.array([1.0, 0.0, 0.0], np.float32))
    np.testing.assert_allclose(huge.data, [0.0, 0.0, 1000.0])


def test_bce_with_logits_gradient_is_sigmoid_minus_target_also_at_zero():
    x = Tensor(np.array([0.0, 0.0, 2.0, -30.0], np.float32), requires_grad=True)
    t = np.array([1.0, 0.0, 0.25, 1.0], np.float32)
    L.binary_cross_entropy_with_logits(x, t, reduction="sum").backward()
    expected = 1 / (1 + np.exp(-x.data.astype(np.float64))) - t
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6, atol=1e-7)


def test_integer_binary_targets_are_accepted_as_floats():
    loss = BCEWithLogitsLoss()(Tensor(np.zeros(4, np.float32)), np.array([0, 1, 1, 0]))
    assert loss.dtype == np.float32
    assert loss.item() == pytest.approx(math.log(2))


# -- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_classification_losses(reduction):
    logits = RNG.standard_normal((4, 5))
    target = RNG.integers(0, 5, 4)
    assert gradcheck(lambda x: L.cross_entropy(x, target, reduction), [logits])
    assert gradcheck(lambda x: L.cross_entropy(x, target, reduction, label_smoothing=0.1), [logits])
    assert gradcheck(lambda x: L.nll_loss(x, target, reduction), [logits])
    spatial, spatial_target = RNG.standard_normal((2, 3, 4)), RNG.integers(0, 3, (2, 4))
    assert gradcheck(lambda x: L.cross_entropy(x, spatial_target, reduction), [spatial])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_regression_and_binary_losses(reduction):
    x, t = RNG.standard_normal((3, 4)), RNG.random((3, 4))
    probs = RNG.uniform(0.05, 0.95, (3, 4))
    assert gradcheck(lambda a, b: L.mse_loss(a, b, reduction), [x, t])
    assert gradcheck(lambda a, b: L.binary_cross_entropy_with_logits(a, b, reduction), [x * 4, t])
    assert gradcheck(lambda a, b: L.binary_cross_entropy(a, b, reduction), [probs, t])


# -- errors ------------------------------------------------------------------------------


def test_float_targets_for_cross_entropy_are_refused_with_a_hint():
    with pytest.raises(TargetError, match="integer class indices"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3), np.float32)), Tensor([0, 1]))


def test_out_of_range_targets():
    with pytest.raises(TargetError, match=r"\[0, 2\]"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3), np.float32)), np.array([0, 3]))
    with pytest.raises(TargetError):
        NLLLoss()(Tensor(np.zeros((2, 3), np.float32)), np.array([-1, 0]))


def test_shape_mismatches():
    with pytest.raises(ShapeError, match=r"needs targets of shape \(2,\)"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 3), np.float32)), np.array([0, 1, 2]))
    with pytest.raises(ShapeError, match=r"\(N, 1\)"):
        MSELoss()(Tensor(np.zeros((4, 1), np.float32)), np.zeros(4, np.float32))
    with pytest.raises(ShapeError):
        BCEWithLogitsLoss()(Tensor(np.zeros((4, 1), np.float32)), np.zeros(4, np.float32))


def test_bce_refuses_values_outside_zero_one():
    with pytest.raises(TargetError, match="probabilities in \\[0, 1\\]"):
        BCELoss()(Tensor(np.array([1.5, 0.5], np.float32)), np.array([1.0, 0.0], np.float32))


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy(Tensor(np.zeros((1, 2), np.float32)), np.array([0]), reduction="max")
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)


# -- against PyTorch ---------------------------------------------------------------------

TORCH_CASES = [
    ("cross_entropy", {}, "classes"),
    ("cross_entropy", {"label_smoothing": 0.15}, "classes"),
    ("cross_entropy", {}, "spatial"),
    ("nll_loss", {}, "classes"),
    ("mse_loss", {}, "pairs"),
    ("binary_cross_entropy_with_logits", {}, "pairs"),
    ("binary_cross_entropy", {}, "probabilities"),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,kwargs,kind", TORCH_CASES)
def test_losses_match_torch(name, kwargs, kind, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    if kind == "classes":
        x, t = rng.standard_normal((8, 6)).astype(np.float32) * 3, rng.integers(0, 6, 8)
    elif kind == "spatial":
        x, t = rng.standard_normal((2, 4, 3, 5)).astype(np.float32), rng.integers(0, 4, (2, 3, 5))
    elif kind == "pairs":
        x, t = rng.standard_normal((6, 3)).astype(np.float32) * 5, rng.random((6, 3)).astype(np.float32)
    else:
        x, t = rng.uniform(0.01, 0.99, (6, 3)).astype(np.float32), rng.random((6, 3)).astype(np.float32)
    ours_x = Tensor(x, requires_grad=True)
    ours = getattr(L, name)(ours_x, t, reduction=reduction, **kwargs)
    ours.backward(np.ones(ours.shape, np.float32))
    theirs_x = torch.tensor(x, requires_grad=True)
    theirs = getattr(torch.nn.functional, name)(theirs_x, torch.tensor(t), reduction=reduction, **kwargs)
    theirs.backward(torch.ones_like(theirs))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x.grad.data, theirs_x.grad.numpy(), rtol=1e-5, atol=1e-6)

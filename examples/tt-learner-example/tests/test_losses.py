"""BCEWithLogitsLoss against tt-learn's: values and gradients for every reduction, large
logits, dtypes, and the errors for bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core
from tt_learn import gradcheck

REDUCTIONS = ("mean", "sum", "none")
LOGITS = {
    "moderate": lambda rng, shape: rng.standard_normal(shape) * 3,
    "large": lambda rng, shape: rng.choice([-1, 1], shape) * rng.uniform(30, 1e4, shape),
    "zero": lambda rng, shape: np.zeros(shape),
}
TARGETS = {
    "labels": lambda rng, shape: rng.integers(0, 2, shape).astype(float),
    "soft": lambda rng, shape: rng.uniform(0, 1, shape),
}

DIST = "tt-learner-example"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("logits", list(LOGITS))
@pytest.mark.parametrize("targets", list(TARGETS))
@pytest.mark.parametrize("shape", [(6, 1), (2, 3, 4), ()])
def test_values_and_gradients_equal_the_builtin(pair, rng, gradients, reduction, logits, targets, shape):
    Mine, Builtin = pair("loss", "BCEWithLogitsLoss")
    arrays = [LOGITS[logits](rng, shape), TARGETS[targets](rng, shape)]
    reference_out, reference_grads = gradients(Builtin(reduction), arrays, None)
    for dist in (None, DIST):
        out, grads = gradients(Mine(reduction), arrays, dist)
        assert out.dtype == np.float32 and out.shape == (shape if reduction == "none" else ())
        assert np.isfinite(out).all() and all(np.isfinite(g).all() for g in grads)
        np.testing.assert_allclose(out, reference_out, rtol=1e-5, atol=1e-5)
        for what, g, r in zip(("logits", "targets"), grads, reference_grads):
            assert g.shape == r.shape and g.dtype == np.float32
            # the target's gradient is -x: absolute errors scale with the logits
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6, err_msg=f"gradient of the {what}")


def test_gradient_at_zero_logits_is_one_half_minus_the_target(pair):
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    x = tt_core.zeros(4, requires_grad=True)
    target = tt_core.tensor([0.0, 1.0, 0.25, 1.0])
    Mine("sum")(x, target).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.5, -0.5, 0.25, -0.5], rtol=1e-6)


def test_gradients_against_central_differences(pair, rng):
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    for reduction in REDUCTIONS:
        loss = Mine(reduction)
        assert gradcheck(loss, [rng.standard_normal((3, 4)) * 4, rng.uniform(0, 1, (3, 4))])


def test_large_logits_give_the_exact_loss(pair):
    """Confident and right: loss 0; confident and wrong by x: loss |x| (softplus(x) = x there)."""
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    x = tt_core.tensor([1e4, -1e4, 200.0, -200.0])
    loss = Mine("none")(x, tt_core.tensor([1.0, 0.0, 0.0, 1.0])).numpy()
    np.testing.assert_allclose(loss, [0.0, 0.0, 200.0, 200.0], rtol=1e-6, atol=1e-6)


def test_dtypes(pair):
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    wide = tt_core.tensor(np.array([0.3, -1.2]), dtype=np.float64)
    assert Mine()(wide, tt_core.tensor([1.0, 0.0])).dtype == np.float64
    # integer 0/1 labels are cast to the logits' dtype
    labels = np.array([1, 0])
    narrow = tt_core.tensor([0.3, -1.2])
    assert Mine()(narrow, labels).item() == pytest.approx(Mine()(narrow, labels.astype(np.float32)).item())


def test_bad_reduction(pair):
    Mine, Builtin = pair("loss", "BCEWithLogitsLoss")
    for cls in (Mine, Builtin):
        with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
            cls("avg")


def test_shapes_must_match(pair):
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    with pytest.raises(tt_core.ShapeError, match=r"logits of shape \(4, 1\) and targets of shape \(4,\) differ"):
        Mine()(tt_core.zeros(4, 1), tt_core.zeros(4))


def test_repr(pair):
    Mine, _ = pair("loss", "BCEWithLogitsLoss")
    assert "reduction='sum'" in repr(Mine("sum"))

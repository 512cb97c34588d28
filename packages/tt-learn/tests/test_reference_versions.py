"""Where the fast code hides the idea, a plain version sits beside it: each plain version
against its fast counterpart (the plain Adam step; the matmul rule's layout-keeping product)."""

import numpy as np
import pytest
from tt_core import Parameter, Tensor
from tt_learn.grad_rules import _product_laid_out_like
from tt_learn.optim import Adam, AdamW, adam_reference_step


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (Adam, {}),
        (Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
        (AdamW, {"lr": 0.01, "weight_decay": 0.05}),
    ],
    ids=["adam", "adam-options", "adamw"],
)
def test_adam_matches_the_plain_reference_over_twenty_steps(cls, kwargs):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((4, 3)).astype(np.float32)
    p = Parameter(start.copy())
    optimizer = cls([p], **kwargs)
    settings = {**optimizer.defaults, "decoupled": cls.decoupled}
    del settings["amsgrad"]
    ref, m, v = start.astype(np.float64), np.zeros((4, 3)), np.zeros((4, 3))
    for step in range(1, 21):
        grad = rng.standard_normal((4, 3)).astype(np.float32)
        p.grad = Tensor(grad)
        optimizer.step()
        ref, m, v = adam_reference_step(ref, grad.astype(np.float64), m, v, step, **settings)
        np.testing.assert_allclose(p.data, ref, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    np.testing.assert_allclose(optimizer.state[p]["exp_avg"], m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(optimizer.state[p]["exp_avg_sq"], v, rtol=1e-5, atol=1e-9)


def test_the_reference_leaves_its_inputs_unchanged():
    param, grad, m, v = np.ones(2), np.array([0.5, -1.0]), np.zeros(2), np.zeros(2)
    adam_reference_step(param, grad, m, v, step=1, lr=0.1, weight_decay=0.1)
    assert param.tolist() == [1.0, 1.0] and m.tolist() == [0.0, 0.0] and v.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("transposed", [False, True], ids=["c-contiguous", "transposed"])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5))], ids=str)
def test_the_layout_keeping_product_is_the_plain_product(shapes, transposed):
    rng = np.random.default_rng(1)
    left, right = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    expected = left @ right
    like = np.zeros(expected.shape)
    if transposed:  # a C-contiguous array seen through a transposed view, as weight.T is
        like = np.ascontiguousarray(np.swapaxes(like, -1, -2)).swapaxes(-1, -2)
    out = _product_laid_out_like(left, right, like)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert out.shape == expected.shape
    assert np.swapaxes(out, -1, -2).flags.c_contiguous == transposed

"""SGD against tt-learn's: 20-step trajectories with every option, parameter groups, skipped
parameters, state dicts (each way round) and the errors for bad hyper-parameters."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core

OPTIONS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "dampening": {"momentum": 0.9, "dampening": 0.3},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "weight decay": {"weight_decay": 0.05},
    "momentum + weight decay": {"momentum": 0.9, "weight_decay": 0.05},
    "everything": {"momentum": 0.7, "nesterov": True, "weight_decay": 0.02},
    "all but nesterov": {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.01},
}
SHAPES = [(3, 4), (5,), ()]


def make_params(rng, shapes=SHAPES):
    """Two identical sets of parameters, one for each optimizer."""
    values = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    return [[tt_core.Parameter(v.copy()) for v in values] for _ in range(2)]


def step_both(optimizers, params, grads):
    """Give both parameter sets the same gradients (None: no gradient) and step both optimizers."""
    for opt, ps in zip(optimizers, params):
        opt.zero_grad()
        for p, g in zip(ps, grads):
            p.grad = None if g is None else tt_core.tensor(g.copy())
        opt.step()


def random_grads(rng, params, skip=()):
    return [None if i in skip else rng.standard_normal(p.shape).astype(np.float32) for i, p in enumerate(params)]


def assert_same(ours, theirs, step):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=f"parameter {i} after step {step}")


@pytest.mark.parametrize("option", list(OPTIONS))
def test_trajectory_equals_the_builtin(pair, rng, option):
    Mine, Builtin = pair("optimizer", "SGD")
    ours, theirs = make_params(rng)
    optimizers = [Mine(ours, lr=0.1, **OPTIONS[option]), Builtin(theirs, lr=0.1, **OPTIONS[option])]
    for step in range(20):
        # parameter 1 has no gradient on some steps: it must be left alone (and its buffer too)
        step_both(optimizers, [ours, theirs], random_grads(rng, ours, skip={1} if step % 7 == 3 else ()))
        assert_same(ours, theirs, step)
    mine_state, builtin_state = (opt.state_dict()["state"] for opt in optimizers)
    assert mine_state.keys() == builtin_state.keys()
    for key in mine_state:
        a, b = mine_state[key]["momentum_buffer"], builtin_state[key]["momentum_buffer"]
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_default_learning_rate_and_the_gradients_stay_untouched(pair, rng):
    Mine, Builtin = pair("optimizer", "SGD")
    ours, theirs = make_params(rng)
    optimizers = [Mine(ours, momentum=0.9, weight_decay=0.1), Builtin(theirs, momentum=0.9, weight_decay=0.1)]
    assert optimizers[0].defaults == optimizers[1].defaults
    grads = random_grads(rng, ours)
    for opt, ps in zip(optimizers, (ours, theirs)):
        for p, g in zip(ps, grads):
            p.grad = tt_core.tensor(g.copy())
        opt.step()
    assert_same(ours, theirs, 0)
    for p, g in zip(ours, grads):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_parameter_groups_with_their_own_options(pair, rng):
    Mine, Builtin = pair("optimizer", "SGD")
    ours, theirs = make_params(rng)

    def groups(ps):
        return [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02, "momentum": 0.5, "nesterov": True}]

    optimizers = [Mine(groups(ours), lr=0.1, momentum=0.9, weight_decay=0.01),
                  Builtin(groups(theirs), lr=0.1, momentum=0.9, weight_decay=0.01)]
    for step in range(20):
        step_both(optimizers, [ours, theirs], random_grads(rng, ours))
        assert_same(ours, theirs, step)


@pytest.mark.parametrize("direction", ["mine -> mine", "builtin -> mine", "mine -> builtin"])
def test_state_dict_round_trip(pair, rng, direction):
    """10 steps, a state dict into a fresh optimizer over copies, 10 more steps on both:
    the copy follows the original exactly (checkpoints are interchangeable with tt-learn's)."""
    Mine, Builtin = pair("optimizer", "SGD")
    first_cls, second_cls = {"mine -> mine": (Mine, Mine), "builtin -> mine": (Builtin, Mine),
                             "mine -> builtin": (Mine, Builtin)}[direction]
    options = {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}
    original, _ = make_params(rng)
    first = first_cls(original, **options)
    for _ in range(10):
        for p, g in zip(original, random_grads(rng, original)):
            p.grad = tt_core.tensor(g)
        first.step()
    saved = first.state_dict()
    copies = [tt_core.Parameter(p.numpy().copy()) for p in original]
    second = second_cls(copies, lr=1.0)  # hyper-parameters come from the state dict
    second.load_state_dict(saved)
    assert second.param_groups[0]["momentum"] == 0.9 and second.param_groups[0]["lr"] == 0.05
    for step in range(10):
        step_both([first, second], [original, copies], random_grads(rng, original))
        assert_same(copies, original, step)


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -0.1}, "learning rate"),
    ({"momentum": -0.5}, "momentum >= 0"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"nesterov": True}, "nesterov=True needs momentum > 0 and dampening = 0"),
    ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov=True needs momentum > 0 and dampening = 0"),
])
def test_bad_hyper_parameters(pair, kwargs, message):
    Mine, Builtin = pair("optimizer", "SGD")
    for cls in (Mine, Builtin):  # the built-in one refuses them too
        with pytest.raises(ValueError):
            cls([tt_core.Parameter(np.zeros(2, dtype=np.float32))], **kwargs)
    with pytest.raises(ValueError, match=message):
        Mine([tt_core.Parameter(np.zeros(2, dtype=np.float32))], **kwargs)


def test_unknown_hyper_parameter_in_a_group(pair):
    Mine, _ = pair("optimizer", "SGD")
    with pytest.raises(TypeError, match="betas"):
        Mine([{"params": [tt_core.Parameter(np.zeros(2, dtype=np.float32))], "betas": (0.9, 0.99)}])

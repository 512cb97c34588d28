"""Optimizers and gradient clipping: hand-computed steps, parameter groups, state dicts,
invalid hyper-parameters, and (with torch installed) 20 steps against torch.optim."""

import math

import numpy as np
import pytest
import tt_core as tt
import tt_learn
from tt_core import CheckpointError, Parameter, Tensor, TinyTorchError
from tt_learn import SGD, Adam, AdamW, CrossEntropyLoss, RMSprop, clip_grad_norm_, clip_grad_value_

OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}


def param(values) -> Parameter:
    return Parameter(np.array(values, dtype=np.float32))


def set_grad(p, values) -> None:
    p.grad = Tensor(np.array(values, dtype=np.float32))


def test_registered_under_contract_names():
    registry = tt.get_registry()
    for name, cls in OPTIMIZERS.items():
        assert registry.get("optimizer", name) is cls
    assert registry.get("function", "clip_grad_norm_") is clip_grad_norm_
    assert registry.get("function", "clip_grad_value_") is clip_grad_value_


# -- hand-computed steps -----------------------------------------------------------------


def test_sgd_step_in_place():
    p = param([1.0, -2.0])
    data = p.data
    set_grad(p, [0.5, -1.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -1.9])
    assert p.data is data and p.dtype == np.float32


def test_sgd_momentum_and_nesterov_two_steps():
    # heavy ball: b1 = g, b2 = 0.9 b1 + g; nesterov uses g + 0.9 b
    for nesterov, expected in [(False, 1 - 0.1 * 1 - 0.1 * 1.9), (True, 1 - 0.1 * 1.9 - 0.1 * (1 + 0.9 * 1.9))]:
        p = param([1.0])
        opt = SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
        for _ in range(2):
            set_grad(p, [1.0])
            opt.step()
        assert p.data[0] == pytest.approx(expected, rel=1e-6)


def test_sgd_weight_decay_adds_l2_gradient():
    p = param([2.0])
    set_grad(p, [0.0])
    SGD([p], lr=0.5, weight_decay=0.1).step()
    assert p.data[0] == pytest.approx(2.0 - 0.5 * 0.1 * 2.0)


def test_adam_first_step_moves_by_lr_times_sign():
    p = param([1.0, 1.0, 1.0])
    set_grad(p, [3.0, -0.01, 0.0])
    Adam([p], lr=0.1).step()
    # m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps)
    np.testing.assert_allclose(p.data, [0.9, 1.1, 1.0], rtol=1e-5)


def test_adamw_decays_weights_directly():
    p = param([2.0])
    set_grad(p, [0.0])
    AdamW([p], lr=0.1, weight_decay=0.5).step()
    assert p.data[0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    q = param([2.0])
    set_grad(q, [0.0])
    Adam([q], lr=0.1, weight_decay=0.5).step()  # L2: the decay goes through the Adam scaling
    assert q.data[0] == pytest.approx(2.0 - 0.1, rel=1e-5)


def test_a_linear_weight_stays_column_major_through_steps():
    tt.manual_seed(0)
    layer = tt.Linear(6, 4)
    opt = AdamW(layer.parameters(), lr=0.1)
    x = tt.randn(8, 6)
    for _ in range(2):
        opt.zero_grad()
        before = layer.weight.data.copy()
        (layer(x) ** 2).sum().backward()
        opt.step()
        assert layer.weight.data.flags.f_contiguous and not np.allclose(layer.weight.data, before)


def test_rmsprop_first_step():
    p = param([1.0])
    set_grad(p, [2.0])
    RMSprop([p], lr=0.01, alpha=0.9).step()
    # s = 0.1 * 4, step = lr * g / sqrt(s)
    assert p.data[0] == pytest.approx(1 - 0.01 * 2 / math.sqrt(0.4), rel=1e-6)


def test_parameters_without_gradient_are_skipped_and_state_is_lazy():
    a, b = param([1.0]), param([1.0])
    set_grad(a, [1.0])
    opt = Adam([a, b], lr=0.1)
    opt.step()
    assert b.data[0] == 1.0 and a.data[0] != 1.0
    assert b not in opt.state and opt.state[a]["step"] == 1


def test_parameter_groups_have_their_own_hyper_parameters():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.0)
    c = param([0.0])
    opt.add_param_group({"params": c, "momentum": 0.5})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.5


def test_zero_grad():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    set_grad(p, [1.0, 1.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_accepts_a_generator_of_parameters():
    model = tt.Sequential(tt.Linear(3, 4), tt.Linear(4, 2))
    assert len(Adam(model.parameters()).param_groups[0]["params"]) == 4


# -- invalid hyper-parameters ------------------------------------------------------------


@pytest.mark.parametrize("make,match", [
    (lambda p: SGD(p, lr=-0.1), "learning rate"),
    (lambda p: SGD(p, lr=0.1, momentum=-1), "momentum"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: Adam(p, lr=-1e-3), "learning rate"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "beta parameter at index 0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "beta parameter at index 1"),
    (lambda p: Adam(p, eps=-1e-8), "epsilon"),
    (lambda p: AdamW(p, weight_decay=-0.01), "weight_decay"),
    (lambda p: RMSprop(p, alpha=-0.5), "alpha"),
    (lambda p: RMSprop(p, momentum=-0.5), "momentum"),
    (lambda p: SGD([{"params": p, "lr": -1.0}], lr=0.1), "learning rate"),
    (lambda p: SGD([], lr=0.1), "empty parameter list"),
    (lambda p: SGD(p + p, lr=0.1), "more than once"),
])
def test_invalid_hyper_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make([param([1.0])])


def test_other_misuse():
    p = param([1.0])
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="no hyper-parameter"):
        SGD([{"params": [p], "betas": (0.9, 0.99)}], lr=0.1)
    with pytest.raises(TinyTorchError, match="floating point"):
        SGD([Tensor(np.array([1, 2]))], lr=0.1)


# -- state dicts -------------------------------------------------------------------------


def quadratic_grad(p, step):
    """A gradient that depends on the parameter and the step, the same for every optimizer."""
    return p.data * 0.5 + np.sin(np.arange(p.size, dtype=np.float32) + step).reshape(p.shape)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}), ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
])
def test_state_dict_round_trip_through_npz_continues_identically(tmp_path, name, kwargs):
    def fresh():
        ps = [param(np.linspace(-1, 1, 6).reshape(2, 3)), param([0.5, -0.5])]
        return ps, OPTIMIZERS[name]([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.003}], **kwargs)

    def run(ps, opt, steps):
        for step in steps:
            for p in ps:
                p.grad = Tensor(quadratic_grad(p, step))
            opt.step()

    ps, opt = fresh()
    run(ps, opt, range(10))
    expected = [p.data.copy() for p in ps]

    ps, opt = fresh()
    run(ps, opt, range(5))
    tt.save({"params": [p.data for p in ps], "optimizer": opt.state_dict()}, tmp_path / "opt.npz")
    saved = tt.load(tmp_path / "opt.npz")
    ps2, opt2 = fresh()
    for p, data in zip(ps2, saved["params"]):
        p.data = np.array(data)
    opt2.load_state_dict(saved["optimizer"])
    assert opt2.param_groups[1]["lr"] == 0.003
    run(ps2, opt2, range(5, 10))
    for p, e in zip(ps2, expected):
        np.testing.assert_array_equal(p.data, e)


def test_state_dict_layout_and_mismatches():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = Tensor(np.ones(2, np.float32))
    opt.step()
    state = opt.state_dict()
    assert state["param_groups"][0]["params"] == [0, 1]
    assert set(state["state"]) == {"0"} and state["state"]["0"]["step"] == 1
    with pytest.raises(CheckpointError, match="parameter groups"):
        Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(state)
    with pytest.raises(CheckpointError, match="holds 2 parameters"):
        Adam([a]).load_state_dict(state)
    with pytest.raises(CheckpointError, match="shape"):
        Adam([param([1.0, 2.0, 3.0]), b]).load_state_dict(state)


def stepped(cls, **kwargs):
    """An optimizer of two parameters after two steps (so it has state), and its parameters."""
    ps = [param(np.linspace(-1, 1, 6).reshape(2, 3)), param([0.5, -0.5])]
    opt = cls([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.003}], **kwargs)
    for step in range(2):
        for p in ps:
            p.grad = Tensor(quadratic_grad(p, step))
        opt.step()
    return ps, opt


def refused(opt, state_dict, *fragments):
    """Loading ``state_dict`` raises a CheckpointError naming every fragment, and leaves
    ``opt`` (groups and state) and its parameters as they were."""
    before = opt.state_dict()
    params = [p.data.copy() for group in opt.param_groups for p in group["params"]]
    for method in (opt.check_state_dict, opt.load_state_dict):
        with pytest.raises(CheckpointError) as info:
            method(state_dict)
        for fragment in fragments:
            assert fragment in str(info.value)
    np.testing.assert_equal(opt.state_dict(), before)
    np.testing.assert_equal([p.data for group in opt.param_groups for p in group["params"]], params)
    return str(info.value)


def test_a_checkpoint_of_another_optimizer_type_is_refused():
    _, sgd = stepped(SGD, lr=0.1, momentum=0.9)
    _, adam = stepped(Adam, lr=0.01)
    refused(adam, sgd.state_dict(), "saved by an optimizer of type SGD, this one is Adam")
    refused(sgd, adam.state_dict(), "type Adam, this one is SGD")
    _, adamw = stepped(AdamW, lr=0.01)
    refused(adamw, adam.state_dict(), "type Adam, this one is AdamW")  # the same options, another rule


def test_without_a_type_the_options_tell_optimizers_apart():
    _, sgd = stepped(SGD, lr=0.1, momentum=0.9)
    _, adam = stepped(Adam, lr=0.01)
    untyped = {k: v for k, v in sgd.state_dict().items() if k != "type"}
    refused(adam, untyped, "missing options: betas, eps, amsgrad and unexpected options: momentum, dampening, nesterov")
    untyped = {k: v for k, v in adam.state_dict().items() if k != "type"}
    _, fresh = stepped(Adam, lr=0.5)
    fresh.load_state_dict(untyped)  # a state dict of an older version, without its type
    np.testing.assert_equal(fresh.state_dict(), adam.state_dict())


@pytest.mark.parametrize("key, value, fragment", [
    ("lr", "fast", "parameter group 0: lr should be a number, got 'fast' (str)"),
    ("lr", -0.1, "invalid learning rate: -0.1"),
    ("betas", [0.9], "betas should be a list of 2 values"),
    ("betas", [0.9, "x"], "betas[1] should be a number"),
    ("betas", [0.9, 1.5], "invalid beta parameter at index 1"),
    ("amsgrad", "yes", "amsgrad should be True or False"),
    ("eps", None, "eps should be a number, got None (NoneType)"),
])
def test_bad_hyper_parameters_are_refused(key, value, fragment):
    _, opt = stepped(Adam, lr=0.01)
    state = opt.state_dict()
    state["param_groups"][0][key] = value
    refused(opt, state, fragment)


@pytest.mark.parametrize("entry, value, fragment", [
    ("exp_avg", np.array([["a"] * 3] * 2), "'exp_avg' has dtype text (<U1)"),
    ("exp_avg", np.ones((2, 3), bool), "'exp_avg' has dtype bool"),
    ("exp_avg", np.ones((2, 3), complex), "'exp_avg' has dtype complex128"),
    ("exp_avg", np.ones((3, 2), np.float32), "'exp_avg' has shape (3, 2), the parameter (2, 3)"),
    ("exp_avg", [[1.0], [1.0, 2.0]], "'exp_avg' is a list that is not an array"),
    ("step", -1, "'step' should be a non-negative integer, got -1 (int)"),
    ("step", 2.5, "'step' should be a non-negative integer"),
    ("step", True, "'step' should be a non-negative integer"),
])
def test_bad_per_parameter_state_is_refused(entry, value, fragment):
    _, opt = stepped(Adam, lr=0.01)
    state = opt.state_dict()
    state["state"]["0"][entry] = value
    refused(opt, state, "state of parameter 0: " + fragment)


def test_every_problem_of_the_state_is_listed_at_once():
    _, opt = stepped(RMSprop, lr=0.01, momentum=0.5)
    state = opt.state_dict()
    del state["state"]["0"]["square_avg"]
    state["state"]["0"]["exp_avg"] = np.zeros((2, 3))
    state["state"]["1"]["momentum_buffer"] = np.array(["x", "y"])
    state["state"]["7"] = {}
    refused(opt, state, "state of parameter 0: missing entries: square_avg and unexpected entries: exp_avg",
            "state of parameter 1: 'momentum_buffer' has dtype text",
            "state of parameter 7: this optimizer has no parameter '7'")


def test_a_state_dict_that_is_not_one_is_refused():
    _, opt = stepped(SGD, lr=0.1, momentum=0.9)
    refused(opt, [1, 2], "needs the dict of Optimizer.state_dict(), got [1, 2] (list)")
    refused(opt, {"state": {}}, "missing keys: param_groups")
    refused(opt, {"state": {}, "param_groups": [], "extra": 1}, "unexpected keys: extra")
    refused(opt, {"state": {}, "param_groups": "all"}, "param_groups of the state dict should be a list of dicts")
    state = opt.state_dict()
    state["param_groups"][1]["params"] = [0]  # index 0 is taken by group 0
    refused(opt, state, "parameter group 1: parameter index 0 is not a new non-negative integer")


def test_state_entries_beyond_those_of_init_state_are_carried_over():
    ps, source = stepped(SGD, lr=0.1, momentum=0.9)
    state = source.state_dict()
    state["state"]["0"]["seen"] = np.arange(3)
    _, target = stepped(SGD, lr=0.1, momentum=0.9)
    target.load_state_dict(state)
    np.testing.assert_array_equal(target.state_dict()["state"]["0"]["seen"], [0, 1, 2])
    state["state"]["0"]["seen"][0] = 9  # a copy
    assert target.state_dict()["state"]["0"]["seen"][0] == 0


def test_options_a_scheduler_keeps_in_the_groups_are_carried_over():
    _, source = stepped(SGD, lr=0.1, momentum=0.9)
    state = source.state_dict()
    for group in state["param_groups"]:
        group["initial_lr"] = 0.1
    _, target = stepped(SGD, lr=0.5, momentum=0.5)
    target.load_state_dict(state)
    assert [group["initial_lr"] for group in target.param_groups] == [0.1, 0.1]
    state["param_groups"][0]["initial_lr"] = "high"
    refused(target, state, "parameter group 0: initial_lr should be a number, got 'high' (str)")


def test_a_good_load_still_works_after_a_refused_one():
    ps, source = stepped(SGD, lr=0.1, momentum=0.9)
    _, target = stepped(SGD, lr=0.5, momentum=0.5)
    bad = source.state_dict()
    bad["state"]["1"]["momentum_buffer"] = np.zeros(3)
    with pytest.raises(CheckpointError):
        target.load_state_dict(bad)
    target.load_state_dict(source.state_dict())
    np.testing.assert_equal(target.state_dict(), source.state_dict())
    # the loaded state is a copy, and it is what steps use
    source.state[ps[0]]["momentum_buffer"][...] = 0
    assert np.abs(target.state_dict()["state"]["0"]["momentum_buffer"]).sum() > 0


# -- gradient clipping -------------------------------------------------------------------


def test_clip_grad_norm_scales_all_gradients_together():
    a, b = param([0.0, 0.0]), param([0.0])
    set_grad(a, [3.0, 0.0])
    set_grad(b, [4.0])
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.data, b.grad.data]), [0.6, 0.0, 0.8], rtol=1e-5)
    # below the limit nothing changes; inf-norm is the largest magnitude
    assert clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(a.grad.data, [0.6, 0.0], rtol=1e-5)
    set_grad(a, [-3.0, 1.0])
    assert clip_grad_norm_(a, max_norm=1.5, norm_type=float("inf")) == 3.0
    np.testing.assert_allclose(a.grad.data, [-1.5, 0.5], rtol=1e-5)


def test_clip_grad_norm_errors():
    a = param([0.0])
    set_grad(a, [np.inf])
    with pytest.raises(TinyTorchError, match="error_if_nonfinite"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError):
        clip_grad_norm_([a], -1.0)
    assert clip_grad_norm_([param([1.0])], 1.0) == 0.0  # no gradients at all


def test_clip_grad_value():
    a = param([0.0, 0.0, 0.0])
    set_grad(a, [-5.0, 0.5, 2.0])
    clip_grad_value_([a], 1.0)
    np.testing.assert_array_equal(a.grad.data, [-1.0, 0.5, 1.0])
    with pytest.raises(ValueError):
        clip_grad_value_([a], -1.0)


# -- against PyTorch ---------------------------------------------------------------------

TORCH_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.2, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.05}),
]


@pytest.mark.parametrize("name,kwargs", TORCH_CASES)
def test_twenty_steps_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(shape).astype(np.float32) for shape in [(4, 3), (3,)]]
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    half = kwargs["lr"] / 2
    opt = OPTIMIZERS[name]([{"params": ours[:1]}, {"params": ours[1:], "lr": half}], **kwargs)
    torch_opt = getattr(torch.optim, name)([{"params": theirs[:1]}, {"params": theirs[1:], "lr": half}], **kwargs)
    for step in range(20):
        for p, q in zip(ours, theirs):
            g = quadratic_grad(p, step)
            p.grad = Tensor(g)
            q.grad = torch.tensor(quadratic_grad(Tensor(q.detach().numpy()), step))
        opt.step()
        torch_opt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-5)
        assert p.dtype == np.float32


@pytest.mark.parametrize("name,kwargs", [
    ("Adam", {"lr": 0.01}), ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
])
def test_mlp_training_through_autograd_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(5, 8), tt.Tanh(), tt.Linear(8, 3))
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for p, q in zip(model.parameters(), net.parameters()):
            q.copy_(torch.tensor(p.data))
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)
    opt = OPTIMIZERS[name](model.parameters(), **kwargs)
    torch_opt = getattr(torch.optim, name)(net.parameters(), **kwargs)
    for _ in range(20):
        opt.zero_grad()
        CrossEntropyLoss()(model(Tensor(x)), y).backward()
        opt.step()
        torch_opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.tensor(x)), torch.tensor(y)).backward()
        torch_opt.step()
    for p, q in zip(model.parameters(), net.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,)]]
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        ours = [Parameter(np.zeros_like(g)) for g in grads]
        theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = Tensor(g.copy()), torch.tensor(g)
        total = clip_grad_norm_(ours, 0.5, norm_type=norm_type)
        torch_total = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type=norm_type)
        assert total == pytest.approx(torch_total.item(), rel=1e-5)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-5, atol=1e-7)


# -- the extension methods ---------------------------------------------------------------


def test_a_subclass_implements_init_state_and_update():
    class SignSGD(tt_learn.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def init_state(self, param, group):
            return {"step": 0, "last": np.zeros_like(param.data)}

        def update(self, param, grad, state, group, work):
            state["step"] += 1
            state["last"][...] = grad
            param -= group["lr"] * np.sign(grad)

    p = param([1.0, -1.0])
    opt = SignSGD([p])
    for _ in range(2):
        set_grad(p, [3.0, -0.5])
        opt.step()
    np.testing.assert_allclose(p.data, [0.8, -0.8], rtol=1e-6)
    assert opt.state[p]["step"] == 2
    restored = SignSGD([param([0.8, -0.8])])
    restored.load_state_dict(opt.state_dict())
    assert next(iter(restored.state.values()))["step"] == 2


def test_an_optimizer_without_update_says_what_to_define():
    class Empty(tt_learn.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    p = param([1.0])
    set_grad(p, [1.0])
    with pytest.raises(NotImplementedError, match=r"Empty must define init_state\(param, group\)"):
        Empty([p]).step()


def test_subclasses_written_against_the_private_names_keep_working_with_one_warning_per_class():
    with pytest.warns(DeprecationWarning) as caught:
        class Legacy(tt_learn.Optimizer):
            def __init__(self, params, lr=0.5):
                super().__init__(params, {"lr": lr})

            def _init_state(self, p, group):
                return {"calls": 0}

            def _update(self, param, grad, state, group, work):
                state["calls"] += 1
                param -= group["lr"] * grad

        class DoubledSGD(SGD):  # extends a built-in through the old name
            def _update(self, param, grad, state, group, work):
                super()._update(param, 2 * grad, state, group, work)

    assert [str(w.message) for w in caught] == [
        ("optimizer Legacy defines _init_state and _update, now public as init_state and update: rename them "
         "(the old names keep working for now)"),
        "optimizer DoubledSGD defines _update, now public as update: rename it (the old names keep working for now)",
    ]
    p = param([1.0, 2.0])
    set_grad(p, [1.0, -1.0])
    legacy = Legacy([p])
    legacy.step()
    np.testing.assert_allclose(p.data, [0.5, 2.5])
    assert legacy.state[p] == {"calls": 1}
    set_grad(p, [1.0, -1.0])
    DoubledSGD([p], lr=0.1, momentum=0.9).step()
    np.testing.assert_allclose(p.data, [0.3, 2.7], rtol=1e-6)

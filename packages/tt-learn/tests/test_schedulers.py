"""LR schedulers: hand-computed sequences, wrapping, state dicts, invalid arguments, and (with
torch installed) the same learning-rate and momentum sequences as torch.optim.lr_scheduler."""

import math

import numpy as np
import pytest
import tt_core as tt
from tt_core import CheckpointError, Parameter
from tt_learn import SGD, Adam, CosineAnnealingLR, LinearWarmup, OneCycleLR, StepLR

SCHEDULERS = {"StepLR": StepLR, "CosineAnnealingLR": CosineAnnealingLR, "LinearWarmup": LinearWarmup,
              "OneCycleLR": OneCycleLR}


def sgd(lr=1.0, **kwargs):
    return SGD([Parameter(np.zeros(2, np.float32))], lr=lr, **kwargs)


def lrs(optimizer, scheduler, steps):
    """The learning rates of every step: one per group, or a number with one group."""
    out = []
    for _ in range(steps):
        values = [group["lr"] for group in optimizer.param_groups]
        out.append(values if len(values) > 1 else values[0])
        optimizer.step()
        scheduler.step()
    return out


def test_registered_under_contract_names():
    registry = tt.get_registry()
    for name, cls in SCHEDULERS.items():
        assert registry.get("scheduler", name) is cls


def test_step_lr():
    opt = sgd(1.0)
    np.testing.assert_allclose(lrs(opt, StepLR(opt, step_size=3, gamma=0.1), 7),
                               [1, 1, 1, 0.1, 0.1, 0.1, 0.01])


def test_cosine_annealing():
    opt = sgd(1.0)
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.2)
    values = lrs(opt, sched, 5)
    np.testing.assert_allclose(values, [1.0, 0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, 0.6,
                                        0.2 + 0.8 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.2])
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_linear_warmup_then_constant():
    opt = sgd(1.0)
    np.testing.assert_allclose(lrs(opt, LinearWarmup(opt, warmup_steps=4, start_factor=0.0), 6),
                               [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])


def test_linear_warmup_wrapping_a_schedule():
    opt = sgd(2.0)
    sched = LinearWarmup(opt, warmup_steps=2, start_factor=0.5, after=StepLR(opt, step_size=2, gamma=0.5))
    np.testing.assert_allclose(lrs(opt, sched, 7), [1.0, 1.5, 2.0, 2.0, 1.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="same optimizer"):
        LinearWarmup(sgd(), 2, after=StepLR(opt, 2))


def test_one_cycle_shape():
    opt = sgd(1.0, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.3)
    values, momenta = [], []
    for _ in range(10):
        values.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert values[0] == pytest.approx(1 / 25)
    assert max(values) == values[2] == pytest.approx(1.0)  # the peak at pct_start * total - 1
    assert values[-1] == pytest.approx(1 / 25 / 1e4)
    assert momenta[0] == pytest.approx(0.95) and momenta[2] == pytest.approx(0.85)
    assert momenta[-1] == pytest.approx(0.95)
    assert np.all(np.diff(values[2:]) < 0)


def test_one_cycle_cycles_adam_beta1_and_refuses_stepping_past_the_end():
    opt = Adam([Parameter(np.zeros(1, np.float32))], lr=0.1, betas=(0.9, 0.99))
    sched = OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=2)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    for _ in range(4):
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 4"):
        sched.step()


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=2, gamma=0.5),
    lambda o: CosineAnnealingLR(o, T_max=6),
    lambda o: LinearWarmup(o, 3, after=CosineAnnealingLR(o, T_max=5)),
    lambda o: OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=12),
])
def test_state_dict_round_trip_continues_identically(tmp_path, make):
    def fresh():
        opt = SGD([{"params": [Parameter(np.zeros(1, np.float32))]},
                   {"params": [Parameter(np.zeros(1, np.float32))], "lr": 0.5}], lr=1.0, momentum=0.9)
        return opt, make(opt)

    opt, sched = fresh()
    expected = lrs(opt, sched, 10)

    opt, sched = fresh()
    first = lrs(opt, sched, 4)
    tt.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "sched.npz")
    saved = tt.load(tmp_path / "sched.npz")
    opt2, sched2 = fresh()
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    assert first + lrs(opt2, sched2, 6) == expected


def refused(sched, state, *fragments):
    """Loading ``state`` raises a CheckpointError naming every fragment and changes nothing."""
    before, lr = sched.state_dict(), sched.optimizer.param_groups[0]["lr"]
    for method in (sched.check_state_dict, sched.load_state_dict):
        with pytest.raises(CheckpointError) as info:
            method(state)
        for fragment in fragments:
            assert fragment in str(info.value)
    np.testing.assert_equal(sched.state_dict(), before)
    assert sched.optimizer.param_groups[0]["lr"] == lr


def stepped(make, steps=3):
    opt = sgd(momentum=0.9)
    sched = make(opt)
    lrs(opt, sched, steps)
    return sched


def test_a_state_dict_of_another_schedule_is_refused():
    step = stepped(lambda o: StepLR(o, step_size=2))
    cosine = stepped(lambda o: CosineAnnealingLR(o, T_max=5))
    refused(step, cosine.state_dict(), "does not fit this StepLR", "missing keys: step_size, gamma",
            "unexpected keys: T_max, eta_min")
    refused(step, [1], "needs the dict of state_dict(), got [1] (list)")


@pytest.mark.parametrize("key, value, fragment", [
    ("gamma", "0.5", "gamma should be a number, got '0.5' (str)"),
    ("step_size", 1.5, "step_size should be a non-negative integer, got 1.5 (float)"),
    ("last_epoch", None, "last_epoch should be a number, got None (NoneType)"),
    ("base_lrs", [1.0, 2.0], "base_lrs should be a list of 1 values"),
])
def test_settings_of_the_wrong_type_are_refused(key, value, fragment):
    sched = stepped(lambda o: StepLR(o, step_size=2))
    refused(sched, {**sched.state_dict(), key: value}, fragment)


def test_one_cycle_phases_and_warmup_schedules_are_checked_too():
    cycle = stepped(lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10))
    state = cycle.state_dict()
    state["phases"][0][1] = 3
    refused(cycle, state, "phases[0][1] should be a string, got 3 (int)")
    warm = stepped(lambda o: LinearWarmup(o, 2, after=StepLR(o, step_size=2)))
    plain = stepped(lambda o: LinearWarmup(o, 2))
    refused(plain, warm.state_dict(), "in the state dict a schedule follows the warmup, in this LinearWarmup none does")
    refused(warm, plain.state_dict(), "no schedule follows the warmup, in this LinearWarmup a StepLR does")
    state = warm.state_dict()
    state["after"]["gamma"] = "x"
    state["start_factor"] = "y"
    refused(warm, state, "start_factor should be a number", "the schedule after the warmup: ", "gamma should be a number")
    assert warm.after.gamma == 0.1


@pytest.mark.parametrize("make,match", [
    (lambda o: StepLR(o, step_size=0), "step_size"),
    (lambda o: CosineAnnealingLR(o, T_max=-1), "T_max"),
    (lambda o: LinearWarmup(o, warmup_steps=0), "warmup_steps"),
    (lambda o: LinearWarmup(o, warmup_steps=2, start_factor=1.5), "start_factor"),
    (lambda o: OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.2), "pct_start"),
    (lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=10), "max_lr"),
])
def test_invalid_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make(sgd())


def test_needs_an_optimizer():
    with pytest.raises(TypeError, match="needs an Optimizer"):
        StepLR([Parameter(np.zeros(1, np.float32))], step_size=1)


# -- against PyTorch ---------------------------------------------------------------------

TORCH_CASES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, {}),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.01}, {}),
    ("LinearWarmup", {"warmup_steps": 8, "start_factor": 0.1}, {}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "total_steps": 30}, {}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 30, "pct_start": 0.4, "anneal_strategy": "linear",
                    "div_factor": 10}, {}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 30, "three_phase": True, "final_div_factor": 100}, {}),
    ("OneCycleLR", {"max_lr": 0.05, "epochs": 3, "steps_per_epoch": 10, "base_momentum": 0.8}, {"adam": True}),
]


@pytest.mark.parametrize("name,kwargs,options", TORCH_CASES)
def test_sequences_match_torch(name, kwargs, options):
    torch = pytest.importorskip("torch")
    torch_name = {"LinearWarmup": "LinearLR"}.get(name, name)
    torch_kwargs = dict(kwargs)
    if name == "LinearWarmup":
        torch_kwargs = {"start_factor": kwargs["start_factor"], "end_factor": 1.0,
                        "total_iters": kwargs["warmup_steps"]}
    ours_params = [Parameter(np.zeros(1, np.float32)) for _ in range(2)]
    theirs_params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    make = (lambda ps, cls: cls.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1)) if options \
        else (lambda ps, cls: cls.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3}], lr=1.0, momentum=0.9))
    import tt_learn

    opt, torch_opt = make(ours_params, tt_learn), make(theirs_params, torch.optim)
    sched = SCHEDULERS[name](opt, **kwargs)
    torch_sched = getattr(torch.optim.lr_scheduler, torch_name)(torch_opt, **torch_kwargs)
    key = "betas" if options else "momentum"
    for _ in range(30 if name == "OneCycleLR" else 25):
        for group, torch_group in zip(opt.param_groups, torch_opt.param_groups):
            assert group["lr"] == pytest.approx(torch_group["lr"], rel=1e-9, abs=1e-15)
            np.testing.assert_allclose(group[key], torch_group[key], rtol=1e-9)
        opt.step()
        torch_opt.step()
        sched.step()
        torch_sched.step()

"""Time budgets (with a fake clock), re-planned one-cycle schedules and weight averaging."""

import numpy as np
import pytest
import tt_core as tt
from tt_learn import SGD, CrossEntropyLoss, OneCycleLR, TimeBudget, Trainer, WeightAverage, batches


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def budget_run(step_seconds, budget_seconds, epochs=20, slow_down_after=None):
    """A small classifier trained under a fake clock: each training step costs ``step_seconds``
    (three times as much after ``slow_down_after`` steps), each evaluation batch a third of a step."""
    tt.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    train, val = batches(x, y, batch_size=8, shuffle=True), batches(x, y, batch_size=32)
    clock, steps = FakeClock(), [0]
    model = tt.Linear(2, 2)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = OneCycleLR(optimizer, max_lr=0.1, total_steps=epochs * len(train))

    def tick(trainer):
        steps[0] += 1
        slow = slow_down_after is not None and steps[0] > slow_down_after
        clock.now += step_seconds * (3 if slow else 1)

    def eval_cost(output, target):
        if not model.training:
            clock.now += step_seconds / 3
        return 0.0

    budget = TimeBudget(budget_seconds, final_evaluations=2, clock=clock)
    trainer = Trainer(model, optimizer, CrossEntropyLoss(), scheduler, metrics={"cost": eval_cost},
                      scheduler_interval="batch", progress=False, budget=budget, step_hooks=[tick])
    trainer.fit(train, val, epochs=epochs)
    final_evaluations = 2 * len(val) * step_seconds / 3
    return trainer, clock.now + final_evaluations, optimizer.param_groups[0]["lr"]


def test_a_slower_machine_ends_inside_the_budget_with_fewer_epochs_and_the_lr_annealed():
    fast, fast_end, fast_lr = budget_run(step_seconds=1.0, budget_seconds=100)
    slow, slow_end, slow_lr = budget_run(step_seconds=2.0, budget_seconds=100)
    assert fast_end <= 100 and slow_end <= 100
    assert len(slow.history) < len(fast.history) < 20
    assert len(fast.history) == fast.planned_epochs and len(slow.history) == slow.planned_epochs
    assert fast_lr < 1e-3 and slow_lr < 1e-3  # annealed from max_lr 0.1 (one step past the cycle's end)
    assert fast.scheduler.total_steps == len(fast.history) * 8


def test_a_budget_that_fits_every_epoch_changes_nothing():
    trainer, end, _ = budget_run(step_seconds=1.0, budget_seconds=1000, epochs=5)
    assert len(trainer.history) == 5 and trainer.scheduler.total_steps == 40 and end < 1000


def test_a_machine_that_slows_down_mid_epoch_stops_the_epoch_inside_the_budget():
    trainer, end, _ = budget_run(step_seconds=1.0, budget_seconds=100, slow_down_after=60)
    assert end <= 100
    assert len(trainer.history) == trainer.planned_epochs


@pytest.mark.parametrize("seconds, final", [(0, 0), (-1, 0), (10, -1)])
def test_a_bad_budget_is_refused(seconds, final):
    with pytest.raises(ValueError, match="seconds|final_evaluations"):
        TimeBudget(seconds, final_evaluations=final)


def one_cycle(total_steps):
    optimizer = SGD([tt.Parameter(np.zeros(1, dtype=np.float32))], lr=1.0, momentum=0.9)
    return optimizer, OneCycleLR(optimizer, max_lr=1.0, total_steps=total_steps)


def test_replan_matches_a_cycle_planned_with_that_length_from_the_start():
    optimizer, stretched = one_cycle(50)
    for _ in range(20):
        stretched.step()
    stretched.replan(80)
    _, reference = one_cycle(80)
    assert stretched.total_steps == 80
    assert stretched.lr_at(20) == reference.lr_at(20) and optimizer.param_groups[0]["lr"] == reference.lr_at(20)[0]
    assert stretched.lr_at(79) == pytest.approx(reference.lr_at(79)) and stretched.lr_at(79)[0] < 1e-5
    restored = one_cycle(50)[1]
    restored.load_state_dict(stretched.state_dict())
    assert restored.total_steps == 80 and restored.lr_at(79) == stretched.lr_at(79)


def test_replan_refuses_fewer_steps_than_were_taken():
    _, scheduler = one_cycle(50)
    for _ in range(20):
        scheduler.step()
    with pytest.raises(ValueError, match="already taken 20"):
        scheduler.replan(10)


class RunningMean(tt.Module):
    """A scale with batch-norm-like buffers: a float running mean and an integer batch count."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = tt.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("running_mean", tt.Tensor(np.zeros(3, dtype=np.float32)))
        self.register_buffer("batches", tt.Tensor(np.zeros(1, dtype=np.int64)))

    def forward(self, x):
        self.running_mean.data[...] = 0.9 * self.running_mean.data + 0.1 * x.data.mean(axis=0)
        self.batches.data[...] += 1
        return x * self.weight


def test_weight_average_of_a_tied_weight_is_kept_under_each_of_its_names():
    tt.manual_seed(0)
    first, second = tt.Linear(2, 2), tt.Linear(2, 2)
    second.weight = first.weight  # one Parameter in two modules, as a GPT's tied embedding
    model = tt.Sequential(first, second)
    average = WeightAverage(model, decay=0.5)
    for value in (1.0, 2.0, 3.0):
        first.weight.data[...] = value
        average.update()
    expected = average.state["0.weight"].copy()
    np.testing.assert_array_equal(average.state["1.weight"], expected)
    average.copy_to()
    np.testing.assert_allclose(model[1].weight.data, expected)
    assert model[1].weight is model[0].weight and 1.0 < expected[0, 0] < 3.0


def test_weight_average_of_parameters_and_float_buffers_copies_integer_buffers():
    tt.manual_seed(0)
    model = tt.Sequential(RunningMean())
    average = WeightAverage(model, decay=0.8, every=2)
    rng = np.random.default_rng(0)
    reference = {name: value.astype(np.float64) for name, value in model.state_dict().items()}
    updates = 0
    for call in range(1, 9):
        model.train()
        model(tt.Tensor(rng.normal(size=(4, 3)).astype(np.float32)))  # moves the running mean and the count
        model[0].weight.data[...] += 0.1
        average.update(None)
        if call % 2 == 0:
            decay = min(0.8, (1 + updates) / (10 + updates))
            updates += 1
            for name, value in model.state_dict().items():
                if np.issubdtype(value.dtype, np.floating):
                    reference[name] = decay * reference[name] + (1 - decay) * value
                else:
                    reference[name] = value
    for name, value in average.state.items():
        np.testing.assert_allclose(value, reference[name], rtol=1e-5, atol=1e-6)
    average.copy_to()
    np.testing.assert_allclose(model[0].running_mean.data, reference["0.running_mean"], rtol=1e-5, atol=1e-6)
    assert int(average.state["0.batches"][0]) == 8


@pytest.mark.parametrize("decay, every", [(1.0, 1), (-0.1, 1), (0.9, 0)])
def test_weight_average_refuses_bad_settings(decay, every):
    with pytest.raises(ValueError, match="decay|every"):
        WeightAverage(tt.Linear(1, 1), decay=decay, every=every)

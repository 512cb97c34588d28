"""Trainer, batches and metrics: learning, history, early stopping, checkpoints and a
bit-identical resume, progress output, and no memory growth over many steps."""

import doctest
import gc
import io
import tracemalloc

import numpy as np
import pytest
import tt_core as tt
from rich.console import Console
from tt_core import CheckpointError, ShapeError, Tensor, TinyTorchError
from tt_learn import (
    SGD,
    Adam,
    CrossEntropyLoss,
    GradientWatch,
    MSELoss,
    OneCycleLR,
    StepLR,
    Trainer,
    accuracy,
    batches,
    clip,
    confusion_matrix,
    losses,
    metrics,
    optim,
    schedulers,
    train,
    watch,
)


def blobs(n=96, seed=0):
    """Three well-separated Gaussian blobs in 4-D: easy to learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], np.float32)
    x = centres[y] + rng.standard_normal((n, 4)).astype(np.float32) * 0.5
    return x, y


def make_trainer(seed=0, lr=0.05, scheduler=None, **kwargs):
    tt.manual_seed(seed)
    model = tt.Sequential(tt.Linear(4, 16), tt.ReLU(), tt.Dropout(0.2), tt.Linear(16, 3))
    optimizer = Adam(model.parameters(), lr=lr)
    sched = scheduler(optimizer) if scheduler else None
    return Trainer(model, optimizer, CrossEntropyLoss(), sched, metrics={"accuracy": accuracy}, progress=False,
                   **kwargs)


# -- metrics -----------------------------------------------------------------------------


def test_accuracy_from_logits_labels_and_binary_outputs():
    assert accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert accuracy(Tensor(np.array([1, 2, 2])), Tensor(np.array([1, 2, 0]))) == pytest.approx(2 / 3)
    logits, labels = np.array([[-2.0], [0.5], [3.0]], np.float32), np.array([[0.0], [0.0], [1.0]], np.float32)
    assert accuracy(logits, labels) == pytest.approx(2 / 3)
    assert accuracy(np.array([0.2, 0.7]), np.array([0.0, 1.0]), threshold=0.5) == 1.0
    with pytest.raises(ShapeError, match="one score per sample"):
        accuracy(np.zeros((4, 1)), np.zeros(4))
    with pytest.raises(ShapeError, match="cannot compare"):
        accuracy(np.zeros((4, 3)), np.zeros(3))


def test_confusion_matrix():
    matrix = confusion_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), np.array([0, 1, 0]), num_classes=2)
    np.testing.assert_array_equal(matrix, [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match="target labels"):
        confusion_matrix(np.array([0, 1]), np.array([0, 5]), num_classes=2)


def test_registered_components():
    registry = tt.get_registry()
    assert registry.get("trainer", "Trainer") is Trainer
    assert registry.get("metric", "accuracy") is accuracy


# -- batches -----------------------------------------------------------------------------


def test_batches_sizes_and_order():
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    assert [len(b[1]) for b in batches(x, y, 4)] == [4, 4, 2]
    assert len(batches(x, y, 4, drop_last=True)) == 2
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches(x, y, 4)]), y)
    loader = batches(x, y, 4, shuffle=True, generator=np.random.default_rng(0))
    first, second = [np.concatenate([b[1].data for b in loader]) for _ in range(2)]
    assert sorted(first) == list(range(10)) and not np.array_equal(first, second)  # reshuffled each pass
    x_batch, y_batch = next(iter(loader))
    assert x_batch.dtype == np.float32 and y_batch.dtype == np.int64
    with pytest.raises(ShapeError):
        batches(x, y[:5], 2)
    with pytest.raises(ValueError):
        batches(x, y, 0)


# -- fitting -----------------------------------------------------------------------------


def test_fit_learns_and_records_history():
    x, y = blobs()
    trainer = make_trainer(scheduler=lambda o: StepLR(o, step_size=2, gamma=0.5))
    history = trainer.fit(batches(x, y, 16, shuffle=True), batches(*blobs(48, seed=1), 48), epochs=6)
    assert len(history) == 6 and trainer.epoch == 6
    keys = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_s"}
    assert keys <= set(history[0])
    assert history[-1]["val_accuracy"] >= 0.95 and history[-1]["loss"] < history[0]["loss"]
    assert [row["lr"] for row in history] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125])
    assert trainer.model.training  # evaluation puts the model back in training mode


def test_evaluate_matches_a_manual_pass():
    x, y = blobs(40)
    trainer = make_trainer()
    result = trainer.evaluate(batches(x, y, 7))
    trainer.model.eval()
    logits = trainer.model(Tensor(x))
    assert result["loss"] == pytest.approx(CrossEntropyLoss()(logits, y).item(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(accuracy(logits, y))


def test_batch_interval_scheduler_and_gradient_clipping():
    x, y = blobs(64)
    trainer = make_trainer(scheduler=lambda o: OneCycleLR(o, max_lr=0.1, total_steps=9), scheduler_interval="batch",
                           max_grad_norm=0.5)
    trainer.fit(batches(x, y, 16), epochs=2)
    assert trainer.scheduler.last_epoch == 8  # 2 epochs of 4 batches: at the cycle's last step
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 / 25 / 1e4)


def test_early_stopping_on_a_metric_that_does_not_improve():
    x, y = blobs(32)
    trainer = make_trainer(lr=0.0)  # nothing changes, so val_loss never improves after epoch 1
    history = trainer.fit(batches(x, y, 16), batches(x, y, 32), epochs=10, patience=2)
    assert len(history) == 3 and trainer.bad_epochs == 2
    trainer = make_trainer(lr=0.0)
    assert len(trainer.fit(batches(x, y, 16), batches(x, y, 32), epochs=10, patience=1, monitor="val_accuracy")) == 2
    with pytest.raises(ValueError, match="cannot monitor 'val_accuracy'"):
        make_trainer().fit(batches(x, y, 16), epochs=1, monitor="val_accuracy")  # no validation loader


def test_bad_trainer_arguments():
    with pytest.raises(ValueError, match="scheduler_interval"):
        make_trainer(scheduler_interval="step")
    with pytest.raises(ValueError, match="patience"):
        make_trainer().fit(batches(*blobs(8), 4), epochs=1, patience=0)


def test_fit_refuses_loaders_without_samples():
    x, y = blobs(8)
    trainer = make_trainer()
    before = trainer.model.state_dict()
    for empty in ([], batches(x[:0], y[:0], 4), batches(x[:3], y[:3], 4, drop_last=True), iter([])):
        with pytest.raises(TinyTorchError, match="training loader (is empty|.*yielded no samples)"):
            trainer.fit(empty, epochs=2)
        assert trainer.history == [] and trainer.epoch == 0
    np.testing.assert_equal(trainer.model.state_dict(), before)
    with pytest.raises(TinyTorchError, match="evaluation loader yielded no samples"):
        trainer.fit(batches(x, y, 4), val_loader=[], epochs=1)


def test_fit_explains_a_one_shot_iterator_used_up_by_the_first_epoch():
    x, y = blobs(8)
    trainer = make_trainer()
    with pytest.raises(TinyTorchError, match=r"epoch 2\) yielded no samples.*one-shot iterator"):
        trainer.fit(iter(list(batches(x, y, 4))), epochs=3)
    assert len(trainer.history) == 1 and trainer.history[0]["loss"] > 0


def test_progress_bar_shows_loss_metric_and_speed():
    x, y = blobs(32)
    out = io.StringIO()
    trainer = make_trainer(console=Console(file=out, width=150, force_terminal=False))
    trainer.progress = True
    trainer.fit(batches(x, y, 8), epochs=1)
    text = out.getvalue()
    assert "epoch 1" in text and "loss" in text and "accuracy" in text and "samples/s" in text


# -- gradient statistics -----------------------------------------------------------------


def linear_regression_by_hand(weight, bias, batches_, lr, epochs):
    """Plain SGD on ``mean((x W^T + b - y)^2)`` with the gradients written out by hand: per
    epoch and per parameter, the mean and last ``||grad||`` and ``||Δw|| / ||w||``."""
    weight, bias = weight.astype(np.float64), bias.astype(np.float64)
    expected = []
    for epoch in range(1, epochs + 1):
        grads, ratios = {"weight": [], "bias": []}, {"weight": [], "bias": []}
        for x, y in batches_:
            residual = 2 * (x @ weight.T + bias - y) / y.size
            g = {"weight": residual.T @ x, "bias": residual.sum(axis=0)}
            for name, w in (("weight", weight), ("bias", bias)):
                grads[name].append(np.linalg.norm(g[name]))
                ratios[name].append(lr * np.linalg.norm(g[name]) / np.linalg.norm(w))
            weight, bias = weight - lr * g["weight"], bias - lr * g["bias"]
        for name, w in (("weight", weight), ("bias", bias)):
            expected.append({"epoch": epoch, "grad_norm": np.mean(grads[name]),
                             "grad_norm_last": grads[name][-1], "update_ratio": np.mean(ratios[name]),
                             "update_ratio_last": ratios[name][-1], "weight_norm": np.linalg.norm(w),
                             "steps": len(batches_)})
    return expected


def test_gradient_stats_are_one_row_per_parameter_per_epoch_equal_to_hand_computed_norms():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 3)).astype(np.float32), rng.normal(size=(12, 2)).astype(np.float32)
    loader = [(x[:5], y[:5]), (x[5:], y[5:])]  # two unequal batches per epoch
    tt.manual_seed(0)
    model = tt.Linear(3, 2)
    expected = linear_regression_by_hand(model.weight.data, model.bias.data, loader, lr=0.1, epochs=3)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), MSELoss(), progress=False, track_gradients=True)
    trainer.fit(loader, epochs=3)
    stats = trainer.gradient_stats
    expected_rows = [(epoch, name) for epoch in (1, 2, 3) for name in ("weight", "bias")]
    assert [(row["epoch"], row["parameter"]) for row in stats] == expected_rows
    assert [row["shape"] for row in stats[:2]] == [(2, 3), (2,)]
    for row, reference in zip(stats, expected):
        assert set(row) == set(reference) | {"parameter", "shape"}
        assert {key: row[key] for key in reference} == pytest.approx(reference, rel=1e-4)


def test_gradient_stats_measure_the_gradient_before_clipping_and_the_step_after_it():
    x, y = blobs(32)
    trainer = make_trainer(lr=0.0, track_gradients=True)  # lr 0: nothing moves
    trainer.fit(batches(x, y, 32), epochs=1)
    unclipped = {row["parameter"]: row["grad_norm"] for row in trainer.gradient_stats}
    assert all(row["update_ratio"] == 0.0 for row in trainer.gradient_stats)

    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(4, 16), tt.ReLU(), tt.Dropout(0.2), tt.Linear(16, 3))
    initial = [np.linalg.norm(p.data) for p in model.parameters()]
    clipped = Trainer(model, SGD(model.parameters(), lr=1.0), CrossEntropyLoss(), max_grad_norm=1e-3,
                      progress=False, track_gradients=True)
    clipped.fit(batches(x, y, 32), epochs=1)
    rows = clipped.gradient_stats
    assert {row["parameter"]: row["grad_norm"] for row in rows} == pytest.approx(unclipped, rel=1e-5)
    # one SGD step (lr 1) of the gradients clipped to a joint norm of 1e-3 moves the weights by 1e-3 in all
    moved = np.sqrt(sum((row["update_ratio"] * norm) ** 2 for row, norm in zip(rows, initial)))
    assert moved == pytest.approx(1e-3, rel=1e-3)


def test_gradient_stats_are_off_by_default_and_measure_nothing(monkeypatch):
    class Refused:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a GradientWatch was made although track_gradients is off")

    monkeypatch.setattr(train, "GradientWatch", Refused)
    x, y = blobs(32)
    trainer = make_trainer()
    trainer.fit(batches(x, y, 16), epochs=2)
    assert trainer.gradient_stats == [] and trainer._watch is None
    with pytest.raises(AssertionError, match="track_gradients is off"):
        make_trainer(track_gradients=True)


def test_gradient_stats_survive_a_checkpoint(tmp_path):
    x, y = blobs(32)
    trainer = make_trainer(track_gradients=True)
    trainer.fit(batches(x, y, 16), epochs=2, checkpoint=tmp_path / "run.npz")
    resumed = make_trainer(track_gradients=True).resume(tmp_path / "run.npz")
    assert resumed.gradient_stats == trainer.gradient_stats and len(resumed.gradient_stats) == 2 * 4
    resumed.fit(batches(x, y, 16), epochs=3)
    assert [row["epoch"] for row in resumed.gradient_stats] == [1] * 4 + [2] * 4 + [3] * 4

    checkpoint = tt.load(tmp_path / "run.npz")
    del checkpoint["trainer"]["gradient_stats"]  # as written before the records existed
    older = make_trainer(track_gradients=True).resume(tt.save(checkpoint, tmp_path / "older.npz"))
    assert older.epoch == 2 and older.gradient_stats == []
    checkpoint["trainer"]["gradient_stats"] = [1, 2]
    resume_refused(make_trainer(track_gradients=True), checkpoint, tmp_path / "bad.npz",
                   "trainer.gradient_stats should be a list of gradient records")


def test_gradient_watch_in_a_loop_of_its_own():
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(2, 2), tt.Linear(2, 1))
    model[0].bias.data[:] = 0.0  # no ratio before its first step
    unused = tt.Parameter(np.ones(3, np.float32))  # never gets a gradient
    watching = GradientWatch([*model.named_parameters(), ("unused", unused)])
    opt = SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(Tensor(np.ones((4, 2), np.float32))).sum().backward()
        with watching.step():
            opt.step()
    assert watching.steps == 3
    rows = {row["parameter"]: row for row in watching.end_epoch(epoch=30)}
    assert watching.steps == 0 and rows["0.weight"]["epoch"] == 30 and rows["0.weight"]["steps"] == 3
    first = rows["0.bias"]
    assert first["update_ratio_last"] > 0 and np.isfinite(first["update_ratio"])  # steps 2 and 3 only
    assert rows["unused"]["grad_norm"] == 0.0 and rows["unused"]["update_ratio"] == 0.0
    assert rows["unused"]["weight_norm"] == pytest.approx(np.sqrt(3))
    with pytest.raises(tt.TinyTorchError, match="no step was measured"):
        watching.end_epoch()
    with pytest.raises(tt.TinyTorchError, match="no parameters"):
        GradientWatch(tt.Sequential())
    with pytest.raises(tt.TinyTorchError, match="named_parameters"):
        GradientWatch([np.zeros(2)])
    assert tt.get_registry().get("function", "GradientWatch") is GradientWatch


# -- checkpoints -------------------------------------------------------------------------


def test_resume_is_bit_identical(tmp_path):
    """Train 2 epochs, versus train 1 + checkpoint + resume into fresh objects + train 1:
    the same weights, optimizer state and learning rate, bit for bit (dropout draws from the
    global RNG, shuffling from the loader's own generator)."""
    x, y = blobs()
    schedule = lambda o: StepLR(o, step_size=1, gamma=0.7)

    straight = make_trainer(scheduler=schedule)
    straight.fit(batches(x, y, 16, shuffle=True, generator=np.random.default_rng(5)), epochs=2)

    first = make_trainer(scheduler=schedule)
    first.fit(batches(x, y, 16, shuffle=True, generator=np.random.default_rng(5)), epochs=1,
              checkpoint=tmp_path / "run.npz")
    tt.manual_seed(123)  # disturb the global RNG: resume must restore it
    resumed = make_trainer(seed=99, scheduler=schedule).resume(tmp_path / "run.npz")
    assert resumed.epoch == 1 and len(resumed.history) == 1
    resumed.fit(batches(x, y, 16, shuffle=True, generator=np.random.default_rng(777)), epochs=2)

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    for key, state in straight.optimizer.state_dict()["state"].items():
        np.testing.assert_array_equal(state["exp_avg_sq"], resumed.optimizer.state_dict()["state"][key]["exp_avg_sq"])
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_checkpoint_contents_and_atomic_write(tmp_path):
    x, y = blobs(32)
    trainer = make_trainer()
    path = tmp_path / "ckpt" / "last.npz"
    trainer.fit(batches(x, y, 16, shuffle=True, generator=np.random.default_rng(0)), epochs=2, checkpoint=path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.npz"]  # no temp files left behind
    state = tt.load(path)
    assert state["epoch"] == 2 and set(state["model"]) == set(trainer.model.state_dict())
    assert state["loader_rng"]["bit_generator"] == "PCG64" and state["rng"]["bit_generator"] == "PCG64"
    assert len(state["trainer"]["history"]) == 2


def test_resume_refuses_foreign_or_mismatched_checkpoints(tmp_path):
    tt.save({"weights": np.zeros(3)}, tmp_path / "other.npz")
    with pytest.raises(CheckpointError, match="not a Trainer checkpoint"):
        make_trainer().resume(tmp_path / "other.npz")
    trainer = make_trainer()
    trainer.save_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="scheduler"):
        make_trainer(scheduler=lambda o: StepLR(o, 1)).resume(tmp_path / "plain.npz")
    tt.manual_seed(0)
    other = Trainer(tt.Linear(4, 2), SGD([tt.Parameter(np.zeros(1, np.float32))], lr=0.1), CrossEntropyLoss(),
                    progress=False)
    with pytest.raises(CheckpointError):
        other.resume(tmp_path / "plain.npz")


def trainer_state(trainer) -> dict:
    """Everything a resume may change, as copies."""
    return {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
            "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
            "rng": tt.get_rng_state(), "epoch": trainer.epoch, "history": list(trainer.history),
            "best": trainer.best, "loader_rng": trainer._loader_rng}


def resume_refused(trainer, checkpoint: dict, path, *fragments) -> str:
    """Resuming from ``checkpoint`` raises a CheckpointError naming every fragment and
    changes nothing in ``trainer`` (nor the global RNG)."""
    tt.save(checkpoint, path)
    before = trainer_state(trainer)
    with pytest.raises(CheckpointError) as info:
        trainer.resume(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    np.testing.assert_equal(trainer_state(trainer), before)
    return str(info.value)


def saved_run(tmp_path, **kwargs) -> dict:
    """The checkpoint of a short run (one epoch of training)."""
    x, y = blobs(32)
    trainer = make_trainer(**kwargs)
    trainer.fit(batches(x, y, 16, shuffle=True, generator=np.random.default_rng(0)), epochs=1,
                checkpoint=tmp_path / "run.npz")
    return tt.load(tmp_path / "run.npz")


def test_a_bad_optimizer_part_leaves_the_weights_alone(tmp_path):
    """The optimizer is loaded after the model: a bad optimizer part must stop the model too."""
    checkpoint = saved_run(tmp_path)
    state = checkpoint["optimizer"]["state"]["0"]
    state["exp_avg"] = np.full(state["exp_avg"].shape, "x")
    resume_refused(make_trainer(seed=3), checkpoint, tmp_path / "bad.npz",
                   "nothing was loaded", "optimizer: ", "'exp_avg' has dtype text")


def test_a_checkpoint_of_another_optimizer_is_refused_up_front(tmp_path):
    checkpoint = saved_run(tmp_path)
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(4, 16), tt.ReLU(), tt.Dropout(0.2), tt.Linear(16, 3))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), CrossEntropyLoss(), progress=False)
    resume_refused(trainer, checkpoint, tmp_path / "adam.npz", "optimizer of type Adam, this one is SGD")


def test_a_checkpoint_without_a_part_names_what_is_missing(tmp_path):
    checkpoint = saved_run(tmp_path)
    del checkpoint["scheduler"], checkpoint["rng"]
    resume_refused(make_trainer(), checkpoint, tmp_path / "partial.npz",
                   "not a complete Trainer checkpoint", "missing keys: scheduler, rng")


def test_every_bad_part_of_a_checkpoint_is_listed_at_once(tmp_path):
    checkpoint = saved_run(tmp_path, scheduler=lambda o: StepLR(o, step_size=1, gamma=0.5))
    checkpoint["model"]["0.weight"] = checkpoint["model"]["0.weight"].astype(complex)
    checkpoint["scheduler"]["gamma"] = "half"
    checkpoint["rng"] = {"bit_generator": "PCG64", "state": "broken"}
    checkpoint["loader_rng"] = {"bit_generator": "Mersenne"}
    checkpoint["epoch"] = -1
    checkpoint["trainer"]["best"] = "low"
    resume_refused(make_trainer(scheduler=lambda o: StepLR(o, step_size=1, gamma=0.5)), checkpoint,
                   tmp_path / "bad.npz",
                   "model: state dict does not fit Sequential: dtypes that cannot be loaded: 0.weight",
                   "scheduler: the state dict does not fit this StepLR: gamma should be a number",
                   "rng is not a valid PCG64 state", "loader_rng should be the state of a NumPy bit generator",
                   "epoch should be a non-negative integer", "trainer.best should be a number or None")


def test_generator_states_must_be_of_the_generators_they_go_into(tmp_path):
    checkpoint = saved_run(tmp_path)
    checkpoint["rng"] = np.random.MT19937(0).state
    resume_refused(make_trainer(), checkpoint, tmp_path / "mt.npz", "rng holds the state of the bit generator MT19937, "
                                                                      "this one is PCG64")
    checkpoint = saved_run(tmp_path)
    checkpoint["loader_rng"] = np.random.MT19937(0).state
    trainer = make_trainer()
    trainer.resume(tt.save(checkpoint, tmp_path / "loader.npz"))
    loader = batches(*blobs(32), 16, shuffle=True, generator=np.random.default_rng(0))
    before = trainer.model.state_dict()
    with pytest.raises(CheckpointError, match="loader_rng holds the state of the bit generator MT19937, this one is PCG64"):
        trainer.fit(loader, epochs=2)
    np.testing.assert_equal(trainer.model.state_dict(), before)


def test_a_good_resume_works_after_a_refused_one(tmp_path):
    checkpoint = saved_run(tmp_path)
    trainer = make_trainer(seed=4)
    bad = {**checkpoint, "model": {**checkpoint["model"], "3.bias": np.zeros(2)}}
    resume_refused(trainer, bad, tmp_path / "bad.npz", "3.bias: checkpoint (2,) vs model (3,)")
    trainer.resume(tmp_path / "run.npz")
    np.testing.assert_equal(trainer.model.state_dict(), checkpoint["model"])
    np.testing.assert_equal(trainer.optimizer.state_dict(), checkpoint["optimizer"])
    assert trainer.epoch == 1 and tt.get_rng_state() == checkpoint["rng"]


# -- memory ------------------------------------------------------------------------------


def test_repeated_training_steps_do_not_grow_memory():
    x, y = blobs(64)
    trainer = make_trainer()
    xb, yb = Tensor(x), y

    def steps(n):
        for _ in range(n):
            trainer.train_step(xb, yb)

    steps(20)  # optimizer state, scratch buffers, caches
    gc.collect()
    tracemalloc.start()
    steps(10)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    steps(300)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 20_000, f"memory grew by {after - before} bytes over 300 steps"


@pytest.mark.parametrize("module", [losses, optim, schedulers, clip, metrics, train, watch], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0

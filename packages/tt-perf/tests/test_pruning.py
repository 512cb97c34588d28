from itertools import pairwise

import numpy as np
import pytest
import tt_core
import tt_data
from tt_core import Tensor
from tt_perf import Pruner, SparsitySchedule, prune, shrink


def weights(model):
    return [m.weight.data for m in model.modules() if type(m).__name__ == "Linear"]


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.95])
def test_global_sparsity_is_exact_and_removes_smallest_magnitudes(mlp, sparsity):
    before = np.concatenate([w.ravel().copy() for w in weights(mlp)])
    pruner = prune(mlp, sparsity)
    after = np.concatenate([w.ravel() for w in weights(mlp)])
    assert (after == 0).sum() == round(sparsity * after.size)
    assert sum(int((~m).sum()) for m in pruner.masks.values()) == round(sparsity * after.size)
    if 0 < sparsity:
        kept, removed = np.abs(before[after != 0]), np.abs(before[after == 0])
        assert kept.min() >= removed.max()
    assert pruner.sparsity() == pytest.approx(round(sparsity * after.size) / after.size)


def test_layer_scope_prunes_each_layer_equally(mlp):
    pruner = prune(mlp, 0.5, scope="layer")
    for w in weights(mlp):
        assert (w == 0).sum() == round(0.5 * w.size)
    assert set(pruner.layer_sparsity()) == {"0", "2", "4"}


def test_rising_sparsity_keeps_pruned_weights_pruned(mlp):
    pruner = Pruner(mlp).prune(0.4)
    first = {name: mask.copy() for name, mask in pruner.masks.items()}
    for w in weights(mlp):  # training moves weights: make the pruned ones look big
        w += 1.0
    pruner.apply().prune(0.6)
    for name, mask in pruner.masks.items():
        assert not np.any(mask & ~first[name])


def test_structured_pruning_removes_whole_neurons_and_spares_the_classifier(mlp):
    pruner = prune(mlp, 0.5, structured=True)
    assert set(pruner.masks) == {"0", "2"}  # the output layer keeps all classes
    first = mlp[0]
    dead = ~first.weight.data.any(axis=1)
    assert dead.sum() == 16 and np.all(first.bias.data[dead] == 0)
    assert np.all(mlp[4].weight.data != 0)


def test_shrink_gives_a_smaller_model_with_the_same_outputs(mlp, rng):
    x = Tensor(rng.standard_normal((5, 64)).astype(np.float32))
    prune(mlp, 0.5, structured=True)
    expected = mlp(x).data
    shrink(mlp)
    assert [mlp[0].out_features, mlp[2].in_features, mlp[2].out_features, mlp[4].in_features] == [16, 16, 8, 8]
    assert mlp[0].weight.shape == (16, 64) and mlp[0].weight.data.flags["F_CONTIGUOUS"]  # a Linear's layout
    np.testing.assert_allclose(mlp(x).data, expected, atol=1e-6)


def test_shrink_refuses_layers_that_do_not_keep_zeros():
    model = tt_core.Sequential(tt_core.Linear(4, 4), tt_core.Sigmoid(), tt_core.Linear(4, 2))
    with pytest.raises(tt_core.TinyTorchError, match="Sigmoid"):
        shrink(model)


def test_schedule_is_cubic_and_clamped():
    schedule = SparsitySchedule(final=0.8, steps=100, begin=10)
    assert schedule(0) == schedule(10) == 0.0
    assert schedule(60) == pytest.approx(0.8 * (1 - 0.5**3))
    assert schedule(110) == schedule(1000) == pytest.approx(0.8)
    values = [schedule(t) for t in range(120)]
    assert all(a <= b for a, b in pairwise(values))
    with pytest.raises(ValueError):
        SparsitySchedule(final=1.0, steps=10)


def test_bad_arguments(mlp):
    before = [p.data.copy() for p in mlp.parameters()]
    for sparsity in (1.0, 1.5, -0.1, "0.5", True):
        with pytest.raises(tt_core.ArgumentError, match=r"sparsity must be a number in \[0, 1\)"):
            prune(mlp, sparsity)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, mlp.parameters()))  # nothing pruned
    with pytest.raises(tt_core.ArgumentError, match="scope"):
        Pruner(mlp, scope="model")
    with pytest.raises(tt_core.ArgumentError, match="steps"):
        SparsitySchedule(final=0.5, steps=0)
    with pytest.raises(tt_core.TinyTorchError, match="no Linear"):
        Pruner(tt_core.Sequential(tt_core.ReLU()))


def test_structured_conv_channels_with_batchnorm_shrink_exactly(rng):
    tt_core.manual_seed(4)
    model = tt_core.Sequential(
        tt_data.Conv2d(2, 8, 3, padding=1), tt_data.BatchNorm2d(8), tt_core.ReLU(), tt_data.MaxPool2d(2),
        tt_data.Conv2d(8, 6, 3, padding=1), tt_data.BatchNorm2d(6), tt_core.ReLU(),
        tt_data.Flatten(), tt_core.Linear(6 * 3 * 3, 4))
    for bn in (model[1], model[5]):
        bn.running_mean.data = rng.standard_normal(bn.num_features).astype(np.float32)
        bn.bias.data = rng.standard_normal(bn.num_features).astype(np.float32)
    model.eval()
    x = Tensor(rng.standard_normal((3, 2, 6, 6)).astype(np.float32))
    pruner = prune(model, 0.5, structured=True)
    assert set(pruner.masks) == {"0", "4"}
    assert np.all(model[1].weight.data[~pruner.masks["0"].any(axis=(1, 2, 3))] == 0)  # BatchNorm scale zeroed too
    expected = model(x).data
    shrink(model)
    assert (model[0].out_channels, model[1].num_features, model[4].in_channels, model[4].out_channels) == (4, 4, 4, 3)
    assert model[8].in_features == 3 * 3 * 3
    np.testing.assert_allclose(model(x).data, expected, atol=1e-5)


def test_prune_while_finetuning_follows_the_schedule_and_keeps_zeros(mlp, rng):
    from tt_learn.losses import CrossEntropyLoss
    from tt_learn.optim import Adam
    from tt_learn.train import batches
    from tt_perf import prune_finetune

    x = rng.standard_normal((256, 64)).astype(np.float32)
    y = (x[:, :10].argmax(axis=1)).astype(np.int64)  # a learnable rule
    pruner = Pruner(mlp)
    schedule = SparsitySchedule(final=0.7, steps=60)
    seen = []
    history = prune_finetune(mlp, pruner, schedule, batches(x, y, 32, shuffle=True), CrossEntropyLoss(),
                             Adam(mlp.parameters(), lr=5e-3), steps=100, prune_every=10,
                             on_step=lambda step, sparsity, loss: seen.append(pruner.sparsity()))
    assert len(history) == 100 and [h[0] for h in history] == list(range(100))
    assert [h[1] for h in history[::10]] == pytest.approx([schedule(t) for t in range(0, 100, 10)])
    assert all(a <= b + 1e-12 for a, b in pairwise(seen))  # the optimizer never revives a pruned weight
    assert pruner.sparsity() == pytest.approx(0.7, abs=1e-3)
    assert np.mean([h[2] for h in history[-10:]]) < np.mean([h[2] for h in history[:10]])
    assert not mlp.training

import os

import numpy as np
import tt_core
from tt_core.digits import load_digits
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import Adam
from tt_learn.train import batches
from tt_perf.compress import accuracy, compress_classifier, load_compressed_model


def test_each_stage_is_smaller_and_the_accuracy_is_that_of_the_file(tmp_path):
    tt_core.manual_seed(0)
    (train_x, train_y), (test_x, test_y) = [load_digits(split) for split in ("train", "test")]
    train_x, test_x = [x.reshape(len(x), -1).astype(np.float32) / 16 for x in (train_x, test_x)]
    model = tt_core.Sequential(tt_core.Linear(64, 128), tt_core.ReLU(), tt_core.Linear(128, 10))
    optimizer, loss_fn = Adam(model.parameters(), lr=3e-3), CrossEntropyLoss()
    for _ in range(5):
        for x, y in batches(train_x, train_y, 32, shuffle=True):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    before = model.state_dict()

    compressed, report = compress_classifier(model, train_x, train_y, test_x, test_y, tmp_path, name="m",
                                             sparsity=0.8, clusters=8, finetune_steps=200, prune_every=10, lr=1e-3)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())  # the model is not changed
    sizes = {stage: os.path.getsize(tmp_path / f"m-{stage}.npz") for stage in ("float32", "pruned", "shared", "compressed")}
    assert [report.float_bytes, report.pruned_bytes, report.shared_bytes, report.compressed_bytes] == list(sizes.values())
    assert report.float_bytes > report.pruned_bytes > report.shared_bytes > report.compressed_bytes
    assert report.ratio > 8 and abs(report.sparsity - 0.8) < 1e-3 and report.accuracy_drop < 5
    weights = compressed[0].weight.data
    assert len(np.unique(weights[weights != 0])) <= 8
    rebuilt = load_compressed_model(tmp_path / "m-compressed.npz", model)
    assert accuracy(rebuilt, test_x, test_y) == report.compressed_accuracy

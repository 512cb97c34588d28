"""MNIST MLP training-epoch time in TinyTorch vs PyTorch (CPU), in one run.

The network, batch size and optimizer are milestone 03's: 784-512-512-10 with ReLU and
dropout 0.2, batch 128, Adam (lr 1e-3), cross-entropy, the 60,000 MNIST training images
(float32 in [0, 1]) shuffled every epoch. Both start from the same weights and use the same
number of threads (BLAS and torch intra-op). An epoch is timed end to end, loading included:

* tt: ``tt_data.DataLoader`` over a ``TensorDataset`` (one fancy-index per batch);
* torch: ``torch.utils.data.DataLoader`` over a ``TensorDataset`` -- the usual way to feed a
  torch model (it fetches samples one at a time and collates them); the headline ratio;
* torch, indexing: a batch cut from the tensors with a shuffled index (no DataLoader), the
  fastest way to feed torch, for reference.

Epochs alternate between the three so that machine noise hits all alike; the result is the
median seconds per epoch of each and the ratios. Needs the MNIST files (``TT_DATA_DIR``).

    TT_DATA_DIR=../shared/data python benchmarks/mnist_mlp_vs_torch.py [--threads 1] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import sys


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (same both sides)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per contender (median reported)")
    parser.add_argument("--batches", type=int, default=None, help="cut every epoch to this many batches")
    return parser.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before NumPy and torch load their BLAS

import itertools  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import tt_core as tt  # noqa: E402
from tt_data import DataLoader, dataset  # noqa: E402
from tt_learn.losses import CrossEntropyLoss  # noqa: E402
from tt_learn.optim import Adam  # noqa: E402

SIZES = (784, 512, 512, 10)
DROPOUT = 0.2
BATCH = 128
LR = 1e-3


def tt_model() -> tt.Sequential:
    tt.manual_seed(0)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [tt.Linear(fan_in, fan_out), tt.ReLU(), tt.Dropout(DROPOUT)]
    return tt.Sequential(*layers, tt.Linear(*SIZES[-2:]))


def torch_copy(model: tt.Sequential) -> torch.nn.Sequential:
    layers = []
    for fan_in, fan_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(*SIZES[-2:]))
    with torch.no_grad():
        for (_, ours), theirs in zip(model.named_parameters(), net.parameters()):
            theirs.copy_(torch.from_numpy(ours.data.copy()))
    return net


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    train = dataset("mnist", "train", flatten=True, progress=False)
    images, labels = (torch.from_numpy(a) for a in train.arrays)

    model = tt_model()
    net_loader, net_index = torch_copy(model), torch_copy(model)
    tt_opt = Adam(model.parameters(), lr=LR)
    loader_opt, index_opt = (torch.optim.Adam(n.parameters(), lr=LR) for n in (net_loader, net_index))
    tt_loss_fn, torch_loss_fn = CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    tt_loader = DataLoader(train, batch_size=BATCH, shuffle=True, seed=0)
    torch_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=BATCH,
                                               shuffle=True)

    def torch_index_batches():
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), BATCH):
            index = order[start:start + BATCH]
            yield images[index], labels[index]

    def tt_epoch() -> float:
        for x, y in itertools.islice(tt_loader, ARGS.batches):
            loss = tt_loss_fn(model(x), y)
            tt_opt.zero_grad()
            loss.backward()
            tt_opt.step()
        return loss.item()

    def torch_epoch(net, optimizer, batches) -> float:
        for x, y in itertools.islice(batches, ARGS.batches):
            loss = torch_loss_fn(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    contenders = {
        "tt (DataLoader)": tt_epoch,
        "torch (DataLoader)": lambda: torch_epoch(net_loader, loader_opt, torch_loader),
        "torch (indexing)": lambda: torch_epoch(net_index, index_opt, torch_index_batches()),
    }
    seconds = {name: [] for name in contenders}
    last_loss = {}
    for _ in range(ARGS.epochs):
        for name, epoch in contenders.items():
            start = time.perf_counter()
            last_loss[name] = epoch()
            seconds[name].append(time.perf_counter() - start)

    median = {name: statistics.median(times) for name, times in seconds.items()}
    batches = ARGS.batches or len(tt_loader)
    print(f"MNIST MLP {'-'.join(map(str, SIZES))} (ReLU, dropout {DROPOUT}), batch {BATCH}, Adam lr {LR}; "
          f"{batches} batches per epoch; threads={ARGS.threads} (BLAS and torch)")
    for name, value in median.items():
        print(f"  {name:<20} {value:7.2f} s/epoch  (median of {ARGS.epochs}; last batch loss {last_loss[name]:.4f})")
    ours = median["tt (DataLoader)"]
    print(f"ratio tt / torch (DataLoader) = {ours / median['torch (DataLoader)']:.2f}x  (target <= 1.0x)")
    print(f"ratio tt / torch (indexing)   = {ours / median['torch (indexing)']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())

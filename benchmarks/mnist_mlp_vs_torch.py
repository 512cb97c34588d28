"""MNIST MLP training-epoch time in TinyTorch vs PyTorch (CPU), in one run.

The network, batch size and optimizer are milestone 03's: 784-512-256-10 with ReLU, batch
128, Adam at the peak rate of its one-cycle schedule (lr 2e-3), cross-entropy, the 60,000 MNIST training images
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

import sys

import _harness as bench


def parse():
    parser = bench.parser(__doc__)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per contender (median reported)")
    parser.add_argument("--batches", type=int, default=None, help="cut every epoch to this many batches")
    return parser.parse_args()


ARGS = parse()
bench.use_threads(ARGS.threads)  # before NumPy and torch load their BLAS

import itertools

import torch
import tt_core as tt
from tt_data import DataLoader, dataset
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import Adam

SIZES = (784, 512, 256, 10)
BATCH = 128
LR = 2e-3


def mlp(nn):
    """The network, from ``torch.nn`` or its TinyTorch namesakes (:func:`_harness.tt_nn`)."""
    layers = []
    for fan_in, fan_out in itertools.pairwise(SIZES[:-1]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(*SIZES[-2:]))


def main() -> None:
    torch.manual_seed(0)
    train = dataset("mnist", "train", flatten=True, progress=False)
    images, labels = (torch.from_numpy(a) for a in train.arrays)

    tt.manual_seed(0)
    model = mlp(bench.tt_nn())
    net_loader, net_index = (bench.copy_weights(model, mlp(torch.nn)) for _ in range(2))
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

    def epoch(net, optimizer, loss_fn, batches) -> float:
        for x, y in itertools.islice(batches, ARGS.batches):
            loss = bench.train_batch(net, loss_fn, x, y, optimizer)
        return loss.item()

    contenders = {
        "tt (DataLoader)": lambda _: epoch(model, tt_opt, tt_loss_fn, tt_loader),
        "torch (DataLoader)": lambda _: epoch(net_loader, loader_opt, torch_loss_fn, torch_loader),
        "torch (indexing)": lambda _: epoch(net_index, index_opt, torch_loss_fn, torch_index_batches()),
    }
    result = bench.interleaved(contenders, rounds=ARGS.epochs)  # one epoch per round

    median = {name: result.median(name) / 1e3 for name in contenders}
    batches = ARGS.batches or len(tt_loader)
    print(f"MNIST MLP {'-'.join(map(str, SIZES))} (ReLU), batch {BATCH}, Adam lr {LR}; "
          f"{batches} batches per epoch; {bench.threads_and_kernels()}")
    for name, value in median.items():
        print(f"  {name:<20} {value:7.2f} s/epoch  (median of {ARGS.epochs}; last batch loss {result.last[name]:.4f})")
    ours = median["tt (DataLoader)"]
    print(f"  against torch indexing tensors directly: {ours / median['torch (indexing)']:.2f}x")
    print(f"ratio tt/torch = {ours / median['torch (DataLoader)']:.2f}x  (both with their DataLoader; target <= 1.0x)")


if __name__ == "__main__":
    sys.exit(main())

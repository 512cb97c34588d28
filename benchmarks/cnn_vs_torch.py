"""Forward + backward speed of milestone 04's CIFAR-10 network in TinyTorch vs PyTorch (CPU),
in one run, for the whole network and per layer type.

The network is ``tt_milestones.history.m04_cnn.cifar_net``, built once from TinyTorch's
layers and once from ``torch.nn`` with the same weights (the first losses agree). One step =
forward + cross-entropy + backward on a random batch of 128 images (no optimizer update).
Both libraries use the same number of threads. Rounds alternate tt and torch so that noise
from other processes hits both alike; reported are the median ms per step and the ratio.

Per layer type: each layer alone, on the input it sees inside the network (same values and
memory layout), forward and then backward of a random output gradient; the times of all
layers of a type are summed. (The first convolution gets no input gradient, as in training.)

    python benchmarks/cnn_vs_torch.py [--threads 1] [--batch 128] [--rounds 7] [--steps 2]
"""

from __future__ import annotations

import argparse
import os
import sys


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (same both sides)")
    parser.add_argument("--batch", type=int, default=128, help="images per batch")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per library (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer-type table")
    parser.add_argument("--profile", action="store_true", help="cProfile the tt steps instead of comparing")
    return parser.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before NumPy and torch load their BLAS

import statistics
import time
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import torch
import tt_core as tt
import tt_data
from tt_learn.losses import CrossEntropyLoss
from tt_milestones.history.m04_cnn import cifar_net

TT_NN = SimpleNamespace(
    Sequential=tt.Sequential, Conv2d=tt_data.Conv2d, MaxPool2d=tt_data.MaxPool2d, BatchNorm2d=tt_data.BatchNorm2d,
    ReLU=tt.ReLU, Flatten=tt_data.Flatten, Linear=tt.Linear,
)


def same_weights(model, net) -> None:
    state = net.state_dict()
    model.load_state_dict({k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")})


def interleaved(tt_fn, torch_fn) -> tuple[float, float, list[float]]:
    """Median ms per call of each, timed in alternating rounds, and the per-round ratios."""
    def timed(fn) -> float:
        start = time.perf_counter()
        for _ in range(ARGS.steps):
            fn()
        return (time.perf_counter() - start) / ARGS.steps * 1e3

    for _ in range(ARGS.warmup):
        tt_fn()
        torch_fn()
    ours, theirs = [], []
    for _ in range(ARGS.rounds):
        ours.append(timed(tt_fn))
        theirs.append(timed(torch_fn))
    return statistics.median(ours), statistics.median(theirs), sorted(a / b for a, b in zip(ours, theirs))


def layer_inputs(model, net, x, tx):
    """The input each layer sees in a forward pass (tt arrays keep their memory layout)."""
    pairs = []
    for layer, torch_layer in zip(model, net):
        pairs.append((layer, torch_layer, x, tx))
        x, tx = layer(x), torch_layer(tx)
    return pairs


def time_layer(layer, x: np.ndarray, needs_input_grad: bool, library: str) -> tuple[float, float]:
    """(forward ms, backward ms) of one call of a layer on ``x``."""
    rng = np.random.default_rng(0)
    if library == "tt":
        inp = tt.Tensor(x, requires_grad=needs_input_grad)
        start = time.perf_counter()
        out = layer(inp)
        middle = time.perf_counter()
        grad = np.empty_like(out.data)  # the output's memory layout, as in the network
        grad[...] = rng.standard_normal(out.shape, dtype=np.float32)
        restart = time.perf_counter()
        out.backward(grad)
    else:
        inp = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(needs_input_grad)
        start = time.perf_counter()
        out = layer(inp)
        middle = time.perf_counter()
        grad = torch.from_numpy(rng.standard_normal(tuple(out.shape), dtype=np.float32))
        restart = time.perf_counter()
        out.backward(grad)
    end = time.perf_counter()
    return (middle - start) * 1e3, (end - restart) * 1e3


def per_layer_type(model, net, x, tx) -> dict[str, list[float]]:
    """Summed (tt fwd, tt bwd, torch fwd, torch bwd) medians per layer type."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for index, (layer, torch_layer, inp, _) in enumerate(layer_inputs(model, net, x, tx)):
        samples = {"tt": [], "torch": []}
        for _ in range(ARGS.rounds):
            for library, module in (("tt", layer), ("torch", torch_layer)):
                samples[library].append(time_layer(module, inp.data, index > 0, library))
        row = totals[type(layer).__name__]
        for k, library in enumerate(("tt", "torch")):
            row[2 * k] += statistics.median(s[0] for s in samples[library])
            row[2 * k + 1] += statistics.median(s[1] for s in samples[library])
    return totals


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    tt.manual_seed(0)
    torch.manual_seed(0)
    model, net = cifar_net(TT_NN), cifar_net(torch.nn)
    same_weights(model, net)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((ARGS.batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, ARGS.batch)
    x, y = tt.Tensor(images), tt.Tensor(labels)
    tx, ty = torch.from_numpy(images), torch.from_numpy(labels)
    loss_fn, torch_loss_fn = CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def tt_step():
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    def torch_step():
        net.zero_grad()
        loss = torch_loss_fn(net(tx), ty)
        loss.backward()
        return loss

    first = tt_step().item(), torch_step().item()
    if ARGS.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(ARGS.steps * 3):
            tt_step()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return

    ours, theirs, ratios = interleaved(tt_step, torch_step)
    print(f"milestone 04 CIFAR network {model.num_parameters():,} parameters, batch {ARGS.batch}, "
          f"forward + cross-entropy + backward; threads={ARGS.threads} (BLAS and torch)")
    print(f"first loss: tt {first[0]:.5f}  torch {first[1]:.5f}")
    print(f"tt    {ours:8.1f} ms/batch (median of {ARGS.rounds} rounds x {ARGS.steps} steps)")
    print(f"torch {theirs:8.1f} ms/batch")
    print(f"ratio tt/torch = {ours / theirs:.2f}x  (per-round ratios {ratios[0]:.2f}..{ratios[-1]:.2f}; target <= 1.5x)")
    if ARGS.no_layers:
        return
    totals = per_layer_type(model, net, x, tx)
    print("\nper layer type, each layer alone, summed (ms, medians):")
    print(f"{'layer':<12} {'tt fwd':>8} {'tt bwd':>8} {'torch fwd':>10} {'torch bwd':>10} {'ratio':>7}")
    for name, (tf, tb, pf, pb) in sorted(totals.items(), key=lambda kv: -sum(kv[1][:2])):
        print(f"{name:<12} {tf:8.1f} {tb:8.1f} {pf:10.1f} {pb:10.1f} {(tf + tb) / (pf + pb):6.2f}x")
    tf, tb, pf, pb = (sum(row[k] for row in totals.values()) for k in range(4))
    print(f"{'all layers':<12} {tf:8.1f} {tb:8.1f} {pf:10.1f} {pb:10.1f} {(tf + tb) / (pf + pb):6.2f}x")


if __name__ == "__main__":
    sys.exit(main())

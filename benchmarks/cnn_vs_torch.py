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

import sys

import _harness as bench


def parse():
    parser = bench.parser(__doc__)
    parser.add_argument("--batch", type=int, default=128, help="images per batch")
    bench.add_round_options(parser, steps=2, rounds=7, warmup=2, steps_help="steps per timed round")
    parser.add_argument("--no-layers", action="store_true", help="skip the per-layer-type table")
    return parser.parse_args()


ARGS = parse()
bench.use_threads(ARGS.threads)  # before NumPy and torch load their BLAS

import statistics
import time
from collections import defaultdict

import numpy as np
import torch
import tt_core as tt
from tt_learn.losses import CrossEntropyLoss
from tt_milestones.history.m04_cnn import cifar_net


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
    tt.manual_seed(0)
    torch.manual_seed(0)
    model = cifar_net(bench.tt_nn())
    net = bench.copy_weights(model, cifar_net(torch.nn))
    rng = np.random.default_rng(0)
    images = rng.standard_normal((ARGS.batch, 3, 32, 32), dtype=np.float32)
    labels = rng.integers(0, 10, ARGS.batch)
    x, y = tt.Tensor(images), tt.Tensor(labels)
    tx, ty = torch.from_numpy(images), torch.from_numpy(labels)
    tt_step = bench.training_step(model, CrossEntropyLoss(), [(x, y)])
    torch_step = bench.training_step(net, torch.nn.CrossEntropyLoss(), [(tx, ty)])

    first = tt_step().item(), torch_step().item()
    bench.warm_up([tt_step, torch_step], ARGS.warmup)
    if ARGS.profile:
        bench.profile(tt_step, ARGS.steps * 3, lines=25)
        return

    result = bench.interleaved({"tt": tt_step, "torch": torch_step}, rounds=ARGS.rounds, steps=ARGS.steps)
    print(f"milestone 04 CIFAR network {model.num_parameters():,} parameters, batch {ARGS.batch}, "
          f"forward + cross-entropy + backward; {bench.threads_and_kernels()}")
    print(f"first loss: tt {first[0]:.5f}  torch {first[1]:.5f}")
    if not ARGS.no_layers:
        print_layer_table(per_layer_type(model, net, x, tx))
    bench.print_comparison(result, unit="batch", digits=1, target=1.0)  # the ratio line comes last


def print_layer_table(totals: dict[str, list[float]]) -> None:
    """The per-layer-type table of :func:`per_layer_type`, costliest type first, and the sum."""
    print("per layer type, each layer alone, summed (ms, medians):")
    print(f"{'layer':<12} {'tt fwd':>8} {'tt bwd':>8} {'torch fwd':>10} {'torch bwd':>10} {'ratio':>7}")
    for name, (tf, tb, pf, pb) in sorted(totals.items(), key=lambda kv: -sum(kv[1][:2])):
        print(f"{name:<12} {tf:8.1f} {tb:8.1f} {pf:10.1f} {pb:10.1f} {(tf + tb) / (pf + pb):6.2f}x")
    tf, tb, pf, pb = (sum(row[k] for row in totals.values()) for k in range(4))
    print(f"{'all layers':<12} {tf:8.1f} {tb:8.1f} {pf:10.1f} {pb:10.1f} {(tf + tb) / (pf + pb):6.2f}x\n")


if __name__ == "__main__":
    sys.exit(main())

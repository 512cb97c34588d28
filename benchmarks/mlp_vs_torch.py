"""Training-step speed of a 784-256-128-10 MLP in TinyTorch vs PyTorch (CPU), in one run.

One step = forward + cross-entropy loss + backward + Adam step, batch 64, random data, the
same initial weights on both sides. Both libraries use the same number of threads (BLAS and
torch intra-op). Rounds alternate tt and torch so that machine noise hits both alike; the
result is the median ms per step of each and their ratio, in wall time and in process CPU
time (the latter less disturbed when other jobs share the cores).

    python benchmarks/mlp_vs_torch.py [--threads 1] [--steps 20] [--rounds 41]
"""

from __future__ import annotations

import sys

import _harness as bench


def parse():
    parser = bench.parser(__doc__)
    bench.add_round_options(parser, steps=20, rounds=41, warmup=20)
    return parser.parse_args()


ARGS = parse()
bench.use_threads(ARGS.threads)  # before NumPy and torch load their BLAS

import itertools
import statistics

import numpy as np
import torch
import tt_core as tt
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import Adam

SIZES = (784, 256, 128, 10)
BATCH = 64


def mlp(nn):
    """The network, from ``torch.nn`` or its TinyTorch namesakes (:func:`_harness.tt_nn`)."""
    layers = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def main() -> None:
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], BATCH))
            for _ in range(8)]
    tt_data = [(tt.Tensor(x), y) for x, y in data]
    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    tt.manual_seed(0)
    model = mlp(bench.tt_nn())
    net = bench.copy_weights(model, mlp(torch.nn))
    opt, torch_opt = Adam(model.parameters(), lr=1e-3), torch.optim.Adam(net.parameters(), lr=1e-3)
    tt_step = bench.training_step(model, CrossEntropyLoss(), tt_data, opt)
    torch_step = bench.training_step(net, torch.nn.CrossEntropyLoss(), torch_data, torch_opt)

    # same init, same data: the first losses agree
    first = tt_step(0).item(), torch_step(0).item()
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam; {bench.threads_and_kernels()}")
    print(f"first loss: tt {first[0]:.6f}  torch {first[1]:.6f}")
    bench.warm_up([tt_step, torch_step], ARGS.warmup - 1, start=1)

    if ARGS.profile:
        bench.profile(tt_step, ARGS.steps * 4, lines=25)
        return

    # wall time, and process CPU time (less disturbed when other jobs share the cores)
    medians = {}
    for clock in ("wall", "cpu"):
        result = bench.interleaved({"tt": tt_step, "torch": torch_step}, rounds=ARGS.rounds, steps=ARGS.steps,
                                   clock=clock)
        ratios = result.ratios()
        medians[clock] = statistics.median(ratios)
        print(f"[{clock:4}] tt {result.median('tt'):7.3f} ms/step, torch {result.median('torch'):7.3f} ms/step "
              f"(medians of {ARGS.rounds} rounds x {ARGS.steps} steps); tt/torch {medians[clock]:.2f}x, "
              f"the median of the per-round ratios "
              f"(quartiles {ratios[len(ratios) // 4]:.2f}..{ratios[3 * len(ratios) // 4]:.2f})")
    print(f"ratio tt/torch = {medians['wall']:.2f}x  (wall clock; cpu clock {medians['cpu']:.2f}x; target <= 1.0x)")


if __name__ == "__main__":
    sys.exit(main())

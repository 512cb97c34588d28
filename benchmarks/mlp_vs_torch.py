"""Training-step speed of a 784-256-128-10 MLP in TinyTorch vs PyTorch (CPU), in one run.

One step = forward + cross-entropy loss + backward + Adam step, batch 64, random data, the
same initial weights on both sides. Both libraries use the same number of threads (BLAS and
torch intra-op). Rounds alternate tt and torch so that machine noise hits both alike; the
result is the median ms per step of each and their ratio, in wall time and in process CPU
time (the latter less disturbed when other jobs share the cores).

    python benchmarks/mlp_vs_torch.py [--threads 1] [--steps 20] [--rounds 41]
"""

from __future__ import annotations

import argparse
import os
import sys


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (same both sides)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=41, help="timed rounds per library (median reported)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--profile", action="store_true", help="cProfile the tt steps instead of comparing")
    return parser.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before NumPy and torch load their BLAS

import itertools
import statistics
import time

import numpy as np
import torch
import tt_core as tt
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import Adam

SIZES = (784, 256, 128, 10)
BATCH = 64


def tt_model():
    tt.manual_seed(0)
    layers = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        layers += [tt.Linear(fan_in, fan_out), tt.ReLU()]
    return tt.Sequential(*layers[:-1])


def torch_copy(model) -> torch.nn.Sequential:
    layers = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), net.parameters()):
            theirs.copy_(torch.from_numpy(ours.data.copy()))
    return net


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((BATCH, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], BATCH))
            for _ in range(8)]
    tt_data = [(tt.Tensor(x), y) for x, y in data]
    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    model = tt_model()
    net = torch_copy(model)
    opt, torch_opt = Adam(model.parameters(), lr=1e-3), torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn, torch_loss_fn = CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def tt_step(i):
        x, y = tt_data[i % len(tt_data)]
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def torch_step(i):
        x, y = torch_data[i % len(torch_data)]
        loss = torch_loss_fn(net(x), y)
        torch_opt.zero_grad()
        loss.backward()
        torch_opt.step()
        return loss

    # same init, same data: the first losses agree
    first = tt_step(0).item(), torch_step(0).item()
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, Adam; threads={ARGS.threads} (BLAS and torch)")
    print(f"first loss: tt {first[0]:.6f}  torch {first[1]:.6f}")
    for i in range(1, ARGS.warmup):
        tt_step(i)
        torch_step(i)

    if ARGS.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(ARGS.steps * 4):
            tt_step(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return

    def timed(step, clock) -> float:
        start = clock()
        for i in range(ARGS.steps):
            step(i)
        return (clock() - start) / ARGS.steps * 1e3

    # wall time, and process CPU time (less disturbed when other jobs share the cores)
    for name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
        tt_ms, torch_ms = [], []
        for _ in range(ARGS.rounds):
            tt_ms.append(timed(tt_step, clock))
            torch_ms.append(timed(torch_step, clock))
        ours, theirs = statistics.median(tt_ms), statistics.median(torch_ms)
        ratios = sorted(a / b for a, b in zip(tt_ms, torch_ms))  # paired: each round ran tt then torch
        print(f"[{name:4}] tt {ours:7.3f} ms/step, torch {theirs:7.3f} ms/step (medians of {ARGS.rounds} rounds "
              f"x {ARGS.steps} steps); ratio tt/torch = {statistics.median(ratios):.2f}x median of per-round "
              f"ratios (quartiles {ratios[len(ratios) // 4]:.2f}..{ratios[3 * len(ratios) // 4]:.2f})")
    print("target: ratio <= 1.2x")


if __name__ == "__main__":
    sys.exit(main())

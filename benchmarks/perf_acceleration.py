"""Inference-time optimisations of tt-perf, one at a time, each with its speed-up and an output
check, on milestone 03's MNIST MLP and milestone 04's CIFAR-10 CNN (random weights, BatchNorm
statistics set to non-trivial values), plus the same forward passes in PyTorch for scale.

Optimisations (``tt_perf.experiments.acceleration_suite``): Conv+BatchNorm folding, fused
Linear+activation, contiguous input vs a strided view, float32 vs float64, 2 BLAS threads vs 1
(threadpoolctl). Times are medians of ``--repeats`` alternating rounds, in CPU time (steadier on
a shared machine) except the thread comparison (wall time); the torch comparison is wall time.

    python benchmarks/perf_acceleration.py [--threads 1] [--batch 64] [--repeats 30] [--json out.json]
"""

from __future__ import annotations

import _harness as bench


def parse():
    parser = bench.parser(__doc__, threads_help="BLAS and torch threads (except the thread test)")
    parser.add_argument("--batch", type=int, default=64, help="samples per forward pass")
    parser.add_argument("--repeats", type=int, default=30, help="timed forward passes per variant")
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args()


ARGS = parse()

import json
from functools import partial

import numpy as np
import tt_core
import tt_data
from rich.console import Console
from rich.table import Table
from tt_milestones.history.m04_cnn import cifar_net
from tt_perf.accelerate import blas_threads
from tt_perf.experiments import acceleration_suite
from tt_perf.timing import measure


def mnist_mlp(nn):
    """Milestone 03's MLP, from ``torch.nn`` or its TinyTorch namesakes (:func:`_harness.tt_nn`)."""
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def models(rng):
    tt_core.manual_seed(0)
    mlp = mnist_mlp(bench.tt_nn()).eval()
    cnn = cifar_net(bench.tt_nn()).eval()
    for module in cnn.modules():
        if isinstance(module, tt_data.BatchNorm2d):
            n = module.num_features
            module.running_mean.data = rng.normal(0, 0.5, n).astype(np.float32)
            module.running_var.data = rng.uniform(0.5, 2.0, n).astype(np.float32)
            module.weight.data = rng.uniform(0.5, 1.5, n).astype(np.float32)
    return mlp, cnn


def torch_ratios(mlp, cnn, mlp_batch, cnn_batch) -> dict:
    """tt forward time / torch forward time for the same networks and weights."""
    torch = bench.use_threads(ARGS.threads, blas=False)  # the BLAS threads are set by blas_threads()
    if torch is None:
        return {}
    t_mlp = bench.copy_weights(mlp, mnist_mlp(torch.nn).eval())
    t_cnn = bench.copy_weights(cnn, cifar_net(torch.nn).eval())
    out = {}
    with torch.no_grad():
        for name, ours, theirs, batch in (("MLP", mlp, t_mlp, mlp_batch), ("CNN", cnn, t_cnn, cnn_batch)):
            tb = torch.from_numpy(batch)
            diff = float(np.abs(theirs(tb).numpy() - ours(tt_core.Tensor(batch)).data).max())
            tt_ms = measure(partial(ours, tt_core.Tensor(batch)), repeats=ARGS.repeats).median_ms
            torch_ms = measure(partial(theirs, tb), repeats=ARGS.repeats).median_ms
            out[name] = {"tt_ms": tt_ms, "torch_ms": torch_ms, "tt_over_torch": tt_ms / torch_ms, "max_abs_diff": diff}
    return out


def main() -> None:
    console = Console()
    rng = np.random.default_rng(0)
    mlp, cnn = models(rng)
    mlp_batch = rng.random((ARGS.batch, 784), dtype=np.float32)
    cnn_batch = rng.standard_normal((ARGS.batch, 3, 32, 32)).astype(np.float32)
    previous = tt_core.set_grad_enabled(False)
    with blas_threads(ARGS.threads):
        results = acceleration_suite(mlp, mlp_batch, cnn, cnn_batch, repeats=ARGS.repeats)
        versus_torch = torch_ratios(mlp, cnn, mlp_batch, cnn_batch)
    tt_core.set_grad_enabled(previous)
    table = Table(title=f"tt-perf acceleration, batch {ARGS.batch}, {ARGS.threads} thread(s) unless stated")
    for column in ("optimisation", "before ms", "after ms", "speed-up", "max |diff|", "ok"):
        table.add_column(column, justify="left" if column == "optimisation" else "right")
    for r in results:
        table.add_row(r["name"], f"{r['baseline_ms']:.3f}", f"{r['optimized_ms']:.3f}", f"{r['speedup']:.2f}x",
                      f"{r['max_abs_diff']:.1e}", "yes" if r["equal"] else "NO")
    console.print(table)
    for name, r in versus_torch.items():
        console.print(f"{name} forward: tt {r['tt_ms']:.3f} ms, torch {r['torch_ms']:.3f} ms, "
                      f"tt/torch = {r['tt_over_torch']:.2f} (max |diff| {r['max_abs_diff']:.1e})")
    total = sum(r["tt_ms"] for r in versus_torch.values()) / sum(r["torch_ms"] for r in versus_torch.values())
    console.print(f"ratio tt/torch = {total:.2f}x  (the forward passes above together)")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"batch": ARGS.batch, "threads": ARGS.threads, "results": results, "vs_torch": versus_torch},
                      f, indent=2)


if __name__ == "__main__":
    main()

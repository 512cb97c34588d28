"""What the benchmark scripts share: thread set-up, training steps, interleaved timing rounds,
the result lines, and copying TinyTorch weights into the same network written in torch.

A script imports it as ``import _harness as bench`` (Python puts the script's directory on
``sys.path``) and follows the same order::

    ARGS = parser.parse_args()
    bench.use_threads(ARGS.threads)  # before NumPy and torch load their BLAS
    import numpy as np  # noqa: E402  (and the rest)

This module imports only the standard library at load time (NumPy, torch and TinyTorch inside
the functions that need them), so importing it does not start a BLAS too early.

Timing: the contenders run in alternating rounds (tt, torch, tt, torch, ...) so that a burst
of load from other processes hits all of them alike; each round times ``steps`` consecutive
calls and records ms per call. With more than one thread, each round starts
:data:`SETTLE_SECONDS` after the previous one, once the other library's idle threads have
stopped spinning. Reported are the median per contender and the per-round ratios (each round
ran tt right before torch, so their ratio is paired). Single measurements that are
not compared round by round use :func:`tt_perf.timing.measure` instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BLAS_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


# -- command line and threads ------------------------------------------------------------------


def parser(doc: str, *, threads_help: str = "BLAS and torch threads (same both sides)") -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``, with ``--threads`` (default 1)."""
    result = argparse.ArgumentParser(description=doc.splitlines()[0])
    result.add_argument("--threads", type=int, default=1, help=threads_help)
    return result


def add_round_options(parser: argparse.ArgumentParser, *, steps: int, rounds: int, warmup: int,
                      steps_help: str = "training steps per timed round") -> None:
    """``--steps``, ``--rounds``, ``--warmup`` and ``--profile`` for :func:`interleaved` and :func:`profile`."""
    parser.add_argument("--steps", type=int, default=steps, help=steps_help)
    parser.add_argument("--rounds", type=int, default=rounds, help="timed rounds per library (median reported)")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
    parser.add_argument("--profile", action="store_true", help="cProfile the tt steps instead of comparing")


SETTLE_SECONDS = 0.3
"""With more than one thread, each contender's round starts this long after the previous
round ended: an idle BLAS or OpenMP thread keeps its core busy for a while after its last
task (OpenBLAS spins about 0.1 s by default), and would otherwise slow the next contender."""

_threads = 1


def use_threads(threads: int, *, blas: bool = True):
    """Run with ``threads`` threads: BLAS (NumPy's and torch's) and torch's intra-op pool.

    ``blas=True`` sets the BLAS environment variables, which only take effect before NumPy or
    torch is first imported: call this right after parsing the arguments. With ``blas=False``
    the BLAS is left alone (for scripts that change its thread count at run time with
    threadpoolctl, which cannot go above the size the pool was created with).

    Returns the torch module, or None when torch is not installed.
    """
    global _threads
    _threads = threads
    if blas:
        for var in BLAS_ENV_VARS:
            os.environ[var] = str(threads)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def threads_and_kernels() -> str:
    """The thread count and the BLAS kernels NumPy runs, for a result's header:
    ``threads=1 (BLAS and torch); NumPy BLAS: openblas 0.3.31.188.0 SkylakeX`` (from threadpoolctl).
    A set ``OPENBLAS_CORETYPE`` is named too: then it, not the CPU, chose OpenBLAS's kernels
    (AVX2 ``Haswell`` ones run float32 products about half as fast as AVX-512 ``SkylakeX`` ones
    on a CPU that has both)."""
    line = f"threads={_threads} (BLAS and torch); NumPy BLAS: "
    try:
        import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then finds)
        from threadpoolctl import threadpool_info
    except ImportError:
        return line + "unknown (threadpoolctl is not installed)"
    found = [f"{info['internal_api']} {info['version']} {info.get('architecture') or ''}".strip()
             for info in threadpool_info() if info["user_api"] == "blas"]
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return line + (", ".join(found) or "unknown") + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")


# -- models and steps ----------------------------------------------------------------------------


def tt_nn():
    """TinyTorch's layers under ``torch.nn``'s names, for builders written as ``build(nn)``."""
    from types import SimpleNamespace

    import tt_core
    import tt_data

    return SimpleNamespace(
        Sequential=tt_core.Sequential, Linear=tt_core.Linear, ReLU=tt_core.ReLU, Dropout=tt_core.Dropout,
        Conv2d=tt_data.Conv2d, MaxPool2d=tt_data.MaxPool2d, BatchNorm2d=tt_data.BatchNorm2d, Flatten=tt_data.Flatten,
    )


def copy_weights(model, net):
    """Load the TinyTorch ``model``'s weights (and buffers) into the torch module ``net``; returns ``net``.

    Both must use the same names (``state_dict`` keys). The arrays are copied, so the two train
    independently. Only torch's ``num_batches_tracked`` counters may be missing on the tt side.
    """
    import numpy as np
    import torch

    state = {name: torch.from_numpy(np.array(value)) for name, value in model.state_dict().items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise KeyError(f"tt and torch models differ: missing in tt {missing}, only in tt {unexpected}")
    return net


def train_batch(model, loss_fn, x, y, optimizer=None):
    """One training step on ``(x, y)``, the same code for tt and torch: forward, loss, backward, update.

    Without an optimizer the gradients are only computed (``model.zero_grad()`` first).
    Returns the loss tensor.
    """
    if optimizer is None:
        model.zero_grad()
    loss = loss_fn(model(x), y)
    if optimizer is not None:
        optimizer.zero_grad()
    loss.backward()
    if optimizer is not None:
        optimizer.step()
    return loss


def training_step(model, loss_fn, batches: list, optimizer=None) -> Callable[[int], object]:
    """``step(i)``: :func:`train_batch` on ``batches[i % len(batches)]``; returns the loss."""
    def step(i: int = 0):
        x, y = batches[i % len(batches)]
        return train_batch(model, loss_fn, x, y, optimizer)

    return step


# -- timing --------------------------------------------------------------------------------------


def warm_up(steps: list[Callable[[int], object]], count: int, start: int = 0) -> None:
    """Call each step function ``count`` times (in turns), with step numbers from ``start``."""
    for i in range(start, start + count):
        for step in steps:
            step(i)


def profile(step: Callable[[int], object], calls: int, lines: int = 25) -> None:
    """Run ``step(0)``, ``step(1)``, ... under cProfile and print the ``lines`` costliest functions."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(calls):
        step(i)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


@dataclass
class Rounds:
    """Per-round ms per call of each contender (same order as given), and each one's last result."""

    rounds: int
    steps: int
    clock: str
    ms: dict[str, list[float]] = field(default_factory=dict)
    last: dict[str, object] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.ms[name])

    def ratios(self, ours: str = "tt", theirs: str = "torch") -> list[float]:
        """Sorted per-round ratios ``ours / theirs`` (paired: both ran in the same round)."""
        return sorted(a / b for a, b in zip(self.ms[ours], self.ms[theirs]))


def interleaved(contenders: dict[str, Callable[[int], object]], *, rounds: int, steps: int = 1,
                clock: str = "wall") -> Rounds:
    """Time the contenders in alternating rounds; each round calls each one ``steps`` times.

    ``contenders`` maps a name to a function called with the step number in the round
    (``0 .. steps - 1``, e.g. to pick a batch). ``clock`` is ``"wall"`` (elapsed time) or
    ``"cpu"`` (this process's CPU time: less disturbed when other jobs share the cores, but the
    sum over threads when several run). Warm up first (:func:`warm_up`).
    """
    now = CLOCKS[clock]
    result = Rounds(rounds, steps, clock, {name: [] for name in contenders})
    for _ in range(rounds):
        for name, fn in contenders.items():
            if _threads > 1:
                time.sleep(SETTLE_SECONDS)
            start = now()
            for i in range(steps):
                result.last[name] = fn(i)
            result.ms[name].append((now() - start) / steps * 1e3)
    return result


def print_comparison(result: Rounds, *, unit: str = "step", digits: int = 2, target: float = 1.0) -> None:
    """The three result lines: tt and torch median ms per ``unit``, and their ratio."""
    ours, theirs, ratios = result.median("tt"), result.median("torch"), result.ratios()
    print(f"tt    {ours:8.{digits}f} ms/{unit} (median of {result.rounds} rounds x {result.steps} steps)")
    print(f"torch {theirs:8.{digits}f} ms/{unit}")
    print(f"ratio tt/torch = {ours / theirs:.2f}x  (per-round ratios {ratios[0]:.2f}..{ratios[-1]:.2f}; "
          f"target <= {target}x)")

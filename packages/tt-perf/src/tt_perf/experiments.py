"""The measurements behind milestone 06 and the benchmark scripts, as reusable functions.

Each returns plain dicts (JSON-ready) and never decides whether a target was reached: the
milestone does that. Acceleration timings are medians over repeats; the KV-cache and batching
figures are ratios of the best CPU times of runs that take turns in the same process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import numpy as np
import tt_language
from tt_core import Module, Tensor

from .accelerate import (
    blas_threads,
    compare,
    fold_batchnorms,
    fuse_linear_activations,
    threadpoolctl_available,
    to_dtype,
)
from .kv_cache import CachedDecoder, KVCache, one_at_a_time


ROUND_SECONDS = 0.5
"""Within one round a run is repeated until it has taken this long, so a short run's best time
is the best of several tries, as a long run's is of its rounds."""


def _seconds(runs: dict[str, Callable[[], object]], repeats: int = 1) -> tuple[dict[str, float], dict[str, object]]:
    """The best of the CPU times of each run (and its last result), taking turns: one round
    runs each in turn, a short one several times (:data:`ROUND_SECONDS`), so a slow spell of
    a shared machine hits all of them alike.

    CPU time (``time.process_time``), not wall time: on a machine shared with other busy
    processes a long computation is paused while they run and its wall time grows with the
    load, which would inflate the uncached and batched timings more than the short cached
    steps (see :mod:`tt_perf.timing`). Run BLAS single-threaded so CPU time is compute time.
    """
    best, results = {name: float("inf") for name in runs}, {}
    for _ in range(repeats):
        for name, fn in runs.items():
            spent = 0.0
            while spent < ROUND_SECONDS:
                start = time.process_time()
                results[name] = fn()
                took = time.process_time() - start
                best[name], spent = min(best[name], took), spent + took
    return best, results


# ----------------------------------------------------------------------------------------
# KV cache
# ----------------------------------------------------------------------------------------


def kv_cache_speedups(model: Module, prompt: np.ndarray, lengths=(64, 128, 256, 512), *,
                      generate: Callable | None = None, repeats: int = 1) -> list[dict]:
    """Greedy generation of each length three ways; the tokens must be identical.

    ``uncached``: ``generate(model, prompt, n, temperature=0)`` (``tt_language.generate`` by
    default), the whole context through
    the model at every step; ``cached``: the same call with a :class:`KVCache`, the model's
    own cached path (memoization alone); ``fused``: :class:`CachedDecoder`, the same cache
    with the inference-only rewrites (layer norms folded, no Tensors). Speed-ups are over
    ``uncached``.
    """
    generate = generate or tt_language.generate
    decoder = CachedDecoder(model)
    rows = []
    for n in lengths:
        runs = {"uncached": partial(generate, model, prompt, n, temperature=0),
                "cached": lambda n=n: generate(model, prompt, n, temperature=0, cache=KVCache(len(prompt) + n)),
                "fused": partial(decoder.generate, prompt, n)}
        seconds, tokens = _seconds(runs, repeats)
        rows.append({"tokens": n, **{f"{name}_s": seconds[name] for name in runs},
                     "speedup": seconds["uncached"] / seconds["cached"],
                     "fused_speedup": seconds["uncached"] / seconds["fused"],
                     "identical": bool(np.array_equal(tokens["cached"], tokens["uncached"])
                                       and np.array_equal(tokens["fused"], tokens["uncached"])),
                     "cached_ms_per_token": 1e3 * seconds["cached"] / n,
                     "fused_ms_per_token": 1e3 * seconds["fused"] / n})
    return rows


def batched_throughput(model: Module, prompts: list[np.ndarray], new_tokens: int, *, repeats: int = 1,
                       generate: Callable | None = None, uncached_prompts: int | None = None) -> dict:
    """Tokens per second for ``prompts`` (of different lengths) three ways: all at once with the
    KV cache (left-padded, masked; :class:`CachedDecoder`), one at a time with the cache, and
    one at a time without it (``generate``, by default ``tt_language.generate``, recomputing
    the context). The outputs must be
    identical.

    ``throughput_ratio`` is batching alone (both cached); ``combined_ratio`` is cache and
    batching together against uncached one-at-a-time generation, whose tokens/s is measured
    on the first ``uncached_prompts`` prompts (all by default: it is the slowest run).
    """
    generate = generate or tt_language.generate
    decoder = CachedDecoder(model)
    slow = prompts[:uncached_prompts]
    seconds, outputs = _seconds({"batched": lambda: decoder.generate(prompts, new_tokens),
                                 "single": lambda: one_at_a_time(decoder, prompts, new_tokens),
                                 "uncached": lambda: [generate(model, p, new_tokens, temperature=0) for p in slow]},
                                repeats)
    batched_s, single_s = seconds["batched"], seconds["single"]
    tokens = len(prompts) * new_tokens
    uncached_per_s = len(slow) * new_tokens / seconds["uncached"]
    return {
        "prompts": len(prompts), "prompt_lengths": [len(p) for p in prompts], "new_tokens": new_tokens,
        "batched_s": batched_s, "one_at_a_time_s": single_s, "uncached_s": seconds["uncached"],
        "uncached_prompts": len(slow),
        "batched_tokens_per_s": tokens / batched_s, "one_at_a_time_tokens_per_s": tokens / single_s,
        "uncached_tokens_per_s": uncached_per_s,
        "throughput_ratio": single_s / batched_s,
        "combined_ratio": tokens / batched_s / uncached_per_s,
        "identical": all(np.array_equal(a, b) for a, b in zip(outputs["batched"], outputs["single"]))
        and all(np.array_equal(a, b) for a, b in zip(outputs["uncached"], outputs["single"])),
    }


# ----------------------------------------------------------------------------------------
# Acceleration, one optimisation at a time
# ----------------------------------------------------------------------------------------


def _forward(model: Module, x: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: model(Tensor(x)).data


def acceleration_suite(mlp: Module, mlp_batch: np.ndarray, cnn: Module | None = None,
                       cnn_batch: np.ndarray | None = None, *, repeats: int = 20) -> list[dict]:
    """Each optimisation against its baseline, with the largest output difference.

    CPU-time medians of alternating rounds (see :func:`tt_perf.accelerate.compare`); the
    thread comparison uses wall time.

    - Conv+BatchNorm folding (CNN), fused Linear+activation (MLP),
    - contiguous input vs a strided view of the same numbers (MLP),
    - float32 vs float64 (MLP and CNN),
    - 2 BLAS threads vs 1 (MLP and CNN), when threadpoolctl is installed.
    """
    mlp.eval()
    results = []
    if cnn is not None:
        cnn.eval()
        results.append(compare("Conv+BatchNorm folding (CNN)", _forward(cnn, cnn_batch),
                               _forward(fold_batchnorms(cnn), cnn_batch), tolerance=1e-3, repeats=repeats,
                               key="bn_folding_cnn"))
    results.append(compare("fused Linear+activation (MLP)", _forward(mlp, mlp_batch),
                           _forward(fuse_linear_activations(mlp), mlp_batch), tolerance=1e-4, repeats=repeats,
                           key="fused_linear_mlp"))
    wide = np.zeros((mlp_batch.shape[0], 2 * mlp_batch.shape[1]), dtype=np.float32)
    wide[:, ::2] = mlp_batch
    strided = wide[:, ::2]  # the same numbers, every other float in memory
    results.append(compare("contiguous input vs strided view (MLP)", _forward(mlp, strided),
                           _forward(mlp, np.ascontiguousarray(strided)), tolerance=1e-5, repeats=repeats,
                           note="baseline: input a strided view; optimised: the same input made C-contiguous",
                           key="contiguous_input_mlp"))
    models = [("MLP", mlp, mlp_batch)] + ([("CNN", cnn, cnn_batch)] if cnn is not None else [])
    for name, model, batch in models:
        wide_model = to_dtype(model, np.float64)
        results.append(compare(f"float32 vs float64 ({name})", _forward(wide_model, batch.astype(np.float64)),
                               _forward(model, batch), tolerance=1e-3, repeats=repeats,
                               note="baseline: float64 weights and input; optimised: float32",
                               key=f"float32_{name.lower()}"))
    if threadpoolctl_available():
        for name, model, batch in models:
            def with_threads(count, model=model, batch=batch):
                def run():
                    with blas_threads(count):
                        return model(Tensor(batch)).data
                return run

            results.append(compare(f"2 BLAS threads vs 1 ({name})", with_threads(1), with_threads(2),
                                   tolerance=1e-4, repeats=repeats,
                                   note="baseline: 1 thread; optimised: 2 threads (wall time; the machine is shared)",
                                   key=f"threads_{name.lower()}", clock="wall"))
    return [r.to_dict() for r in results]

"""tt-perf's plugin: registers its components.

Milestone 06 reaches every piece of tt-perf it uses through these registrations (kind
``perf`` for the measurements and transformations of Act V, ``function`` for the BLAS
thread controls), so a learner's own provider of any of them is the one that runs.
"""

from tt_core import hookimpl

from . import accelerate, coding, compress, experiments, kv_cache, olympics, profiler, pruning, quantize
from .distill import distill

PERF = {
    "profile": profiler.profile,
    "quantize_int8": quantize.quantize_int8,
    "prune": pruning.prune,
    "kv_generate": kv_cache.kv_generate,
    "KVCache": kv_cache.KVCache,
    "olympics": olympics.run_olympics,
    "Submission": olympics.Submission,
    "Arena": olympics.Arena,
    "compress_classifier": compress.compress_classifier,
    "classifier_accuracy": compress.accuracy,
    "save_coded": coding.save_coded,
    "distill": distill,
    "kv_cache_speedups": experiments.kv_cache_speedups,
    "batched_throughput": experiments.batched_throughput,
    "acceleration_suite": experiments.acceleration_suite,
}
"""Every ``perf`` component, by name."""

FUNCTIONS = {
    "blas_threads": accelerate.blas_threads,
    "threadpoolctl_available": accelerate.threadpoolctl_available,
}
"""tt-perf's ``function`` components, by name."""


@hookimpl
def tt_register_components(registry):
    for name, obj in PERF.items():
        registry.register("perf", name, obj)
    for name, obj in FUNCTIONS.items():
        registry.register("function", name, obj)
    registry.register("layer", "QuantizedLinear", quantize.QuantizedLinear)
    registry.register("layer", "QuantizedConv2d", quantize.QuantizedConv2d)
    _register_checkers(registry)


def _register_checkers(registry):
    """The checker of the perf kind and the examples of the quantized layers (see :mod:`tt_perf.grading`)."""
    from . import grading

    grading.register(registry)

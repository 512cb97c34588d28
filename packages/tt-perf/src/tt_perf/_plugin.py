"""tt-perf's plugin: registers its components."""

from tt_core import hookimpl

from . import kv_cache, olympics, profiler, pruning, quantize


@hookimpl
def tt_register_components(registry):
    registry.register("perf", "profile", profiler.profile)
    registry.register("perf", "quantize_int8", quantize.quantize_int8)
    registry.register("perf", "prune", pruning.prune)
    registry.register("perf", "kv_generate", kv_cache.kv_generate)
    registry.register("perf", "olympics", olympics.run_olympics)
    registry.register("layer", "QuantizedLinear", quantize.QuantizedLinear)
    registry.register("layer", "QuantizedConv2d", quantize.QuantizedConv2d)

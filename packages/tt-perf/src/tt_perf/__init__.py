"""TinyTorch Act V: profiling, compression, KV cache, acceleration and the Olympics."""

from .__about__ import __version__
from .accelerate import FusedLinear, Identity, blas_threads, compare, fold_batchnorms, fuse_linear_activations
from .coding import load_coded, save_coded
from .distill import distill, distillation_loss
from .kv_cache import CachedDecoder, KVCache, kv_generate
from .olympics import Arena, Scorecard, Submission, run_olympics
from .profiler import LayerStats, Profile, ProfileError, profile
from .pruning import Pruner, SparsitySchedule, prune, prune_finetune, shrink
from .quantize import CalibrationError, CalibrationWarning, QuantizedConv2d, QuantizedLinear, quantize_int8
from .sharing import kmeans_codebook, share_weights
from .storage import load_compressed, save_compressed, saved_size
from .timing import Timing, TimingError, measure

__all__ = [
    "Arena",
    "CachedDecoder",
    "CalibrationError",
    "CalibrationWarning",
    "FusedLinear",
    "Identity",
    "KVCache",
    "LayerStats",
    "Profile",
    "ProfileError",
    "Pruner",
    "QuantizedConv2d",
    "QuantizedLinear",
    "Scorecard",
    "SparsitySchedule",
    "Submission",
    "Timing",
    "TimingError",
    "__version__",
    "blas_threads",
    "compare",
    "distill",
    "distillation_loss",
    "fold_batchnorms",
    "fuse_linear_activations",
    "kmeans_codebook",
    "kv_generate",
    "load_coded",
    "load_compressed",
    "measure",
    "profile",
    "prune",
    "prune_finetune",
    "quantize_int8",
    "run_olympics",
    "save_coded",
    "save_compressed",
    "saved_size",
    "share_weights",
    "shrink",
]

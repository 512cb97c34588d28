"""tt-core, Act I of TinyTorch: tensors, modules, layers and the plugin machinery."""

from . import functional, memory
from .__about__ import __version__
from .dispatch import GradRule, Op, apply, is_grad_enabled, set_grad_enabled
from .errors import (
    ArgumentError,
    AutogradUnavailableError,
    CheckpointError,
    GradientRuleError,
    ShapeError,
    TinyTorchError,
)
from .layers import GELU, Dropout, Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .module import Module, ModuleList, Parameter, Sequential
from .plugins import get_plugin_system, get_registry, hookimpl, hookspec, reset_plugins
from .rng import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .tensor import (
    Tensor,
    arange,
    concatenate,
    ones,
    ones_like,
    rand,
    randn,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)

memory.apply_default()

__all__ = [
    "ArgumentError", "AutogradUnavailableError", "CheckpointError", "Dropout", "GELU", "GradRule", "GradientRuleError", "Linear",
    "LogSoftmax", "Module", "ModuleList", "Op", "Parameter", "ReLU", "Sequential", "ShapeError", "Sigmoid", "Softmax", "Tanh", "Tensor",
    "TinyTorchError", "__version__", "apply", "arange", "concatenate", "functional", "get_plugin_system",
    "get_registry", "get_rng_state", "hookimpl", "hookspec", "is_grad_enabled", "load", "manual_seed", "memory",
    "ones", "ones_like", "rand", "randn", "reset_plugins", "save", "set_grad_enabled", "set_rng_state",
    "stack", "tensor", "where", "zeros", "zeros_like",
]

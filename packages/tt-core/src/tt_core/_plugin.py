"""tt-core's own plugin: it registers through the same entry point as everyone else."""

from . import grading, layers
from .ops import CORE_OPS
from .plugins import hookimpl

ACTIVATIONS = ("ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax")


@hookimpl
def tt_register_components(registry):
    """tt-core's primitives (kind ``op``), ``Linear``, ``Dropout`` and the activations."""
    for name, op in CORE_OPS.items():
        registry.register("op", name, op)
    registry.register("layer", "Linear", layers.Linear)
    registry.register("layer", "Dropout", layers.Dropout)
    for name in ACTIVATIONS:
        registry.register("activation", name, getattr(layers, name))
    _register_checkers(registry)


def _register_checkers(registry) -> None:
    """The graders of tt-core's kinds (``checker:op``, ``checker:layer``, ``checker:activation``),
    the grader of kind ``function`` (which hands each function to the ``checker:function:<name>``
    its package registers), and the examples they build tt-core's layers and activations from."""
    checkers = {"op": grading.check_op, "function": grading.check_function, "layer": grading.check_module,
                "activation": grading.check_module}
    grading.register_graders(registry, checkers, grading.EXAMPLES)

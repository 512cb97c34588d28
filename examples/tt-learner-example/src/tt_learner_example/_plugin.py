"""The hook TinyTorch calls through this package's ``tinytorch`` entry point.

It registers each component under the kind and name of the built-in one it stands in for, so
``TT_PROVIDERS=tt-learner-example`` or ``tt-milestones run ID --use tt-learner-example`` makes
the milestones use it, and ``tt-milestones check tt-learner-example`` grades it against the
built-in one.
"""

from tt_core import GradRule, hookimpl

from . import grad_rules
from .layers import Linear, ReLU, Sigmoid
from .losses import BCEWithLogitsLoss
from .optim import SGD


@hookimpl
def tt_register_components(registry):
    """Register Linear, ReLU, Sigmoid, the relu/sigmoid/matmul gradient rules,
    BCEWithLogitsLoss and SGD."""
    registry.register("layer", "Linear", Linear)
    registry.register("activation", "ReLU", ReLU)
    registry.register("activation", "Sigmoid", Sigmoid)
    # rules for tt-core's kernels: they read only the standard context (ctx.inputs, ctx.out,
    # ctx.needs), nothing a kernel saves, so they pair with tt-core's kernels
    registry.register("grad_rule", "relu", GradRule(grad_rules.relu_grad))
    registry.register("grad_rule", "sigmoid", GradRule(grad_rules.sigmoid_grad))
    registry.register("grad_rule", "matmul", GradRule(grad_rules.matmul_grad))
    registry.register("loss", "BCEWithLogitsLoss", BCEWithLogitsLoss)
    registry.register("optimizer", "SGD", SGD)

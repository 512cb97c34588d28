"""tt-learn's plugin: the autograd engine, a gradient rule per tt-core primitive, losses,
optimizers, schedulers and metrics. (Shared file: edit with small, targeted changes.)"""

from tt_core import hookimpl

from . import autograd, grad_rules
from .gradcheck import gradcheck


@hookimpl
def tt_register_components(registry):
    registry.register("autograd", "engine", autograd.engine)
    for name, rule in grad_rules.GRAD_RULES.items():
        registry.register("grad_rule", name, rule)
    registry.register("function", "gradcheck", gradcheck)
    registry.register("function", "no_grad", autograd.no_grad)

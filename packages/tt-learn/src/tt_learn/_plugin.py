"""tt-learn's plugin: the autograd engine, a gradient rule per tt-core primitive, losses,
optimizers, schedulers and metrics, and the tools that look inside a graph (``draw_graph``,
``detect_anomaly``)."""

from tt_core import hookimpl
from tt_core.grading import register_graders

from . import autograd, grad_rules, grading, grading_autograd, grading_training
from .anomaly import detect_anomaly
from .clip import clip_grad_norm_, clip_grad_value_
from .gradcheck import gradcheck
from .graph import draw_graph
from .losses import LOSSES
from .metrics import accuracy, confusion_matrix
from .optim import OPTIMIZERS
from .schedulers import SCHEDULERS
from .train import TimeBudget, Trainer, WeightAverage, batches
from .watch import GradientWatch


@hookimpl
def tt_register_components(registry):
    registry.register("autograd", "engine", autograd.engine)
    for name, rule in grad_rules.GRAD_RULES.items():
        registry.register("grad_rule", name, rule)
    registry.register("function", "gradcheck", gradcheck)
    registry.register("function", "no_grad", autograd.no_grad)
    registry.register("function", "draw_graph", draw_graph)
    registry.register("function", "detect_anomaly", detect_anomaly)
    for kind, table in (("loss", LOSSES), ("optimizer", OPTIMIZERS), ("scheduler", SCHEDULERS)):
        for name, cls in table.items():
            registry.register(kind, name, cls)
    registry.register("function", "clip_grad_norm_", clip_grad_norm_)
    registry.register("function", "clip_grad_value_", clip_grad_value_)
    registry.register("function", "batches", batches)
    registry.register("function", "GradientWatch", GradientWatch)
    registry.register("function", "TimeBudget", TimeBudget)
    registry.register("function", "WeightAverage", WeightAverage)
    registry.register("trainer", "Trainer", Trainer)
    registry.register("metric", "accuracy", accuracy)
    registry.register("metric", "confusion_matrix", confusion_matrix)
    _register_checkers(registry)


def _register_checkers(registry) -> None:
    """The graders of tt-learn's kinds (``checker:grad_rule``, ``loss``, ``optimizer``,
    ``scheduler``, ``autograd``, ``metric``, ``trainer``), the checks of its functions
    (``checker:function:<name>``, which tt-core's ``function`` checker hands each function
    to), and the examples they build tt-learn's losses and schedulers from."""
    checkers = {"grad_rule": grading.check_grad_rule, "loss": grading.check_loss,
                "optimizer": grading.check_optimizer, "scheduler": grading.check_scheduler,
                "autograd": grading_autograd.check_autograd, "metric": grading_training.check_metric,
                "trainer": grading_training.check_trainer}
    register_graders(registry, checkers, grading.EXAMPLES, FUNCTION_CHECKS)


FUNCTION_CHECKS = {
    "no_grad": grading_autograd.check_no_grad,
    "gradcheck": grading_autograd.check_gradcheck,
    "detect_anomaly": grading_autograd.check_detect_anomaly,
    "draw_graph": grading_autograd.check_draw_graph,
    "clip_grad_norm_": grading_training.check_clip_grad_norm,
    "clip_grad_value_": grading_training.check_clip_grad_value,
    "batches": grading_training.check_batches,
    "GradientWatch": grading_training.check_gradient_watch,
    "TimeBudget": grading_training.check_time_budget,
    "WeightAverage": grading_training.check_weight_average,
}
"""The check of each of tt-learn's functions, by the function's name."""

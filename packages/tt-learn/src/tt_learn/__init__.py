"""tt-learn, Act II of TinyTorch: autograd, losses, optimizers, schedulers and training, and
the tools that show what autograd did (``draw_graph``, ``detect_anomaly``)."""

from .__about__ import __version__
from .anomaly import AnomalyError, detect_anomaly
from .autograd import GraphFreedError, backward, enable_grad, no_grad, set_grad_enabled
from .clip import clip_grad_norm_, clip_grad_value_
from .grad_rules import unbroadcast
from .gradcheck import GradcheckError, gradcheck
from .graph import DrawGraphError, Graph, GraphNode, draw_graph, record_graph
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss, TargetError
from .metrics import accuracy, confusion_matrix
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop
from .schedulers import CosineAnnealingLR, LinearWarmup, LRScheduler, OneCycleLR, StepLR
from .train import TimeBudget, Trainer, WeightAverage, batches
from .watch import GradientWatch

__all__ = [
    "__version__",
    "GradcheckError", "GraphFreedError", "backward", "enable_grad", "gradcheck", "no_grad", "set_grad_enabled",
    "unbroadcast",
    "AnomalyError", "DrawGraphError", "Graph", "GraphNode", "detect_anomaly", "draw_graph", "record_graph",
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "NLLLoss", "TargetError",
    "Adam", "AdamW", "Optimizer", "RMSprop", "SGD",
    "CosineAnnealingLR", "LRScheduler", "LinearWarmup", "OneCycleLR", "StepLR",
    "GradientWatch", "TimeBudget", "Trainer", "WeightAverage", "accuracy", "batches", "clip_grad_norm_", "clip_grad_value_", "confusion_matrix",
]

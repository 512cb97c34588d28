"""tt-learn, Act II of TinyTorch: autograd, losses, optimizers, schedulers and training.
(Shared file: edit with small, targeted changes.)"""

from .__about__ import __version__
from .autograd import GraphFreedError, backward, enable_grad, no_grad, set_grad_enabled
from .grad_rules import unbroadcast
from .gradcheck import GradcheckError, gradcheck

__all__ = [
    "__version__",
    "GradcheckError", "GraphFreedError", "backward", "enable_grad", "gradcheck", "no_grad", "set_grad_enabled",
    "unbroadcast",
]

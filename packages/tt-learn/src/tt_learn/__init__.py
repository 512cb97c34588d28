"""tt-learn, Act II of TinyTorch: autograd, losses, optimizers, schedulers and training.
(Shared file: edit with small, targeted changes.)"""

from .__about__ import __version__

__all__ = ["__version__"]

"""A learner's own components for Acts I and II of TinyTorch.

``Linear``, ``ReLU`` and ``Sigmoid`` (Act I), the gradient rules of tt-core's ``relu``,
``sigmoid`` and ``matmul`` kernels, ``BCEWithLogitsLoss`` and ``SGD`` (Act II), each written
against the contract of the built-in component of the same kind and name. Installed, the
package is a TinyTorch plugin: ``tt-milestones check tt-learner-example`` grades it, and
``tt-milestones run 02 --use tt-learner-example`` trains milestone 02 with it.
"""

from .__about__ import __version__
from .grad_rules import matmul_grad, relu_grad, sigmoid_grad
from .layers import Linear, ReLU, Sigmoid
from .losses import BCEWithLogitsLoss, binary_cross_entropy_with_logits
from .optim import SGD

__all__ = [
    "SGD", "BCEWithLogitsLoss", "Linear", "ReLU", "Sigmoid", "__version__", "binary_cross_entropy_with_logits",
    "matmul_grad", "relu_grad", "sigmoid_grad",
]

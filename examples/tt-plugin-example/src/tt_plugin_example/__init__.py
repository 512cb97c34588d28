"""An example third-party TinyTorch plugin: a ``Swish`` layer and milestone ``x1``."""

from .__about__ import __version__
from .layers import Swish

__all__ = ["Swish", "__version__"]

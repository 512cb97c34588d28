"""TinyTorch Act V: profiling, compression, KV cache, acceleration and the Olympics
(Shared file: edit with small, targeted changes.)"""

from .__about__ import __version__

__all__ = ["__version__"]

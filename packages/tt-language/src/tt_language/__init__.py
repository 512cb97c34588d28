"""TinyTorch Act IV: tokenizers, embeddings, attention, transformers and a GPT
(Shared file: edit with small, targeted changes.)"""

from .__about__ import __version__

__all__ = ["__version__"]

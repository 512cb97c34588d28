"""TinyTorch Act IV: tokenizers, embeddings, attention, transformers and a GPT."""

from . import functional
from .__about__ import __version__
from .generation import generate, sample_next
from .layers import MLP, Embedding, LayerNorm, MultiHeadAttention, PositionalEncoding, TransformerBlock
from .model import GPT
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer

__all__ = [
    "GPT",
    "MLP",
    "BPETokenizer",
    "CharTokenizer",
    "Embedding",
    "LayerNorm",
    "MultiHeadAttention",
    "PositionalEncoding",
    "Tokenizer",
    "TransformerBlock",
    "__version__",
    "functional",
    "generate",
    "sample_next",
]

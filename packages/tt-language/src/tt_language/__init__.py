"""TinyTorch Act IV: tokenizers, embeddings, attention, transformers and a GPT."""

from . import cache, functional
from .__about__ import __version__
from .generation import SamplingError, generate, sample_next
from .layers import MLP, Embedding, LayerNorm, MultiHeadAttention, PositionalEncoding, TransformerBlock
from .model import GPT
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, TokenizerError

__all__ = [
    "GPT",
    "MLP",
    "BPETokenizer",
    "CharTokenizer",
    "Embedding",
    "LayerNorm",
    "MultiHeadAttention",
    "PositionalEncoding",
    "SamplingError",
    "Tokenizer",
    "TokenizerError",
    "TransformerBlock",
    "__version__",
    "cache",
    "functional",
    "generate",
    "sample_next",
]

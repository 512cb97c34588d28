"""tt-language's plugin: registers its components, and the checkers and examples that grade them."""

from tt_core import hookimpl

from . import corpora, layers, ops
from .generation import generate
from .model import GPT
from .tokenizers import BPETokenizer, CharTokenizer


@hookimpl
def tt_register_components(registry):
    for name, op in ops.OPS.items():
        registry.register("op", name, op)
    registry.register("tokenizer", "char", CharTokenizer)
    registry.register("tokenizer", "bpe", BPETokenizer)
    for name in ("Embedding", "PositionalEncoding", "LayerNorm", "MultiHeadAttention", "TransformerBlock"):
        registry.register("layer", name, getattr(layers, name))
    registry.register("model", "GPT", GPT)
    registry.register("function", "generate", generate)
    registry.register("function", "random_windows", corpora.random_windows)
    registry.register("dataset", "tinytalks", corpora.tinytalks)
    registry.register("dataset", "tinyshakespeare", corpora.tinyshakespeare)
    _register_checkers(registry)


def _register_checkers(registry):
    """The checkers of the tokenizer and model kinds, and the examples that build and feed
    tt-language's layers and GPT (see :mod:`tt_language.grading`)."""
    from . import grading

    grading.register(registry)

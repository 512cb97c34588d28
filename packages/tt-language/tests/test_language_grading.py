"""tt-language's checkers: the built-in tokenizers, layers and GPT pass under several seeds;
wrong ones fail, each with the diagnosis that names what is wrong. Registries are built by
hand (the layer checker and the autograd engine come from the loaded tt-core and tt-learn)."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core
from tt_core.grading import FAILED, NO_REFERENCE, PASSED, SKIPPED, grade
from tt_core.plugins import ComponentRegistry
from tt_language import grading
from tt_language.layers import PositionalEncoding
from tt_language.model import GPT
from tt_language.tokenizers import BPETokenizer, CharTokenizer

SEEDS = (0, 1, 2)
MINE = "my-language"


def grade_mine(kind: str, name: str, yours, reference, seed: int = 0):
    """Grade ``yours`` (from my-language) against ``reference`` (from tt-language), with
    tt-language's checkers and examples and the installed autograd engine."""
    registry = ComponentRegistry()
    builtin = registry.registrar("tt-language")
    grading.register(builtin)
    builtin.register("autograd", "engine", tt_core.get_registry().get("autograd", "engine"))
    if reference is not None:
        builtin.register(kind, name, reference)
    builtin.commit()
    learner = registry.registrar(MINE)
    learner.register(kind, name, yours)
    learner.commit()
    component = next(c for c in registry.providers(kind, name) if c.dist == MINE)
    return grade(component, registry, seed)


def failures(result) -> dict[str, str]:
    return {case.name: case.detail for case in result.cases if case.status == FAILED}


def assert_passes(result) -> None:
    assert result.status == PASSED, failures(result)
    assert result.cases and all(case.status in (PASSED, SKIPPED) for case in result.cases)


def assert_fails(result, case_starts: str, diagnosis: str) -> None:
    """The grade failed, and a case whose name starts with ``case_starts`` failed with ``diagnosis``."""
    failed = failures(result)
    assert result.status == FAILED and failed, result.cases
    matching = {name: detail for name, detail in failed.items() if name.startswith(case_starts)}
    assert matching, f"no failed case starts with {case_starts!r}: {failed}"
    assert any(diagnosis in detail for detail in matching.values()), matching


# -- tokenizer ---------------------------------------------------------------------------------

TOKENIZERS = {"char": CharTokenizer, "bpe": BPETokenizer}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", TOKENIZERS)
def test_the_tokenizers_pass(name, seed):
    result = grade_mine("tokenizer", name, TOKENIZERS[name], TOKENIZERS[name], seed)
    assert_passes(result)
    assert result.speed_ratio is not None


def test_ids_may_come_as_a_list_of_ints():
    assert_passes(grade_mine("tokenizer", "char", ListOfIds, CharTokenizer))


class DropsLastCharacter(CharTokenizer):
    def decode(self, ids):
        return super().decode(ids)[:-1]


class FloatIds(CharTokenizer):
    def encode(self, text, allow_special=True):
        return super().encode(text, allow_special).astype(np.float32)


class ListOfIds(CharTokenizer):
    def encode(self, text, allow_special=True):
        return super().encode(text, allow_special).tolist()


class FirstSeenOrder(CharTokenizer):
    """Ids in the order the characters first appear, not sorted."""

    def __init__(self, chars, special_tokens=(), unknown=None):
        super().__init__(chars, special_tokens, unknown)
        self.chars = list(dict.fromkeys(chars))
        self._table = np.array(self.chars + list(self.special_tokens), dtype=object)

    def _encode_plain(self, text):
        lookup = {c: i for i, c in enumerate(self.chars)}
        return np.array([lookup[c] for c in text], dtype=np.int64)


class SilentUnknown(CharTokenizer):
    def _encode_plain(self, text):
        return super()._encode_plain("".join(c if c in self.chars else self.chars[0] for c in text))


class BytesOnly(BPETokenizer):
    """Ignores its merges when encoding."""

    def encode(self, text, allow_special=True):
        return np.frombuffer(text.encode(), dtype=np.uint8).astype(np.int64)


@pytest.mark.parametrize("name, wrong, case, diagnosis", [
    ("char", DropsLastCharacter, "decode(encode(text))", "gave "),
    ("char", FloatIds, "decode(encode(text))", "gave float32 of shape"),
    ("char", FirstSeenOrder, "the reference's ids", "differs at"),
    ("char", SilentUnknown, "a character outside the alphabet", "was accepted: it must raise an error"),
    ("bpe", BytesOnly, "with the reference's merges", "has shape"),
    ("bpe", BytesOnly, "the trained merges shorten the corpus", "the merges shorten nothing"),
])
def test_a_wrong_tokenizer_fails_with_its_diagnosis(name, wrong, case, diagnosis):
    assert_fails(grade_mine("tokenizer", name, wrong, TOKENIZERS[name]), case, diagnosis)


def test_a_tokenizer_without_a_built_in_counterpart_is_graded_without_reference():
    result = grade_mine("tokenizer", "letters", CharTokenizer, None)
    assert result.status == NO_REFERENCE and not failures(result)
    assert_fails(grade_mine("tokenizer", "letters", DropsLastCharacter, None), "decode(encode(text))", "gave ")


# -- model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_the_gpt_passes(seed):
    result = grade_mine("model", "GPT", GPT, GPT, seed)
    assert_passes(result)
    names = [case.name for case in result.cases]
    assert any(name.startswith("no position sees a later token") for name in names)
    assert any(name.startswith("backward") for name in names)


class SeesTheFuture(GPT):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for block in self.blocks:
            block.attn.causal = False


class IgnoresStart(PositionalEncoding):
    def forward(self, x, start=0, padding=None):
        return super().forward(x, 0, padding)


class RestartsPositions(GPT):
    """Continuing from a cache, its positions start again at 0."""

    def __init__(self, vocab_size, block_size, num_layers=4, num_heads=4, embed_dim=128, **options):
        super().__init__(vocab_size, block_size, num_layers, num_heads, embed_dim, **options)
        self.pos = IgnoresStart(block_size, embed_dim)


@pytest.mark.parametrize("wrong, case, diagnosis", [
    (SeesTheFuture, "no position sees a later token", "logits of the earlier positions after changing the last token"),
    (SeesTheFuture, "forward in eval mode", "output in eval mode differs"),
    (RestartsPositions, "continuing from cached keys and values", "logits of 3 + 4 positions fed in two parts differs"),
])
def test_a_wrong_gpt_fails_with_its_diagnosis(wrong, case, diagnosis):
    assert_fails(grade_mine("model", "GPT", wrong, GPT), case, diagnosis)


# -- examples with the layer checker -----------------------------------------------------------


@pytest.mark.parametrize("key", sorted(grading.EXAMPLES))
def test_every_component_with_an_example_passes_its_checker(key):
    """The op and layer checkers (tt-core's) and the model checker build and feed
    tt-language's components from these examples, gradients included."""
    registry = tt_core.get_registry()
    kind, name = key.split(":")
    result = grade(registry.reference(kind, name), registry, seed=0)
    assert_passes(result)
    assert not any(case.status == SKIPPED for case in result.cases), result.cases
    assert any(case.name.startswith(("backward", "gradients")) for case in result.cases)


def test_the_plugin_registers_the_checkers_and_examples():
    registry = tt_core.get_registry()
    assert {"tokenizer", "model"} <= set(registry.names("checker"))
    assert set(grading.EXAMPLES) <= set(registry.names("example"))

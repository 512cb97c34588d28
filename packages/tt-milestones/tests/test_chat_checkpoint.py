"""Milestone 05's --chat checks its checkpoint before building anything from it.

The model and tokenizer are stand-ins registered in a registry of their own, so these tests
need only tt-core.
"""

from __future__ import annotations

import numpy as np
import pytest
import tt_core
from tt_core.errors import CheckpointError
from tt_core.plugins import Component, ComponentRegistry
from tt_milestones.api import RunContext
from tt_milestones.history.m05_transformer import CHECKPOINT, chat, load_chat_checkpoint

CONFIG = {"vocab_size": 5, "block_size": 8}
STATE = {"weight": np.zeros((5, 2), np.float32)}
TOKENIZER = {"type": "char", "chars": "abcde"}


BUILT: list = []  # every StandInGPT made, in order


class StandInGPT:

    def __init__(self, vocab_size, block_size):
        self.config = {"vocab_size": vocab_size, "block_size": block_size}
        self.state = None
        BUILT.append(self)

    def load_state_dict(self, state):
        self.state = state


class StandInTokenizer:
    @classmethod
    def from_dict(cls, spec):
        tokenizer = cls()
        tokenizer.spec = spec
        return tokenizer

    def encode(self, text):
        if "\udcff" in text:
            raise tt_core.TinyTorchError("the text holds a lone surrogate")
        return np.zeros(len(text), dtype=np.int64)

    def decode(self, ids):
        return "ok" * len(ids)


def stand_in_generate(model, prompt, max_tokens, **options):
    return np.concatenate([prompt, [0]])


def context(tmp_path):
    registry = ComponentRegistry()
    registry.add(Component("model", "GPT", StandInGPT, "tt-language"))
    registry.add(Component("tokenizer", "char", StandInTokenizer, "tt-language"))
    registry.add(Component("function", "generate", stand_in_generate, "tt-language"))
    return RunContext(registry=registry, out=tmp_path, options={"chat": True})


@pytest.mark.parametrize("saved, message", [
    ({"state": STATE, "tokenizer": TOKENIZER}, r"lacks config \(the GPT's constructor arguments\)"),
    ({"config": CONFIG}, r"lacks state \(its weights.*\), tokenizer \(the tokenizer"),
    ({"config": [5, 8], "state": STATE, "tokenizer": TOKENIZER}, r"not dicts: config \(a list\)"),
    ({"config": CONFIG, "state": STATE, "tokenizer": "abcde"}, r"not dicts: tokenizer \(a str\)"),
    (np.zeros(3), "holds a ndarray, not a dict with config, state, tokenizer"),
])
def test_an_incomplete_checkpoint_names_what_it_lacks_and_how_to_make_one(tmp_path, saved, message):
    path = tt_core.save(saved, tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_chat_checkpoint(path)
    assert "tt-milestones run 05 --chat" in str(caught.value)
    BUILT.clear()
    with pytest.raises(CheckpointError, match=message):
        chat(context(tmp_path))
    assert BUILT == []  # nothing was built from the bad checkpoint


def test_a_config_that_does_not_fit_the_model_is_a_checkpoint_error(tmp_path):
    tt_core.save({"config": CONFIG | {"layers": 3}, "state": STATE, "tokenizer": TOKENIZER}, tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError, match="config in .* does not fit the GPT.*layers"):
        chat(context(tmp_path))


def test_a_complete_checkpoint_loads_and_the_chat_ends_at_end_of_input(tmp_path, monkeypatch):
    path = tt_core.save({"config": CONFIG, "state": STATE, "tokenizer": TOKENIZER}, tmp_path / CHECKPOINT)
    saved = load_chat_checkpoint(path)
    assert saved["config"] == CONFIG and saved["tokenizer"] == TOKENIZER
    np.testing.assert_array_equal(saved["state"]["weight"], STATE["weight"])

    def end_of_input(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", end_of_input)
    BUILT.clear()
    chat(context(tmp_path))
    (model,) = BUILT
    assert model.config == CONFIG and set(model.state) == {"weight"}


def test_a_question_the_tokenizer_refuses_gets_the_reason_and_the_chat_goes_on(tmp_path, monkeypatch, capsys):
    tt_core.save({"config": CONFIG, "state": STATE, "tokenizer": TOKENIZER}, tmp_path / CHECKPOINT)
    questions = iter(["bad \udcff", "", "hello"])

    def typed(prompt=""):
        try:
            return next(questions)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", typed)
    chat(context(tmp_path))
    replies = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bot>")]
    assert replies == ["bot> (cannot answer that: the text holds a lone surrogate)", "bot> ok"]

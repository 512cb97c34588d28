"""generate() and sample_next() refuse what they cannot use, before the model runs once."""

from __future__ import annotations

import numpy as np
import pytest
import tt_core as tt
from tt_language import GPT, SamplingError, generate, sample_next


class Untouchable:
    """A model that fails the test if generate() runs it: bad input must be refused first."""

    vocab_size, block_size, training = 11, 8, False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, ids):
        raise AssertionError("generate() ran the model before checking its arguments")


class Counting:
    """Logits that always favour id (last id + 1) % 5, and a count of the calls."""

    vocab_size, training = 5, False

    def __init__(self):
        self.calls = 0

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, ids):
        self.calls += 1
        logits = np.full(ids.shape + (5,), -10.0)
        np.put_along_axis(logits, ((ids + 1) % 5)[..., None], 10.0, axis=-1)
        return tt.Tensor(logits)


PROMPT = np.array([1, 2], dtype=np.int64)


@pytest.mark.parametrize("temperature", [float("nan"), float("inf"), -0.5, "0.8", None, True])
def test_temperature_must_be_a_finite_number_at_least_zero(temperature):
    with pytest.raises(SamplingError, match="temperature must be a finite number >= 0"):
        generate(Untouchable(), PROMPT, 3, temperature=temperature)
    with pytest.raises(SamplingError, match="temperature"):
        sample_next(np.zeros((1, 4)), temperature=temperature)


@pytest.mark.parametrize("top_k", [2.5, 3.0, 0, -2, True, "3"])
def test_top_k_must_be_a_whole_number_at_least_one(top_k):
    with pytest.raises(SamplingError, match="top_k must be a whole number >= 1"):
        generate(Untouchable(), PROMPT, 3, top_k=top_k)


@pytest.mark.parametrize("top_p", [0, 0.0, -0.1, 1.0001, float("nan"), "0.9"])
def test_top_p_must_lie_in_zero_one(top_p):
    with pytest.raises(SamplingError, match=r"top_p must be a number in \(0, 1\]"):
        generate(Untouchable(), PROMPT, 3, top_p=top_p)


@pytest.mark.parametrize("prompt, message", [
    (np.array([1.7, 2.0]), "integer token ids, got dtype float64"),  # would be truncated to [1, 2]
    (np.array([1.0, np.nan]), "integer token ids"),
    (tt.Tensor([1, 2.5]), "integer token ids, got dtype float32"),
    (np.array([True, False]), "integer token ids, got dtype bool"),
    ("hello", "integer token ids"),
    (np.array([], dtype=np.int64), "at least one id"),
    (np.zeros((1, 0), dtype=np.int64), "at least one id"),
    (np.array([3, 11]), r"ids in \[0, 11\), got values from 3 to 11"),
    (np.array([-1, 3]), r"ids in \[0, 11\)"),
    (np.zeros((2, 2, 2), dtype=np.int64), r"one prompt \(T,\) or a batch \(B, T\)"),
])
def test_prompts_must_be_integer_ids_inside_the_vocabulary(prompt, message):
    with pytest.raises(SamplingError, match=message):
        generate(Untouchable(), prompt, 3)


def test_whole_float_ids_are_taken_as_integers():
    from tt_language.generation import token_ids

    ids = token_ids(tt.Tensor([1, 2]), "prompt", vocab_size=11)  # tt.tensor of Python ints is float32
    assert ids.dtype == np.int64 and ids.tolist() == [1, 2]


@pytest.mark.parametrize("options, message", [
    ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number >= 0"),
    ({"max_new_tokens": -1}, "max_new_tokens"),
    ({"seed": 1.5}, "seed must be a whole number >= 0"),
    ({"seed": -3}, "seed"),
    ({"stop": 2.0}, "stop must be a token id or an iterable of ids, got 2.0"),
    ({"stop": "a"}, "stop must be a token id or an iterable of ids"),
    ({"stop": [4, 1.5]}, "integer token ids"),
    ({"stop": [4, 12]}, r"ids in \[0, 11\)"),
])
def test_length_seed_and_stop_ids_are_checked(options, message):
    options = {"max_new_tokens": 3} | options
    with pytest.raises(SamplingError, match=message):
        generate(Untouchable(), PROMPT, **options)


def test_sampling_errors_are_value_errors_and_tinytorch_errors():
    with pytest.raises(ValueError):
        sample_next(np.zeros((1, 3)), top_k=1.5)
    with pytest.raises(tt.TinyTorchError):
        sample_next(np.zeros((1, 3)), top_p=2)


def test_accepted_values_still_generate():
    model = Counting()
    out = generate(model, np.array([0]), 6, temperature=0.5, top_k=np.int64(1), top_p=1, seed=np.int64(3))
    assert out.tolist() == [0, 1, 2, 3, 4, 0, 1] and model.calls == 6
    # stop given as ids of any integer type, in a set; generation ends after the first stop id
    assert generate(Counting(), np.array([0]), 6, temperature=0, stop={np.int32(3)}).tolist() == [0, 1, 2, 3]
    assert generate(Counting(), np.array([0], dtype=np.uint8), 2, temperature=0, stop=[]).tolist() == [0, 1, 2]


def test_a_gpt_refuses_ids_beyond_its_vocabulary_before_running():
    tt.manual_seed(0)
    model = GPT(vocab_size=7, block_size=8, num_layers=1, num_heads=2, embed_dim=8)
    with pytest.raises(SamplingError, match=r"\[0, 7\)"):
        generate(model, np.array([1, 7]), 2)
    assert generate(model, np.array([1, 6]), 2, temperature=0).shape == (4,)

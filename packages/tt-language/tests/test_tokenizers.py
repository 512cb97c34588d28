"""Tokenizers: exact round trips (of random Unicode too), BPE merges equal a plain reference
trainer, files, errors."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tt_core.errors import TinyTorchError
from tt_language.tokenizers import SPLIT_PATTERN, BPETokenizer, CharTokenizer, Tokenizer, TokenizerError

SAMPLES = [
    "",
    "hello world",
    "aaaaaaa aa a",
    "snake_case_name = 42² + ½",
    "naïve café — x\u0301 \u200b tab\tnew\nline  \n\n",
    "日本語のテキスト 😀🚀 <|endoftext|> done",
    "   leading and trailing spaces   ",
]

CORPUS = ("the cat sat on the mat. the dog sat on the log! " * 20) + "aaaa bbbb aaaa"


def reference_bpe(text: str, num_merges: int) -> list[tuple[int, int]]:
    """A plain-Python BPE trainer (the textbook loop) to check the vectorised one against."""
    words = Counter(re.findall(SPLIT_PATTERN, text))
    seqs = {w: list(w.encode()) for w in words}
    merges = []
    for new in range(256, 256 + num_merges):
        pairs: Counter = Counter()
        for w, seq in seqs.items():
            for pair in itertools.pairwise(seq):
                pairs[pair] += words[w]
        if not pairs:
            break
        # the same tie-break as argmax over keys a * base + b: the smallest pair wins
        best = max(pairs.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        if best[1] < 2:
            break
        merges.append(best[0])
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best[0]:
                    out.append(new)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    return merges


def test_bpe_merges_equal_reference_trainer():
    tok = BPETokenizer.train(CORPUS, num_merges=30)
    assert tok.merges == reference_bpe(CORPUS, 30)


def test_bpe_vocab_size_counts_bytes_merges_and_specials():
    tok = BPETokenizer.train(CORPUS, vocab_size=256 + 20 + 1, special_tokens=["<|endoftext|>"])
    assert len(tok.merges) == 20
    assert tok.vocab_size == 277
    assert tok.special_tokens == {"<|endoftext|>": 276}


@pytest.mark.parametrize("text", SAMPLES)
def test_bpe_round_trip_any_text(text):
    tok = BPETokenizer.train(CORPUS + " 日本語 😀", num_merges=40, special_tokens=["<|endoftext|>"])
    ids = tok.encode(text)
    assert ids.dtype == np.int64
    assert tok.decode(ids) == text


def test_bpe_encoding_uses_merges_and_overlapping_pairs_scan_left_to_right():
    tok = BPETokenizer([(97, 97)])  # one merge: "aa"
    assert tok.encode("aaa").tolist() == [256, 97]
    assert tok.encode("aaaa").tolist() == [256, 256]
    trained = BPETokenizer.train(CORPUS, num_merges=30)
    assert len(trained.encode(" the cat")) < len(b" the cat")


def test_bpe_special_tokens():
    tok = BPETokenizer.train(CORPUS, num_merges=10, special_tokens=["<|endoftext|>", "<|pad|>"])
    eot = tok.special_tokens["<|endoftext|>"]
    ids = tok.encode("the cat<|endoftext|>the dog")
    assert (ids == eot).sum() == 1
    assert tok.decode(ids) == "the cat<|endoftext|>the dog"
    plain = tok.encode("<|endoftext|>", allow_special=False)
    assert eot not in plain.tolist() and tok.decode(plain) == "<|endoftext|>"


def test_bpe_save_load(tmp_path):
    tok = BPETokenizer.train(CORPUS, num_merges=25, special_tokens=["<|endoftext|>"])
    path = tok.save(tmp_path / "bpe.json")
    again = Tokenizer.load(path)
    assert isinstance(again, BPETokenizer)
    assert again.merges == tok.merges and again.special_tokens == tok.special_tokens
    assert again.encode(CORPUS).tolist() == tok.encode(CORPUS).tolist()
    with pytest.raises(TinyTorchError, match="char"):
        CharTokenizer.load(path)


def test_a_subclass_loads_as_itself(tmp_path):
    class MyChars(CharTokenizer):
        pass

    path = MyChars("hello").save(tmp_path / "chars.json")
    again = MyChars.load(path)
    assert type(again) is MyChars and again.decode(again.encode("hole")) == "hole"
    with pytest.raises(TinyTorchError, match="does not hold a char tokenizer"):
        MyChars.load(BPETokenizer.train(CORPUS, num_merges=5).save(tmp_path / "bpe.json"))


def test_bpe_bad_arguments():
    with pytest.raises(ValueError):
        BPETokenizer.train(CORPUS)
    with pytest.raises(ValueError):
        BPETokenizer.train(CORPUS, vocab_size=100)
    with pytest.raises(ValueError, match="vocabularies up to"):
        BPETokenizer.train(CORPUS, vocab_size=50_000)
    with pytest.raises(TinyTorchError, match="does not exist"):
        BPETokenizer([(300, 1)])
    with pytest.raises(TinyTorchError, match="ids in"):
        BPETokenizer().decode([999])


def test_bpe_stops_when_no_pair_repeats():
    tok = BPETokenizer.train("abcdef", num_merges=10)
    assert tok.merges == []


SHAKESPEARE = Path(os.environ.get("TT_DATA_DIR", "/nonexistent")) / "tinyshakespeare" / "input.txt"


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="needs TT_DATA_DIR with tinyshakespeare")
def test_bpe_trains_1000_merges_on_shakespeare():
    text = SHAKESPEARE.read_text()
    tok = BPETokenizer.train(text, num_merges=1000)
    assert len(tok.merges) == 1000
    sample = text[:20_000]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    assert len(ids) < len(sample) / 2  # 1,000 merges more than halve the length


# -- characters ----------------------------------------------------------------------------


def test_char_tokenizer_round_trip_and_vocabulary():
    tok = CharTokenizer("hello world")
    assert tok.vocab_size == 8 and tok.chars == sorted(set("hello world"))
    ids = tok.encode("hello")
    assert ids.tolist() == [tok.chars.index(c) for c in "hello"]
    assert tok.decode(ids) == "hello"


def test_char_tokenizer_unknown_characters():
    tok = CharTokenizer("abc ")
    with pytest.raises(TinyTorchError, match="not in the vocabulary"):
        tok.encode("abz")
    lenient = CharTokenizer("abc ", unknown=" ")
    assert lenient.decode(lenient.encode("abz")) == "ab "


def test_char_tokenizer_special_tokens_and_files(tmp_path):
    tok = CharTokenizer("ab\n", special_tokens=["<eos>"])
    assert tok.special_tokens == {"<eos>": 3} and tok.vocab_size == 4
    ids = tok.encode("ab<eos>ba")
    assert ids.tolist() == [1, 2, 3, 2, 1]
    again = Tokenizer.load(tok.save(tmp_path / "char.json"))
    assert isinstance(again, CharTokenizer)
    assert again.decode(ids) == "ab<eos>ba"


def test_char_tokenizer_rejects_bad_input():
    with pytest.raises(TinyTorchError):
        CharTokenizer("")
    with pytest.raises(TinyTorchError, match="str"):
        CharTokenizer("ab").encode([1, 2])
    with pytest.raises(TinyTorchError, match="ids in"):
        CharTokenizer("ab").decode([5])


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"vocab_size": 300.5}, "vocab_size must be a whole number"),
    ({"vocab_size": 300.0}, "vocab_size must be a whole number"),
    ({"vocab_size": True}, "vocab_size must be a whole number"),
    ({"num_merges": 2.5}, "num_merges must be a whole number"),
    ({"num_merges": -1}, "num_merges must be >= 0"),
    ({"vocab_size": 257, "special_tokens": ["<a>", "<b>"]}, "vocab_size must be at least 258"),
    ({"vocab_size": 300, "special_tokens": "<|endoftext|>"}, r"write \['<\|endoftext\|>'\]"),
    ({"vocab_size": 300, "special_tokens": [""]}, "non-empty strings"),
])
def test_bpe_training_refuses_sizes_that_are_not_whole_numbers(options, message):
    with pytest.raises(TokenizerError, match=message):
        BPETokenizer.train(CORPUS, **options)


def test_bpe_training_and_building_refuse_bad_text_merges_and_patterns():
    with pytest.raises(TokenizerError, match="must be a str, got bytes"):
        BPETokenizer.train(b"abc abc", num_merges=2)
    with pytest.raises(TokenizerError, match="merge 1 must be a pair of token ids"):
        BPETokenizer([(97, 97), (97, 98, 99)])
    with pytest.raises(TokenizerError, match="merge 0 must be a pair"):
        BPETokenizer([(97.0, 98)])
    with pytest.raises(TokenizerError, match="not a regular expression"):
        BPETokenizer(pattern="(unclosed")


@pytest.mark.parametrize("chars, message", [
    (["ab"], "must be one character, got 'ab'"),
    (["a", "<pad>"], "special_tokens"),
    (["a", 1], "must be one character, got 1"),
    (["a", ""], "must be one character, got ''"),
    (123, "takes a string or an iterable of characters, got int"),
    ([], "at least one character"),
    ("ab\ud800", "lone surrogate"),
])
def test_char_tokenizer_alphabet_entries_are_single_characters(chars, message):
    with pytest.raises(TokenizerError, match=message):
        CharTokenizer(chars)


def test_char_tokenizer_takes_a_list_of_single_characters():
    tok = CharTokenizer(["b", "a", "b"], special_tokens=["<pad>"])
    assert tok.chars == ["a", "b"] and tok.special_tokens == {"<pad>": 2}
    with pytest.raises(TokenizerError, match="write"):
        CharTokenizer("ab", special_tokens="<pad>")  # would be five one-character tokens


def test_lone_surrogates_are_refused_with_a_hint():
    for tok in (CharTokenizer("ab"), BPETokenizer()):
        with pytest.raises(TokenizerError, match=r"lone surrogate '\\udcff' at position 1.*encoding='utf-8'"):
            tok.encode("a\udcffb")


def test_saved_specs_missing_fields_are_named(tmp_path):
    with pytest.raises(TokenizerError, match="lacks 'chars'"):
        CharTokenizer.from_dict({"type": "char", "special_tokens": []})
    with pytest.raises(TokenizerError, match="lacks 'merges'"):
        BPETokenizer.from_dict({"type": "bpe"})
    with pytest.raises(TokenizerError, match="is a dict, got list"):
        CharTokenizer.from_dict(["a", "b"])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"type": "bpe", "pattern": SPLIT_PATTERN}))
    with pytest.raises(TokenizerError, match="lacks 'merges'"):
        Tokenizer.load(path)


# -- properties of random Unicode text -------------------------------------------------------
# st.text() draws from all of Unicode except lone surrogates: any string a file can hold.

PIECES = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["<eos>", "<|endoftext|>", " ", "\n"])),
                  max_size=8).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1))
def test_char_tokenizer_round_trips_its_corpus(text):
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    assert tok.vocab_size == len(set(text)) and ids.dtype == np.int64
    assert ids.tolist() == [tok.chars.index(c) for c in text]
    assert tok.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(text=PIECES.filter(bool))
def test_char_tokenizer_round_trips_with_special_tokens(text):
    tok = CharTokenizer(text + "x", special_tokens=["<eos>"])
    for allow_special in (True, False):
        ids = tok.encode(text, allow_special=allow_special)
        assert tok.decode(ids) == text
    assert (tok.encode(text) == tok.special_tokens["<eos>"]).sum() == text.count("<eos>")
    assert tok.special_tokens["<eos>"] not in tok.encode(text, allow_special=False).tolist()


@settings(max_examples=60, deadline=None)
@given(corpus=st.text(max_size=200), text=PIECES, num_merges=st.integers(0, 30))
def test_bpe_round_trips_any_text_after_training_on_any_corpus(corpus, text, num_merges):
    tok = BPETokenizer.train(corpus, num_merges=num_merges, special_tokens=["<|endoftext|>"])
    for allow_special in (True, False):
        ids = tok.encode(text, allow_special=allow_special)
        assert ids.dtype == np.int64 and (ids.size == 0 or 0 <= ids.min() <= ids.max() < tok.vocab_size)
        assert tok.decode(ids) == text
    plain = tok.encode(text, allow_special=False)
    assert len(plain) <= len(text.encode("utf-8"))  # a merge never adds tokens
    again = BPETokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(text).tolist() == tok.encode(text).tolist()


@settings(max_examples=40, deadline=None)
@given(corpus=st.text(alphabet=st.sampled_from("ab cé😀\n"), max_size=120), num_merges=st.integers(1, 12))
def test_bpe_merges_equal_the_reference_trainer_on_random_text(corpus, num_merges):
    # a small alphabet so that pairs repeat and many merges (and ties between them) happen
    assert BPETokenizer.train(corpus, num_merges=num_merges).merges == reference_bpe(corpus, num_merges)

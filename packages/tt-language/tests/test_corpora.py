"""Text corpora: parsing, the shared data folder, missing files, language-model windows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tt_core
from tt_core.errors import ArgumentError, TinyTorchError
from tt_data.download import DataNotFoundError
from tt_language import corpora

DATA = Path(os.environ.get("TT_DATA_DIR", "/nonexistent"))
needs_data = pytest.mark.skipif(not (DATA / "tinytalks").is_dir(), reason="needs TT_DATA_DIR with the text corpora")


def test_parse_and_format_qa():
    text = "Q: Hi?\nA: Hello!\n\nQ: 2 + 2?\nA: 4.\n"
    assert corpora.parse_qa(text) == [("Hi?", "Hello!"), ("2 + 2?", "4.")]
    assert corpora.format_qa("Hi?", "Hello!") == "Q: Hi?\nA: Hello!\n\n"
    assert corpora.format_qa("Hi?") == "Q: Hi?\nA:"
    with pytest.raises(TinyTorchError, match="Q: "):
        corpora.parse_qa("Hello there\nA: hi")


@needs_data
def test_tinytalks_splits_from_the_data_folder():
    sizes = {split: len(corpora.tinytalks(split, download=False)) for split in ("train", "val", "test")}
    assert sizes == {"train": 210, "val": 45, "test": 46}
    with pytest.raises(ValueError, match="split"):
        corpora.tinytalks("dev")


@needs_data
def test_tinyshakespeare_and_its_split():
    text = corpora.tinyshakespeare(download=False)
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    train, val = corpora.tinyshakespeare("train", download=False), corpora.tinyshakespeare("val", download=False)
    assert train + val == text and len(val) == len(text) - int(len(text) * 0.9)


def test_unknown_splits_and_fractions_are_argument_errors_before_any_file_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))  # empty: a read would fail otherwise
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ArgumentError, match="TinyTalks split must be one of train, val, test, got 'validation'"):
        corpora.tinytalks("validation", download=False)
    with pytest.raises(ArgumentError, match="Tiny Shakespeare split must be None, 'train' or 'val', got 'test'"):
        corpora.tinyshakespeare("test", download=False)
    for fraction in (0, 1.5, "0.1"):
        with pytest.raises(ArgumentError, match="val_fraction"):
            corpora.tinyshakespeare("val", download=False, val_fraction=fraction)


def test_the_corpora_list_their_files_for_require(tmp_path, monkeypatch):
    assert [f.relative for f in corpora.tinytalks.data_files()] == [
        "tinytalks/splits/train.txt", "tinytalks/splits/val.txt", "tinytalks/splits/test.txt"]
    assert corpora.tinyshakespeare.data_files() == (corpora.SHAKESPEARE,)
    from tt_data import MissingDataError, require

    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(MissingDataError) as info:
        require("tinytalks", "tinyshakespeare", download=False, progress=False)
    assert set(info.value.problems) == {"tinytalks/splits/train.txt", "tinytalks/splits/val.txt",
                                        "tinytalks/splits/test.txt", "tinyshakespeare/input.txt"}


def test_missing_corpus_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="tinytalks/splits/train.txt"):
        corpora.tinytalks("train", download=False)


def test_random_windows_are_shifted_slices():
    ids = np.arange(100)
    x, y = corpora.random_windows(ids, 8, 5, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 8)
    assert np.array_equal(y, x + 1) and np.array_equal(x[:, 1:], x[:, :-1] + 1)
    with pytest.raises(TinyTorchError, match="too short"):
        corpora.random_windows(ids[:8], 8, 2, np.random.default_rng(0))


def test_registered_components():
    registry = tt_core.get_registry()
    for kind, name in [("tokenizer", "char"), ("tokenizer", "bpe"), ("layer", "Embedding"), ("layer", "LayerNorm"),
                       ("layer", "MultiHeadAttention"), ("layer", "TransformerBlock"), ("layer", "PositionalEncoding"),
                       ("model", "GPT"), ("function", "generate"), ("dataset", "tinytalks"),
                       ("dataset", "tinyshakespeare"), ("op", "embedding"), ("op", "layer_norm"),
                       ("op", "self_attention")]:
        assert registry.has(kind, name), f"{kind}:{name}"
    for name in ("embedding", "layer_norm", "scaled_dot_product_attention", "self_attention"):
        assert registry.get("op", name).backward is not None, f"op {name} comes with its rule"

"""Tokenizers: text to integer ids and back.

Two tokenizers share one small interface (``encode``, ``decode``, ``vocab_size``, ``save``,
``load``):

* :class:`CharTokenizer` gives every distinct character of a corpus its own id — the classic
  character-level language model vocabulary (65 symbols for Tiny Shakespeare).
* :class:`BPETokenizer` is a byte-level byte-pair encoder (as in GPT-2): it starts from the 256
  byte values, so *any* UTF-8 text can be encoded and decoded back exactly, and learns merges of
  frequent adjacent pairs into new tokens.

BPE training is vectorised: the corpus is first cut into chunks (words with their leading
space, numbers, punctuation runs, whitespace), and only the *unique* chunks are kept, each with
its count. All unique chunks sit in one flat NumPy array separated by ``-1``; one merge step is
then a weighted ``bincount`` of adjacent pairs and a masked rewrite of the array.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tt_core.errors import TinyTorchError

# GPT-2's pre-tokenisation pattern written with the standard library's ``re``: contractions,
# letters (``[^\W\d_]``), digits, other symbols, whitespace. The final ``.`` catches any
# character the other branches miss (``_``, ``²``, combining marks), so no text is ever lost.
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|."""
SEPARATOR = -1  # between chunks in the flat training array: pairs never cross it
MAX_PAIR_TABLE = 1 << 27  # entries of the dense pair-count table (int64: 1 GiB), ~11,500 tokens


class TokenizerError(TinyTorchError, ValueError):
    """A tokenizer built, trained, saved or used with input it cannot take."""


def _check_text(text: str, what: str = "text") -> None:
    """Raise a TokenizerError when ``text`` is not a str or holds a lone surrogate (a code point
    that no UTF encoding can write: ``"\\ud800"`` from a file read with ``errors="surrogateescape"``)."""
    if not isinstance(text, str):
        raise TokenizerError(f"{what} must be a str, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TokenizerError(
            f"{what} holds the lone surrogate {text[error.start]!r} at position {error.start}, which is not valid "
            "Unicode text: read files with encoding='utf-8' (add errors='replace' to substitute bad bytes)"
        ) from None


def _special_names(special_tokens) -> list[str]:
    """The special token names, checked: non-empty strings, given as a list (not one string)."""
    if isinstance(special_tokens, str):
        raise TokenizerError(
            f"special_tokens takes a list of names, got the string {special_tokens!r}: write [{special_tokens!r}]")
    names = list(special_tokens)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TokenizerError(f"special token names must be non-empty strings, got {name!r}")
        _check_text(name, "a special token name")
    return list(dict.fromkeys(names))  # keep order, drop repeats


def _spec_fields(spec, kind: str, required: tuple[str, ...]) -> None:
    """Raise a TokenizerError naming the fields a saved ``kind`` tokenizer spec lacks."""
    if not isinstance(spec, dict):
        raise TokenizerError(f"a saved {kind} tokenizer is a dict, got {type(spec).__name__}")
    missing = [name for name in required if name not in spec]
    if missing:
        raise TokenizerError(
            f"the saved {kind} tokenizer lacks {', '.join(map(repr, missing))} (it has {sorted(spec)}): "
            "save it again with tokenizer.save(path) or tokenizer.to_dict()")


class Tokenizer:
    """The shared interface. ``encode`` returns a 1-D int64 array; ``decode`` takes any
    sequence of ids."""

    kind = "tokenizer"

    special_tokens: dict[str, int]
    special_ids: dict[int, str]

    # -- special tokens ------------------------------------------------------------------
    def _set_special_tokens(self, names: Iterable[str], first_id: int) -> None:
        names = _special_names(names)
        self.special_tokens = {name: first_id + i for i, name in enumerate(names)}
        self.special_ids = {i: name for name, i in self.special_tokens.items()}
        # the longest first, so "<|end|>" never shadows "<|endoftext|>"
        alternatives = sorted(names, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")") if names else None

    def _split_special(self, text: str, allow_special: bool) -> list[tuple[str, bool]]:
        """``[(piece, is_special), ...]`` covering ``text``."""
        if not allow_special or self._special_re is None:
            return [(text, False)]
        pieces = self._special_re.split(text)
        # re.split with one group: odd positions are the special tokens themselves
        return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]

    def encode(self, text: str, allow_special: bool = True) -> np.ndarray:
        """Token ids of ``text``. With ``allow_special`` the special token strings (e.g.
        ``"<|endoftext|>"``) become their single ids; without, they are encoded as plain text.

        Raises:
            TokenizerError: ``text`` is not a str or holds a lone surrogate; for a
                :class:`CharTokenizer`, characters outside its alphabet (without ``unknown``).
        """
        _check_text(text, "encode()'s text")
        parts = [
            np.array([self.special_tokens[piece]], dtype=np.int64) if special else self._encode_plain(piece)
            for piece, special in self._split_special(text, allow_special)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _ids(self, ids) -> np.ndarray:
        ids = np.asarray(getattr(ids, "data", ids)).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.vocab_size):
            raise TokenizerError(f"decode() needs integer ids in [0, {self.vocab_size}), got {ids[:10]}...")
        return ids.astype(np.int64)

    # -- to implement ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def _encode_plain(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    # -- files -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the tokenizer as JSON (readable, and never pickled)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path) -> Tokenizer:
        """Read a tokenizer written by :meth:`save`: either kind when called on ``Tokenizer``,
        else one of the class it is called on (a subclass of ``CharTokenizer`` loads a
        character tokenizer as that subclass)."""
        try:
            spec = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise TokenizerError(f"cannot read a tokenizer from {path}: {error}") from None
        kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in kinds or (cls is not Tokenizer and not issubclass(cls, kinds[kind])):
            raise TokenizerError(f"{path} does not hold a {cls.kind} tokenizer (type {kind!r})")
        return (kinds[kind] if cls is Tokenizer else cls).from_dict(spec)

    def __len__(self) -> int:
        return self.vocab_size


# ----------------------------------------------------------------------------------------
# Characters
# ----------------------------------------------------------------------------------------


class CharTokenizer(Tokenizer):
    """One id per character.

    Args:
        chars: the alphabet (any iterable of characters, or a corpus string: its distinct
            characters, sorted, become the vocabulary).
        special_tokens: names (e.g. ``["<pad>"]``) given the ids after the characters.
        unknown: a character to use for characters outside the alphabet; without it,
            encoding such text raises an error naming them.

    Raises:
        TokenizerError: an empty alphabet, an entry that is not one character (``["ab"]``),
            a lone surrogate, an ``unknown`` outside the alphabet, or bad special tokens.

    Examples:
        >>> tok = CharTokenizer("hello world")
        >>> tok.vocab_size
        8
        >>> tok.decode(tok.encode("hello"))
        'hello'
    """

    kind = "char"

    def __init__(self, chars: Iterable[str], special_tokens=(), unknown: str | None = None) -> None:
        if isinstance(chars, str):
            _check_text(chars, "CharTokenizer's alphabet")
            self.chars = sorted(set(chars))
        else:
            if not isinstance(chars, Iterable):
                raise TokenizerError(
                    f"CharTokenizer takes a string or an iterable of characters, got {type(chars).__name__}")
            self.chars = sorted(set(self._single_characters(chars)))
        if not self.chars:
            raise TokenizerError("CharTokenizer needs at least one character: build it from a non-empty corpus")
        if unknown is not None and unknown not in self.chars:
            raise TokenizerError(f"the unknown character {unknown!r} must be in the alphabet")
        self.unknown = unknown
        # code points, sorted, for vectorised lookup with searchsorted
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        self._set_special_tokens(special_tokens, len(self.chars))
        self._table = np.array(self.chars + list(self.special_tokens), dtype=object)

    @staticmethod
    def _single_characters(chars: Iterable) -> list[str]:
        entries = list(chars)
        for entry in entries:
            if not isinstance(entry, str) or len(entry) != 1:
                raise TokenizerError(
                    f"every entry of CharTokenizer's alphabet must be one character, got {entry!r}: pass a string "
                    "(its characters become the vocabulary) or a list of single characters; names such as "
                    "'<pad>' go to special_tokens")
            _check_text(entry, "CharTokenizer's alphabet")
        return entries

    @classmethod
    def train(cls, text: str, special_tokens=(), unknown: str | None = None) -> CharTokenizer:
        """The alphabet of ``text`` (same as ``CharTokenizer(text)``)."""
        return cls(text, special_tokens=special_tokens, unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.special_tokens)

    def _encode_plain(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.searchsorted(self._codes, codes).clip(max=len(self._codes) - 1)
        unknown = self._codes[ids] != codes
        if unknown.any():
            if self.unknown is None:
                missing = sorted({chr(c) for c in codes[unknown]})
                raise TokenizerError(
                    f"characters not in the vocabulary: {''.join(missing)[:40]!r}; build the "
                    "tokenizer from a corpus that has them, or pass unknown=<a known character>"
                )
            ids[unknown] = self.chars.index(self.unknown)
        return ids

    def decode(self, ids) -> str:
        return "".join(self._table[self._ids(ids)])

    def to_dict(self) -> dict:
        return {"type": "char", "chars": "".join(self.chars), "special_tokens": list(self.special_tokens),
                "unknown": self.unknown}

    @classmethod
    def from_dict(cls, spec: dict) -> CharTokenizer:
        """The tokenizer :meth:`to_dict` described (a TokenizerError names missing fields)."""
        _spec_fields(spec, "char", ("chars",))
        return cls(spec["chars"], special_tokens=spec.get("special_tokens", ()), unknown=spec.get("unknown"))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# ----------------------------------------------------------------------------------------
# Byte-level BPE
# ----------------------------------------------------------------------------------------


def _merge_pair(ids: np.ndarray, left: int, right: int, new: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Merge every occurrence of the pair ``(left, right)`` in ``ids`` into ``new``, scanning
    left to right (so ``a a a`` with the pair ``(a, a)`` becomes ``aa a``).

    Returns ``(merged, hit)``: the shorter array, and a mask over the old ``ids`` of where the
    merged pairs started; or None when the pair does not occur."""
    hit = np.zeros(ids.size, dtype=bool)
    np.equal(ids[:-1], left, out=hit[:-1])
    hit[:-1] &= ids[1:] == right
    if not hit.any():
        return None
    if left == right:
        # in a run of consecutive hits only every other one, from the run's start, is a pair
        index = np.arange(ids.size)
        starts = hit & ~np.concatenate(([False], hit[:-1]))
        run_start = np.maximum.accumulate(np.where(starts, index, 0))
        hit &= (index - run_start) % 2 == 0
    keep = np.ones(ids.size, dtype=bool)
    keep[1:] = ~hit[:-1]  # the right half of each merged pair goes
    merged = np.where(hit, new, ids)[keep]
    return merged, hit


def _chunk_ids(chunks: Iterable[bytes]) -> np.ndarray:
    """Byte strings as one int64 array, each followed by :data:`SEPARATOR`."""
    flat = np.frombuffer(b"\xff".join(chunks) + b"\xff", dtype=np.uint8).astype(np.int64)
    flat[flat == 0xFF] = SEPARATOR  # 0xff never occurs in UTF-8
    return flat


def _pair_keys(ids: np.ndarray, starts: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys ``left * base + right`` of the pairs starting at ``starts`` that lie inside a chunk,
    and which of ``starts`` those are."""
    starts = starts[(starts >= 0) & (starts < ids.size - 1)]
    left, right = ids[starts], ids[starts + 1]
    inside = (left >= 0) & (right >= 0)
    return left[inside] * base + right[inside], starts[inside]


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding.

    Ids 0-255 are the bytes, ids ``256 + i`` are the learned merges (in the order they were
    learned), then the special tokens. Encoding cuts text into chunks with
    :data:`SPLIT_PATTERN` and applies the merges inside each chunk by rank, exactly as training
    did; decoding joins the bytes, so ``decode(encode(text)) == text`` for every string.

    Args:
        merges: learned pairs ``[(left_id, right_id), ...]`` (see :meth:`train`).
        special_tokens: names of special tokens (e.g. ``"<|endoftext|>"``).
        pattern: the regular expression that cuts text into chunks before merging.

    Raises:
        TokenizerError: a merge that is not a pair of ids or refers to a later token, a
            pattern that does not compile, or bad special tokens.

    Examples:
        >>> tok = BPETokenizer.train("low lower lowest " * 50, num_merges=10)
        >>> text = "lowest — élan"
        >>> tok.decode(tok.encode(text)) == text
        True
    """

    kind = "bpe"

    def __init__(self, merges: Iterable[tuple[int, int]] = (), special_tokens=(), pattern: str = SPLIT_PATTERN) -> None:
        self.merges = self._checked_merges(merges)
        self.pattern = pattern
        try:
            self._split = re.compile(pattern)
        except (re.error, TypeError) as error:
            raise TokenizerError(f"the split pattern {pattern!r} is not a regular expression: {error}") from None
        for rank, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + rank and 0 <= b < 256 + rank):
                raise TokenizerError(f"merge {rank} = ({a}, {b}) refers to a token that does not exist yet")
        # the byte string of every token
        self._bytes = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self._bytes.append(self._bytes[a] + self._bytes[b])
        self._base = 256 + len(self.merges)
        self._cache: dict[str, np.ndarray] = {}
        self._set_special_tokens(special_tokens, self._base)

    @staticmethod
    def _checked_merges(merges) -> list[tuple[int, int]]:
        pairs = [tuple(pair) if isinstance(pair, (tuple, list)) else pair for pair in merges]
        for rank, pair in enumerate(pairs):
            if not (isinstance(pair, tuple) and len(pair) == 2
                    and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair)):
                raise TokenizerError(f"merge {rank} must be a pair of token ids (left, right), got {pair!r}")
        return [(int(a), int(b)) for a, b in pairs]

    # -- training --------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int | None = None,
        num_merges: int | None = None,
        special_tokens: Iterable[str] = (),
        pattern: str = SPLIT_PATTERN,
    ) -> BPETokenizer:
        """Learn merges from ``text``: give ``num_merges``, or a ``vocab_size`` (256 bytes +
        merges + special tokens). Stops early when no pair occurs twice.

        Raises:
            TokenizerError: both or neither of ``vocab_size`` and ``num_merges``; one that is
                not a whole number (300.5 is refused, not rounded), or too small for the 256
                bytes and the special tokens, or too large for the pair-count table; ``text``
                that is not a str.
        """
        _check_text(text, "BPETokenizer.train()'s text")
        special_tokens = _special_names(special_tokens)
        if (vocab_size is None) == (num_merges is None):
            raise TokenizerError("give exactly one of vocab_size and num_merges")
        for name, value in (("vocab_size", vocab_size), ("num_merges", num_merges)):
            if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
                raise TokenizerError(f"{name} must be a whole number (an int), got {value!r}")
        if num_merges is None:
            num_merges = int(vocab_size) - 256 - len(special_tokens)
        num_merges = int(num_merges)
        if num_merges < 0:
            raise TokenizerError(
                f"vocab_size must be at least {256 + len(special_tokens)} (bytes + special tokens), got {vocab_size}"
                if vocab_size is not None else f"num_merges must be >= 0, got {num_merges}")
        base = 256 + num_merges
        if base * base > MAX_PAIR_TABLE:
            raise TokenizerError(
                f"{num_merges} merges need a pair-count table of {base}² entries; this trainer handles "
                f"vocabularies up to {math.isqrt(MAX_PAIR_TABLE)} tokens"
            )
        ids, weights = cls._chunk_array(text, re.compile(pattern), special_tokens)
        # counts[a * base + b] = how often the pair (a, b) occurs in the corpus; after each merge
        # only the pairs around the merged positions are taken out and put back
        counts = np.zeros(base * base, dtype=np.int64)
        keys, starts = _pair_keys(ids, np.arange(ids.size), base)
        np.add.at(counts, keys, weights[starts])
        merges: list[tuple[int, int]] = []
        for new in range(256, base):
            best = int(counts.argmax())
            if counts[best] < 2:
                break
            a, b = divmod(best, base)
            merges.append((a, b))
            merged, hit = _merge_pair(ids, a, b, new)
            where = np.flatnonzero(hit)
            keys, starts = _pair_keys(ids, np.unique(np.concatenate((where - 1, where, where + 1))), base)
            np.subtract.at(counts, keys, weights[starts])
            weights = weights[~np.concatenate(([False], hit[:-1]))]
            ids = merged
            where -= np.arange(where.size)  # the merged tokens' positions in the shorter array
            keys, starts = _pair_keys(ids, np.unique(np.concatenate((where - 1, where))), base)
            np.add.at(counts, keys, weights[starts])
        return cls(merges, special_tokens=special_tokens, pattern=pattern)

    @staticmethod
    def _chunk_array(text: str, split: re.Pattern, special_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Unique chunks of ``text`` as one flat byte array (chunks separated by -1) and, per
        position, how often its chunk occurs."""
        for name in special_tokens:  # special tokens are never merged into other tokens
            text = text.replace(name, " ")
        counts = Counter(split.findall(text))
        chunks = [c.encode("utf-8") for c in counts]
        freqs = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        lengths = np.fromiter((len(c) + 1 for c in chunks), dtype=np.int64, count=len(chunks))
        return _chunk_ids(chunks), np.repeat(freqs, lengths)

    # -- encoding --------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._base + len(self.special_tokens)

    def _encode_chunks(self, chunks: list[str]) -> list[np.ndarray]:
        """Encode unique chunks together, applying the merges in the order they were learned.

        This equals the usual "merge the lowest-ranked pair first" loop: a merge can only
        create pairs that contain its new token, and those rank after it."""
        flat = _chunk_ids(c.encode("utf-8") for c in chunks)
        for rank, (a, b) in enumerate(self.merges):
            result = _merge_pair(flat, a, b, 256 + rank)
            if result is not None:
                flat = result[0]
        return np.split(flat, np.flatnonzero(flat == SEPARATOR) + 1)[:-1]

    def _encode_plain(self, text: str) -> np.ndarray:
        chunks = self._split.findall(text)
        new = [c for c in dict.fromkeys(chunks) if c not in self._cache]
        if new:
            if len(self._cache) > 100_000:
                self._cache.clear()
            for chunk, ids in zip(new, self._encode_chunks(new)):
                self._cache[chunk] = ids[:-1]  # drop the separator
        if not chunks:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([self._cache[c] for c in chunks])

    def decode(self, ids) -> str:
        pieces = [
            self.special_ids[i].encode("utf-8") if i >= self._base else self._bytes[i] for i in self._ids(ids).tolist()
        ]
        # a sequence cut in the middle of a multi-byte character decodes to U+FFFD there
        return b"".join(pieces).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (handy to inspect what was learned)."""
        if token_id >= self._base:
            return self.special_ids[token_id].encode("utf-8")
        return self._bytes[token_id]

    # -- files -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"type": "bpe", "pattern": self.pattern, "merges": self.merges,
                "special_tokens": list(self.special_tokens)}

    @classmethod
    def from_dict(cls, spec: dict) -> BPETokenizer:
        """The tokenizer :meth:`to_dict` described (a TokenizerError names missing fields)."""
        _spec_fields(spec, "bpe", ("merges",))
        return cls(spec["merges"], special_tokens=spec.get("special_tokens", ()), pattern=spec.get("pattern", SPLIT_PATTERN))

    def __repr__(self) -> str:
        return f"BPETokenizer(merges={len(self.merges)}, vocab_size={self.vocab_size})"

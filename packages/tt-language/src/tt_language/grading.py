"""Checkers of Act IV's kinds, and the examples that call its ops and build its layers and GPT.

A checker is ``check(grader, yours, reference, name)`` (see :mod:`tt_core.grading`):

- ``tokenizer``: trained on a random corpus, the vocabulary size equals the reference's;
  ``encode`` gives integer ids (a 1-D array or a list of ints) in ``[0, vocab_size)``;
  ``decode(encode(text)) == text`` on random texts; special tokens become one id each; a
  tokenizer saved and loaded encodes the same; the character tokenizer gives the
  reference's ids and refuses characters outside its alphabet; the byte-pair tokenizer,
  given the reference's merges, gives its ids and shortens the text it was trained on.
- ``model``: everything the layer checker checks (parameter names and shapes,
  initialisation, forward and backward equal to the reference's after loading its state
  dict), built from the example ``example:model:<Name>``; for the GPT also that no position
  sees a later token and that continuing from cached keys and values (``cache=``) gives
  the logits of the full forward pass.
- ``function:generate`` (:func:`check_generate`): on a tiny random GPT, greedy decoding gives
  the reference's ids for one prompt, a batch, a context past ``block_size`` and a stop id;
  sampling with a seed repeats itself, stays in the vocabulary and with ``top_k=1`` is
  greedy; the model's mode and recording are restored.
- ``function:random_windows`` (:func:`check_random_windows`): every row a window of the ids
  with its next-token targets, the same windows for the same generator, every start drawn.

The ``example`` components registered by :func:`register` describe calls of tt-language's
ops (input shapes and attributes) and build its layers (the embedding fed integer ids) and a
tiny GPT.
"""

from __future__ import annotations

import inspect
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tt_core import is_grad_enabled, manual_seed
from tt_core.grading import Example, Mismatch, check_module, register_graders
from tt_data.grading import as_array, expect

from .cache import ListKVCache
from .model import GPT

SPECIAL = "<|end|>"


# ----------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------


def _train(cls, corpus: str, **options):
    """``cls.train(corpus)`` (a few merges for a byte-pair tokenizer), or ``cls(corpus)``."""
    train = getattr(cls, "train", None)
    if train is None:
        return cls(corpus, **options)
    try:
        parameters = inspect.signature(train).parameters
    except (TypeError, ValueError):
        parameters = {}
    if "num_merges" in parameters:
        options = {"num_merges": 24, **options}
    return train(corpus, **options)


def _ids(tokenizer, text: str) -> np.ndarray:
    """``tokenizer.encode(text)``, checked to be 1-D integer ids within the vocabulary."""
    ids = as_array(tokenizer.encode(text))
    expect(ids.ndim == 1 and (ids.dtype.kind in "iu" or ids.size == 0),
           f"encode({text[:20]!r}) gave {ids.dtype} of shape {ids.shape}: it must give one integer id after "
           "another (a 1-D int64 array or a list of ints)")
    size = tokenizer.vocab_size
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise Mismatch(f"encode({text[:20]!r}) gave ids from {ids.min()} to {ids.max()}, outside [0, {size}) "
                       f"(vocab_size {size})")
    return ids.astype(np.int64, copy=False)


def _texts(rng: np.random.Generator, alphabet: list[str], count: int = 6) -> list[str]:
    """Random texts over ``alphabet`` (one of them empty)."""
    return [""] + ["".join(rng.choice(alphabet, int(rng.integers(1, 80)))) for _ in range(count - 1)]


def check_tokenizer(grader, yours, reference, name: str) -> None:
    """The ``tokenizer`` contract (``encode``, ``decode``, ``vocab_size``, ``save``/``load``)."""
    rng = grader.rng
    symbols = list(string.ascii_letters + string.digits + " .,;:!?'-\n")
    alphabet = sorted(set(rng.choice(symbols, 30, replace=False).tolist()) | {"é", "ß", " "})
    corpus = "".join(rng.choice(alphabet, 600)) + "".join(alphabet)  # every character occurs
    texts = _texts(rng, alphabet)
    how = f"{name}.train(a random corpus of {len(corpus)} characters over {len(alphabet)} symbols)"

    with grader.case(f"builds as {how}") as built:
        tok = _train(yours, corpus)
    if not built.passed:
        return
    ref = _train(reference, corpus) if reference is not None else None

    if ref is not None:
        with grader.case("vocab_size equals the reference's"):
            expect(tok.vocab_size == ref.vocab_size, f"vocab_size is {tok.vocab_size}, the reference's {ref.vocab_size}")

    with grader.case("decode(encode(text)) gives the text back, ids in [0, vocab_size)"):
        for text in texts:
            back = tok.decode(_ids(tok, text))
            expect(back == text, f"decode(encode({text[:30]!r})) gave {back[:30]!r}")

    with grader.case(f"a special token ({SPECIAL}) is one id, decoded back"):
        special = _train(yours, corpus, special_tokens=[SPECIAL])
        ids = _ids(special, texts[1] + SPECIAL)
        alone = _ids(special, SPECIAL)
        expect(alone.size == 1, f"encode({SPECIAL!r}) gave {alone.size} ids, a special token is one id")
        expect(ids[-1] == alone[0], f"{SPECIAL} at the end of a text is id {ids[-1]}, alone id {alone[0]}")
        expect(special.decode(ids) == texts[1] + SPECIAL, f"a text ending in {SPECIAL} does not decode back")

    with grader.case("saved and loaded, it encodes the same"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tokenizer.json"
            tok.save(path)
            loaded = type(tok).load(path)
        for text in texts:
            grader.compare(_ids(loaded, text), _ids(tok, text), f"ids of {text[:20]!r} after save and load",
                           against="ids before saving")

    extra = EXTRA_TOKENIZER_CHECKS.get(name)
    if extra is not None and ref is not None:
        extra(grader, yours, tok, ref, corpus, texts)
    if ref is not None:
        grader.time(lambda: tok.encode(corpus), lambda: ref.encode(corpus))


def _check_char(grader, yours, tok, ref, corpus: str, texts: list[str]) -> None:
    with grader.case("the reference's ids (one id per character, in sorted order)"):
        for text in texts + [corpus]:
            grader.compare(_ids(tok, text), _ids(ref, text), f"ids of {text[:20]!r}")
    with grader.case("a character outside the alphabet is refused"):
        outside = next(c for c in "~^@#$%&*" if c not in corpus)
        try:
            tok.encode(texts[1] + outside)
        except Exception:  # noqa: BLE001 - any clear error will do
            return
        raise Mismatch(f"encode() of a text with {outside!r}, which the corpus lacks, was accepted: it must raise "
                       "an error naming the character")


def _check_bpe(grader, yours, tok, ref, corpus: str, texts: list[str]) -> None:
    with grader.case("with the reference's merges, the reference's ids"):
        same = yours(ref.merges)
        for text in texts + [corpus, "naïve café, 1234 — ok"]:
            grader.compare(_ids(same, text), _ids(ref, text), f"ids of {text[:20]!r}")
    with grader.case("the trained merges shorten the corpus"):
        count, length = _ids(tok, corpus).size, len(corpus.encode())
        expect(count < length, f"the corpus of {length} bytes encodes to {count} ids: the merges shorten nothing")


EXTRA_TOKENIZER_CHECKS: dict[str, Callable] = {"char": _check_char, "bpe": _check_bpe}


# ----------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------


def check_model(grader, yours, reference, name: str) -> None:
    """The ``model`` contract: the layer checker's cases, then the GPT's own properties."""
    check_module(grader, yours, reference, name)
    made = grader.example("model", name)
    if name == "GPT" and made is not None:
        _check_gpt(grader, yours, made)


def _check_gpt(grader, yours, made: Example) -> None:
    ids = np.asarray(made.inputs[0])
    vocab = made.kwargs["vocab_size"]
    with grader.case("no position sees a later token (changing the last token keeps the earlier logits)"):
        model = yours(*made.args, **made.kwargs).eval()
        changed = ids.copy()
        changed[:, -1] = (changed[:, -1] + 1) % vocab
        before, after = as_array(model(ids)), as_array(model(changed))
        grader.compare(after[:, :-1], before[:, :-1], "logits of the earlier positions after changing the last token",
                       rtol=1e-5, atol=1e-6, against="the logits before")
    with grader.case("continuing from cached keys and values (cache=ListKVCache()) gives the full forward's logits"):
        model = yours(*made.args, **made.kwargs).eval()
        split = ids.shape[1] // 2
        full = as_array(model(ids))
        cache = ListKVCache()
        first = model(ids[:, :split], cache=cache)
        rest = model(ids[:, split:], cache=cache)
        grader.compare(np.concatenate([as_array(first), as_array(rest)], axis=1), full,
                       f"logits of {split} + {ids.shape[1] - split} positions fed in two parts", rtol=1e-4, atol=1e-5,
                       against="the full forward")


# ----------------------------------------------------------------------------------------
# function:generate
# ----------------------------------------------------------------------------------------


def _ids_out(value, what: str) -> np.ndarray:
    """Generated ids as an integer array."""
    ids = as_array(value)
    expect(ids.dtype.kind in "iu", f"{what} are {ids.dtype}: token ids are integers")
    return ids


def _stop_id(new: np.ndarray) -> int:
    """A stop id that changes what greedy decoding gives: a new token followed by another
    one (a stop there cuts a row short), else the first new token."""
    for row in new:
        changes = np.flatnonzero(row[:-1] != row[1:])
        if changes.size:
            return int(row[changes[0]])
    return int(new[0, 0])


def check_generate(grader, yours, reference, name: str) -> None:
    """The check of ``function:generate``: ``generate(model, prompt_ids, max_new_tokens,
    temperature=1.0, top_k=None, top_p=None, stop=None, seed=None)`` on a tiny random GPT.

    Greedy (``temperature=0``) ids equal the reference's for one prompt, a batch (3, T), a
    prompt whose continuation runs past ``block_size`` (the context must slide) and with a
    stop id (finished rows repeat it); sampling with a seed gives the same ids twice, ids in
    the vocabulary, and with ``top_k=1`` the greedy ids; no new tokens give the prompt back;
    the model's training mode and graph recording are as before.
    """
    if reference is None:
        grader.skip("generated ids", "no built-in generate to compare with")
        return
    rng = grader.rng
    vocab, block = int(rng.integers(11, 30)), 8
    manual_seed(int(rng.integers(2**31)))
    model = GPT(vocab_size=vocab, block_size=block, num_layers=1, num_heads=2, embed_dim=8)
    prompt, count = rng.integers(0, vocab, 3), 5

    def both(ids, new: int, **options) -> tuple[np.ndarray, np.ndarray]:
        return (_ids_out(yours(model, ids, new, **options), "your ids"),
                _ids_out(reference(model, ids, new, **options), "the reference's ids"))

    with grader.case(f"greedy (temperature=0): one prompt of {len(prompt)} ids, {count} new tokens"):
        grader.compare(*both(prompt, count, temperature=0), "the generated ids", check_dtype=False)
    batch = rng.integers(0, vocab, (3, 4))
    with grader.case(f"greedy: a batch of prompts {batch.shape}, every row the reference's ids"):
        grader.compare(*both(batch, count, temperature=0), "the generated ids", check_dtype=False)
    long = rng.integers(0, vocab, 6)
    with grader.case(f"greedy: {len(long)} ids and 10 new tokens, past block_size {block} (the context slides)"):
        grader.compare(*both(long, 10, temperature=0), "the generated ids", check_dtype=False)
    greedy = _ids_out(reference(model, batch, count, temperature=0), "the reference's ids")
    first = int(_ids_out(reference(model, prompt, 1, temperature=0), "the reference's ids")[-1])
    stop = _stop_id(greedy[:, batch.shape[1]:])
    with grader.case("greedy with a stop id: one prompt ends right after it, a batch's finished rows repeat it"):
        grader.compare(*both(prompt, count, temperature=0, stop=first),
                       f"the ids of one prompt with stop={first} (its first new token)", check_dtype=False)
        grader.compare(*both(batch, count, temperature=0, stop=stop), f"the ids of the batch with stop={stop}",
                       check_dtype=False)
    seed = int(rng.integers(2**31))
    with grader.case(f"sampling (temperature=1, seed={seed}): the same ids twice, in [0, {vocab})"):
        first = _ids_out(yours(model, batch, 8, temperature=1.0, seed=seed), "the sampled ids")
        second = _ids_out(yours(model, batch, 8, temperature=1.0, seed=seed), "the sampled ids")
        expect(first.shape == (3, 12), f"the sampled ids have shape {first.shape}: expected (3, 12), the prompts "
                                       "followed by 8 new ids")
        grader.compare(second, first, "the ids of a second call with the same seed", against="the first call's")
        expect(first.min() >= 0 and first.max() < vocab, f"sampled ids run from {first.min()} to {first.max()}, "
                                                         f"outside the vocabulary [0, {vocab})")
    with grader.case("sampling with top_k=1 keeps only the most likely token: the greedy ids"):
        sampled = _ids_out(yours(model, batch, count, temperature=1.0, top_k=1, seed=seed), "the sampled ids")
        grader.compare(sampled, greedy, "the ids sampled with top_k=1", against="greedy decoding", check_dtype=False)
    with grader.case("no new tokens give the prompt back; the model's mode and recording are as before"):
        model.train()
        grader.compare(_ids_out(yours(model, prompt, 0), "the ids"), prompt, "the ids for 0 new tokens",
                       against="the prompt", check_dtype=False)
        yours(model, prompt, 2, temperature=0)
        expect(model.training, "after generate the model is in eval mode: put it back in the mode it was in")
        expect(is_grad_enabled(), "after generate, graph recording is off: restore it")
    grader.time(lambda: yours(model, batch, count, temperature=0), lambda: reference(model, batch, count, temperature=0))


# ----------------------------------------------------------------------------------------
# function:random_windows
# ----------------------------------------------------------------------------------------


def check_random_windows(grader, yours, reference, name: str) -> None:
    """The check of ``function:random_windows``: ``random_windows(ids, block_size, batch_size,
    rng) -> (x, y)``.

    On ids that are all different (so a window shows where it starts): ``x`` and ``y`` of
    shape (batch_size, block_size), every row of ``x`` a window of the ids and the same row
    of ``y`` the ids one further on; the same windows for generators of the same seed;
    every possible start drawn over 2,000 windows (the last one too); an error for a corpus
    no longer than ``block_size``.
    """
    rng = grader.rng
    ids = rng.permutation(int(rng.integers(30, 50))).astype(np.int64)
    block, batch = int(rng.integers(3, 7)), int(rng.integers(4, 9))
    starts = np.argsort(ids)  # starts[token] is where the token sits
    seed = int(rng.integers(2**31))
    with grader.case(f"{batch} windows of {block} from {len(ids)} ids: (x, y) of shape ({batch}, {block}), "
                     "y the next ids"):
        x, y = (_ids_out(part, f"the {label}") for part, label in zip(
            yours(ids, block, batch, np.random.default_rng(seed)), ("inputs x", "targets y")))
        for label, part in (("x", x), ("y", y)):
            expect(part.shape == (batch, block), f"{label} has shape {part.shape}, expected ({batch}, {block})")
        for row in range(batch):
            start = int(starts[x[row, 0]])
            grader.compare(x[row], ids[start:start + block], f"row {row} of x", against=f"the ids from {start}",
                           check_dtype=False)
            grader.compare(y[row], ids[start + 1:start + block + 1], f"row {row} of y",
                           against=f"the ids from {start + 1} (one further than x)", check_dtype=False)
    with grader.case("generators of the same seed give the same windows"):
        first, second = (yours(ids, block, batch, np.random.default_rng(seed)) for _ in range(2))
        grader.compare(as_array(second[0]), as_array(first[0]), "x of a second call", against="the first call's")
    possible = len(ids) - block
    with grader.case(f"over 2000 windows every one of the {possible} possible starts is drawn"):
        x, _ = yours(ids, block, 2000, np.random.default_rng(seed))
        drawn = np.unique(starts[_ids_out(x, "the inputs x")[:, 0]])
        missing = sorted(set(range(possible)) - set(drawn.tolist()))
        expect(not missing, f"windows never start at {missing[:5]} (of starts 0 to {possible - 1}): draw starts "
                            f"from all {possible} windows, the last one too")
    with grader.case(f"a corpus of {block} ids (no next token for a window of {block}) raises"):
        try:
            yours(ids[:block], block, batch, np.random.default_rng(seed))
            raised = False
        except Exception:  # noqa: BLE001 (any error naming the problem will do)
            raised = True
        expect(raised, f"random_windows of {block} ids with block_size={block} gave windows: it must raise, "
                       f"since a window needs {block + 1} ids")
    if reference is not None:
        grader.time(lambda: yours(ids, block, 64, np.random.default_rng(seed)),
                    lambda: reference(ids, block, 64, np.random.default_rng(seed)))


# ----------------------------------------------------------------------------------------
# Examples
# ----------------------------------------------------------------------------------------


def _features(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _embedding(rng):
    vocab = int(rng.integers(8, 20))
    return Example(args=(vocab, 6), inputs=(rng.integers(0, vocab, (2, 5)),))


def _positional_encoding(rng):
    kind = str(rng.choice(["learned", "sinusoidal"]))
    return Example(args=(12, 6), kwargs={"kind": kind}, inputs=(_features(rng, 2, 5, 6),))


def _layer_norm(rng):
    return Example(args=(6,), inputs=(_features(rng, 2, 4, 6) * 3 + 1,))


def _attention(rng):
    return Example(args=(8, 2), kwargs={"causal": bool(rng.integers(2))}, inputs=(_features(rng, 2, 5, 8),))


def _block(rng):
    return Example(args=(8, 2), inputs=(_features(rng, 2, 4, 8),))


def _gpt(rng):
    vocab = int(rng.integers(11, 30))
    config = {"vocab_size": vocab, "block_size": 12, "num_layers": 2, "num_heads": 2, "embed_dim": 8}
    return Example(kwargs=config, inputs=(rng.integers(0, vocab, (2, 7)),))


def _embedding_op(rng):
    return Example(kwargs={"indices": rng.integers(0, 5, (2, 4))}, inputs=(_features(rng, 5, 3),))


def _layer_norm_op(rng):
    return Example(kwargs={"eps": 1e-5}, inputs=(_features(rng, 2, 3, 6), _features(rng, 6), _features(rng, 6)))


def _attention_op(rng):
    return Example(kwargs={"causal": bool(rng.integers(2))},
                   inputs=(_features(rng, 2, 4, 3), _features(rng, 2, 5, 3), _features(rng, 2, 5, 2)))


def _self_attention_op(rng):
    return Example(kwargs={"num_heads": 2, "causal": bool(rng.integers(2))}, inputs=(_features(rng, 2, 4, 12),))


EXAMPLES: dict[str, Callable[[np.random.Generator], Example]] = {
    "op:embedding": _embedding_op,
    "op:layer_norm": _layer_norm_op,
    "op:scaled_dot_product_attention": _attention_op,
    "op:self_attention": _self_attention_op,
    "layer:Embedding": _embedding,
    "layer:PositionalEncoding": _positional_encoding,
    "layer:LayerNorm": _layer_norm,
    "layer:MultiHeadAttention": _attention,
    "layer:TransformerBlock": _block,
    "model:GPT": _gpt,
}
"""``example`` components, by ``kind:Name``."""

CHECKERS: dict[str, Callable[[Any, Any, Any, str], None]] = {
    "tokenizer": check_tokenizer,
    "model": check_model,
    "function:generate": check_generate,
    "function:random_windows": check_random_windows,
}
"""The checker of each of tt-language's kinds, and the check of each of its functions
(``function:<name>``, which tt-core's ``function`` checker hands the function to)."""


def register(registry) -> None:
    """Register tt-language's checkers and examples with a plugin's registrar."""
    register_graders(registry, CHECKERS, EXAMPLES)

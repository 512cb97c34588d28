"""``generate``: let a language model continue a sequence of token ids."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
from tt_core import set_grad_enabled
from tt_core.errors import TinyTorchError
from tt_core.rng import generator


class SamplingError(TinyTorchError, ValueError):
    """A prompt, a stop id or a sampling option (temperature, top_k, top_p, ...) that cannot be used."""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_sampling(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """Check the options of :func:`sample_next` before any work is done.

    Args:
        temperature: a finite number >= 0.
        top_k: None, or a whole number >= 1 (an ``int``: 2.5 or 2.0 are refused, not rounded).
        top_p: None, or a number in (0, 1].

    Raises:
        SamplingError: naming the option, the value it got and the values it takes.
    """
    if not _is_real(temperature) or not math.isfinite(temperature) or temperature < 0:
        raise SamplingError(
            f"temperature must be a finite number >= 0 (0 is greedy, 1 samples the model's own "
            f"probabilities), got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise SamplingError(f"top_k must be a whole number >= 1 (or None for no cut), got {top_k!r}")
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise SamplingError(f"top_p must be a number in (0, 1] (or None for no cut), got {top_p!r}")


def check_max_new_tokens(max_new_tokens) -> int:
    """``max_new_tokens`` as an int, or a SamplingError when it is not a whole number >= 0."""
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise SamplingError(f"max_new_tokens must be a whole number >= 0, got {max_new_tokens!r}")
    return int(max_new_tokens)


def private_generator(seed) -> np.random.Generator | None:
    """A generator seeded with ``seed``, or None (use the global one) when ``seed`` is None.

    Raises:
        SamplingError: ``seed`` is not a whole number >= 0.
    """
    if seed is None:
        return None
    if not _is_int(seed) or seed < 0:
        raise SamplingError(f"seed must be a whole number >= 0 (or None), got {seed!r}")
    return np.random.default_rng(int(seed))


def token_ids(values, what: str = "prompt_ids", vocab_size: int | None = None) -> np.ndarray:
    """``values`` (a sequence, array or Tensor of ids) as an int64 array, checked.

    Args:
        values: the ids; an array of an integer dtype (what ``tokenizer.encode`` returns).
        what: the argument's name, for the error message.
        vocab_size: when given, every id must be below it.

    Returns:
        An int64 array of the same shape.

    Raises:
        SamplingError: no ids, ids that are not whole numbers (1.5 is refused rather than
            truncated; 2.0 is taken as 2), or ids outside [0, vocab_size).
    """
    array = np.asarray(getattr(values, "data", values))
    if array.size == 0:
        raise SamplingError(f"{what} needs at least one id, shape (T,) or (B, T); got shape {array.shape}")
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)  # whole numbers (tt.tensor([1, 2]) is float32): nothing is truncated
    if array.dtype.kind not in "iu":
        example = array.reshape(-1)[:5].tolist() if array.dtype != object else "ragged or mixed values"
        raise SamplingError(
            f"{what} must be integer token ids, got dtype {array.dtype} ({example}); encode text with a "
            "tokenizer, or convert whole numbers with .astype(np.int64)")
    low, high = int(array.min()), int(array.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        bound = f"[0, {vocab_size})" if vocab_size is not None else ">= 0"
        raise SamplingError(f"{what} must be ids in {bound}, got values from {low} to {high}")
    return array.astype(np.int64, copy=False)


def sample_next(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Pick one id per row of ``logits`` (B, V).

    ``temperature == 0`` is greedy (argmax). Otherwise the logits are divided by the
    temperature, cut to the ``top_k`` largest and to the smallest set whose probability
    reaches ``top_p`` (nucleus sampling), and one id is drawn from what is left.

    Raises:
        SamplingError: an option outside its range (see :func:`check_sampling`).

    Examples:
        >>> sample_next(np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]]), temperature=0).tolist()
        [1, 0]
        >>> rng = np.random.default_rng(0)
        >>> sample_next(np.array([[0.0, 5.0, 1.0]]), top_k=1, rng=rng).tolist()  # only the best is left
        [1]
    """
    check_sampling(temperature, top_k, top_p)
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, axis=-1)
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        # keep a token when the probability before it is still below top_p (the first always stays)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
        keep_sorted = before < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    rng = generator() if rng is None else rng
    draws = rng.random((probs.shape[0], 1))
    # inverse-CDF sampling for every row at once; min() guards against rounding at the top end
    return np.minimum((np.cumsum(probs, axis=-1) < draws).sum(axis=-1), probs.shape[-1] - 1)


def _stop_ids(stop, vocab_size: int | None) -> np.ndarray:
    """The sorted unique stop ids of ``generate`` (empty when there are none)."""
    if stop is None:
        return np.zeros(0, dtype=np.int64)
    if _is_int(stop):
        values = [stop]
    elif isinstance(stop, Iterable) and not isinstance(stop, (str, bytes)):
        values = list(stop)
    else:
        raise SamplingError(f"stop must be a token id or an iterable of ids, got {stop!r}")
    if not values:
        return np.zeros(0, dtype=np.int64)
    return np.unique(token_ids(np.array(values), "stop", vocab_size))


def generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop: int | Iterable[int] | None = None,
    seed: int | None = None,
    cache=None,
) -> np.ndarray:
    """Continue ``prompt_ids`` by up to ``max_new_tokens`` tokens.

    Without a ``cache`` every step runs the whole context through the model again (simple,
    and the cost of a step grows with the context). With one (an empty key/value cache, see
    :mod:`tt_language.cache`), the prompt runs through the model once and then each step
    feeds only the new token: the model must take ``model(ids, cache=cache)``, and prompt and
    new tokens must fit its ``block_size`` (the context cannot slide).

    Args:
        model: maps ids (B, T) to logits (B, T, V); if it has a ``block_size``, only the last
            ``block_size`` ids are fed (the context window slides).
        prompt_ids: one sequence (T,) or a batch (B, T) of integer ids; at least one id.
        max_new_tokens: how many ids to add (a whole number >= 0).
        temperature: 0 for greedy decoding (always the most likely token); higher is more random.
        top_k, top_p: sample only among the k most likely tokens / the smallest set of tokens
            whose probabilities sum to p.
        stop: an id (or an iterable of ids) that ends generation: a sequence stops after
            producing one (the stop id is kept), and generation ends when every sequence has
            stopped; finished sequences are padded with their stop id.
        seed: seeds a private generator, so the same call gives the same text; without it the
            global generator (``tt_core.manual_seed``) is used.
        cache: a key/value cache holding nothing yet; rows of a left-padded batch are hidden
            and positioned by its ``padding``.

    Returns:
        The prompt followed by the new ids: (T + n,) for one prompt, (B, T + n) for a batch.

    Raises:
        SamplingError: before anything runs, for ids that are not integers (they are never
            truncated), ids outside the model's ``vocab_size``, an empty prompt, a
            ``max_new_tokens`` or ``seed`` that is not a whole number >= 0, or sampling options
            out of range (see :func:`check_sampling`), or with a ``cache``: one that is not
            empty, or more positions than the model's ``block_size``.

    Examples:
        >>> import tt_core as tt
        >>> from tt_language import GPT, CharTokenizer
        >>> tokenizer = CharTokenizer("ROMEO: what light through yonder window breaks")
        >>> _ = tt.manual_seed(0)
        >>> model = GPT(tokenizer.vocab_size, block_size=16, num_layers=1, num_heads=2, embed_dim=16)
        >>> out = generate(model, tokenizer.encode("ROMEO:"), 20, temperature=0.8, top_k=5, seed=0)
        >>> out.shape, tokenizer.decode(out)[:6]  # the prompt, then 20 new characters
        ((26,), 'ROMEO:')
        >>> bool((generate(model, tokenizer.encode("ROMEO:"), 20, temperature=0.8, top_k=5, seed=0) == out).all())
        True
        >>> generate(model, np.zeros((3, 2), dtype=np.int64), 4, temperature=0).shape  # a batch, greedy
        (3, 6)
    """
    vocab_size = getattr(model, "vocab_size", None)
    vocab_size = int(vocab_size) if _is_int(vocab_size) else None
    ids = token_ids(prompt_ids, "generate()'s prompt_ids", vocab_size)
    if ids.ndim not in (1, 2):
        raise SamplingError(f"generate() takes one prompt (T,) or a batch (B, T) of ids, got shape {ids.shape}")
    single = ids.ndim == 1
    ids = np.atleast_2d(ids)
    max_new_tokens = check_max_new_tokens(max_new_tokens)
    check_sampling(temperature, top_k, top_p)
    stops = _stop_ids(stop, vocab_size)
    rng = private_generator(seed)
    window = getattr(model, "block_size", None)
    if cache is not None:
        if cache.length:
            raise SamplingError(f"generate() needs an empty cache, this one holds {cache.length} positions: "
                                "make a new cache for each generation")
        if window is not None and ids.shape[1] + max_new_tokens > window:
            raise SamplingError(f"{ids.shape[1]} prompt ids + {max_new_tokens} new tokens exceed the model's "
                                f"block_size {window}, and with a cache the context cannot slide: generate fewer "
                                "tokens or use a shorter prompt (or no cache)")
    was_training = getattr(model, "training", False)
    model.eval()
    previous = set_grad_enabled(False)
    try:
        done = np.zeros(len(ids), dtype=bool)
        for _ in range(max_new_tokens):
            if cache is None:
                out = model(ids if window is None else ids[:, -window:])
            else:  # only what the cache does not hold yet: the prompt, then one token
                out = model(ids[:, cache.length:], cache=cache)
            logits = np.asarray(out.data[:, -1, :])
            new = sample_next(logits, temperature, top_k, top_p, rng)
            if stops.size:
                new = np.where(done, ids[:, -1], new)  # finished rows repeat their stop id
                done |= np.isin(new, stops)
            ids = np.concatenate([ids, new[:, None]], axis=1)
            if stops.size and done.all():
                break
    finally:
        set_grad_enabled(previous)
        model.train(was_training)
    return ids[0] if single else ids

"""``generate``: let a language model continue a sequence of token ids."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tt_core import set_grad_enabled
from tt_core.errors import TinyTorchError
from tt_core.rng import generator


def sample_next(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Pick one id per row of ``logits`` (B, V).

    ``temperature == 0`` is greedy (argmax). Otherwise the logits are divided by the
    temperature, cut to the ``top_k`` largest and to the smallest set whose probability
    reaches ``top_p`` (nucleus sampling), and one id is drawn from what is left.

    Raises:
        ValueError: a negative temperature, ``top_k < 1`` or ``top_p`` outside (0, 1].

    Examples:
        >>> sample_next(np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]]), temperature=0).tolist()
        [1, 0]
        >>> rng = np.random.default_rng(0)
        >>> sample_next(np.array([[0.0, 5.0, 1.0]]), top_k=1, rng=rng).tolist()  # only the best is left
        [1]
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
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


def generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop: int | Iterable[int] | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """Continue ``prompt_ids`` by up to ``max_new_tokens`` tokens.

    Args:
        model: maps ids (B, T) to logits (B, T, V); if it has a ``block_size``, only the last
            ``block_size`` ids are fed (the context window slides).
        prompt_ids: one sequence (T,) or a batch (B, T) of integer ids; at least one id.
        temperature: 0 for greedy decoding (always the most likely token); higher is more random.
        top_k, top_p: sample only among the k most likely tokens / the smallest set of tokens
            whose probabilities sum to p.
        stop: an id (or ids) that ends generation: a sequence stops after producing one (the
            stop id is kept), and generation ends when every sequence has stopped; finished
            sequences are padded with their stop id.
        seed: seeds a private generator, so the same call gives the same text; without it the
            global generator (``tt_core.manual_seed``) is used.

    Returns:
        The prompt followed by the new ids: (T + n,) for one prompt, (B, T + n) for a batch.

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
    ids = np.asarray(getattr(prompt_ids, "data", prompt_ids))
    single = ids.ndim == 1
    ids = np.atleast_2d(ids).astype(np.int64)
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise TinyTorchError(f"generate() needs a prompt of at least one id, shape (T,) or (B, T); got {ids.shape}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    stops = np.array(sorted({stop} if isinstance(stop, (int, np.integer)) else set(stop or ())), dtype=np.int64)
    rng = np.random.default_rng(seed) if seed is not None else None
    window = getattr(model, "block_size", None)
    was_training = getattr(model, "training", False)
    model.eval()
    previous = set_grad_enabled(False)
    try:
        done = np.zeros(len(ids), dtype=bool)
        for _ in range(max_new_tokens):
            context = ids if window is None else ids[:, -window:]
            logits = np.asarray(model(context).data[:, -1, :])
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

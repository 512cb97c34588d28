import numpy as np
import pytest
import tt_core
import tt_language
from tt_perf import CachedDecoder, kv_generate
from tt_perf.kv_cache import one_at_a_time


@pytest.fixture(scope="module")
def gpt():
    tt_core.manual_seed(3)
    model = tt_language.GPT(vocab_size=40, block_size=96, num_layers=2, num_heads=4, embed_dim=32)
    rng = np.random.default_rng(5)
    for name, parameter in model.named_parameters():  # layer norms and biases away from 1 and 0:
        if "ln" in name or name.endswith("bias"):     # the decoder folds them into its matrices
            parameter.data = (parameter.data + 0.3 * rng.standard_normal(parameter.shape)).astype(np.float32)
    return model.eval()


@pytest.fixture(scope="module")
def decoder(gpt):
    return CachedDecoder(gpt)


def test_cached_greedy_tokens_equal_uncached_generation(gpt, decoder):
    prompt = np.random.default_rng(0).integers(0, 40, 7)
    reference = tt_language.generate(gpt, prompt, 50, temperature=0)  # full forward at every step
    cached = kv_generate(gpt, prompt, 50)
    np.testing.assert_array_equal(cached, reference)
    np.testing.assert_array_equal(decoder.generate(prompt, 50, use_cache=False), reference)


def test_cached_logits_match_the_models_forward(gpt, decoder):
    ids = np.random.default_rng(1).integers(0, 40, (2, 20))
    previous = tt_core.set_grad_enabled(False)
    full = gpt(ids).data
    tt_core.set_grad_enabled(previous)
    cache = decoder.new_cache(2, 20)
    positions = np.broadcast_to(np.arange(20), (2, 20))
    np.testing.assert_allclose(decoder.step(ids[:, :12], positions[:, :12], cache), full[:, 11], atol=1e-5)
    for t in range(12, 20):  # then one token at a time from the cache
        logits = decoder.step(ids[:, t:t + 1], positions[:, t:t + 1], cache)
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5)
    assert cache.length == 20


def test_batched_prompts_of_different_lengths_equal_one_at_a_time(decoder):
    rng = np.random.default_rng(2)
    prompts = [rng.integers(0, 40, n) for n in (1, 9, 4, 15, 6)]
    batched = decoder.generate(prompts, 25)
    recomputed = decoder.generate(prompts, 25, use_cache=False)  # padded batch, whole sequence each step
    alone = one_at_a_time(decoder, prompts, 25)
    assert [len(b) for b in batched] == [len(p) + 25 for p in prompts]
    for b, r, a, p in zip(batched, recomputed, alone, prompts):
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(r, a)
        np.testing.assert_array_equal(b[:len(p)], p)


def test_sampling_is_reproducible_with_and_without_cache(decoder):
    prompt = np.arange(5)
    options = {"temperature": 0.9, "top_k": 10, "seed": 4}
    np.testing.assert_array_equal(decoder.generate(prompt, 30, **options),
                                  decoder.generate(prompt, 30, use_cache=False, **options))


def test_equal_length_batch_keeps_its_array_shape(decoder):
    out = decoder.generate(np.zeros((3, 4), dtype=np.int64), 5)
    assert out.shape == (3, 9)


def test_errors(gpt, decoder):
    with pytest.raises(tt_core.TinyTorchError, match="block_size"):
        decoder.generate(np.arange(10), 90)
    with pytest.raises(tt_core.TinyTorchError, match="at least one id"):
        decoder.generate([np.arange(3), np.array([], dtype=np.int64)], 2)
    with pytest.raises(tt_core.TinyTorchError, match="GPT layout"):
        CachedDecoder(tt_core.Sequential(tt_core.Linear(2, 2)))

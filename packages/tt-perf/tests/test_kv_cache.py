import numpy as np
import pytest
import tt_core
import tt_language
from tt_core.errors import ArgumentError, ShapeError
from tt_language.cache import ListKVCache
from tt_perf import CachedDecoder, KVCache, kv_generate
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


def left_padded(prompts):
    width = max(len(p) for p in prompts)
    pad = np.array([width - len(p) for p in prompts])
    ids = np.zeros((len(prompts), width), dtype=np.int64)
    for i, p in enumerate(prompts):
        ids[i, pad[i]:] = p
    return ids, pad


@pytest.mark.parametrize("make_cache", [lambda n: KVCache(n), lambda n: ListKVCache()], ids=["KVCache", "ListKVCache"])
def test_cached_greedy_tokens_equal_uncached_generation(gpt, decoder, make_cache):
    prompt = np.random.default_rng(0).integers(0, 40, 7)
    reference = tt_language.generate(gpt, prompt, 50, temperature=0)  # full forward at every step
    np.testing.assert_array_equal(tt_language.generate(gpt, prompt, 50, temperature=0, cache=make_cache(57)), reference)
    np.testing.assert_array_equal(kv_generate(gpt, prompt, 50), reference)


def test_fused_decoder_logits_match_the_models_cached_path(gpt, decoder):
    ids = np.random.default_rng(1).integers(0, 40, (2, 20))
    model_cache, fused_cache = KVCache(20), decoder.new_cache(20)
    positions = np.broadcast_to(np.arange(20), (2, 20))
    previous = tt_core.set_grad_enabled(False)
    try:
        full = gpt(ids[:, :12], cache=model_cache).data[:, -1]
        np.testing.assert_allclose(decoder.step(ids[:, :12], positions[:, :12], fused_cache), full, atol=1e-4)
        for t in range(12, 20):  # then one token at a time from each cache
            logits = gpt(ids[:, t:t + 1], cache=model_cache).data[:, -1]
            np.testing.assert_allclose(decoder.step(ids[:, t:t + 1], positions[:, t:t + 1], fused_cache), logits,
                                       atol=1e-4)
    finally:
        tt_core.set_grad_enabled(previous)
    assert model_cache.length == fused_cache.length == 20
    np.testing.assert_allclose(fused_cache.values[1], model_cache.values[1], atol=1e-4)


def test_left_padded_batch_equals_one_at_a_time(gpt, decoder):
    rng = np.random.default_rng(2)
    prompts = [rng.integers(0, 40, n) for n in (1, 9, 4, 15, 6)]
    alone = [tt_language.generate(gpt, p, 25, temperature=0) for p in prompts]
    ids, pad = left_padded(prompts)
    for cache in (KVCache(ids.shape[1] + 25, padding=pad), ListKVCache(padding=pad)):
        batch = tt_language.generate(gpt, ids, 25, temperature=0, cache=cache)
        for row, a, p in zip(batch, alone, pad):
            np.testing.assert_array_equal(row[p:], a)
    fused = decoder.generate(prompts, 25)
    assert [len(b) for b in fused] == [len(p) + 25 for p in prompts]
    for b, a in zip(fused, one_at_a_time(decoder, prompts, 25)):
        np.testing.assert_array_equal(b, a)
    for b, a in zip(fused, alone):
        np.testing.assert_array_equal(b, a)


def test_a_learners_model_built_from_the_layers_uses_the_cache():
    class Tiny(tt_core.Module):
        def __init__(self):
            super().__init__()
            self.emb = tt_language.Embedding(30, 16)
            self.pos = tt_language.PositionalEncoding(32, 16)
            self.layers = tt_core.ModuleList(tt_language.TransformerBlock(16, 2) for _ in range(2))
            self.out = tt_core.Linear(16, 30)

        def forward(self, ids, cache=None):
            start = 0 if cache is None else cache.length
            x = self.pos(self.emb(np.asarray(ids)), start=start)
            for i, layer in enumerate(self.layers):
                x = layer(x, cache=cache, layer=i)
            return self.out(x.reshape(-1, 16)).reshape(x.shape[:2] + (30,))

    tt_core.manual_seed(1)
    model = Tiny().eval()
    prompt = np.array([4, 2, 9])
    np.testing.assert_array_equal(tt_language.generate(model, prompt, 20, temperature=0, cache=KVCache(23)),
                                  tt_language.generate(model, prompt, 20, temperature=0))


def test_sampling_is_reproducible_with_and_without_cache(gpt, decoder):
    prompt = np.arange(5)
    options = {"temperature": 0.9, "top_k": 10, "seed": 4}
    np.testing.assert_array_equal(tt_language.generate(gpt, prompt, 30, cache=KVCache(35), **options),
                                  tt_language.generate(gpt, prompt, 30, **options))
    np.testing.assert_array_equal(decoder.generate(prompt, 30, **options), decoder.generate(prompt, 30, **options))


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
    with pytest.raises(tt_core.TinyTorchError, match="larger max_len"):
        tt_language.generate(gpt, np.arange(5), 10, temperature=0, cache=KVCache(8))
    with pytest.raises(tt_language.SamplingError, match="cannot slide"):
        tt_language.generate(gpt, np.arange(10), 90, temperature=0, cache=KVCache(100))
    used = KVCache(20)
    tt_language.generate(gpt, np.arange(3), 2, temperature=0, cache=used)
    with pytest.raises(tt_language.SamplingError, match="empty cache"):
        tt_language.generate(gpt, np.arange(3), 2, temperature=0, cache=used)
    with pytest.raises(ArgumentError, match="max_len"):
        KVCache(0)
    with pytest.raises(ArgumentError, match="one per row"):
        tt_language.generate(gpt, np.zeros((2, 3), dtype=np.int64), 2, cache=KVCache(5, padding=[1]))
    keys = np.zeros((1, 4, 2, 8), dtype=np.float32)
    cache = KVCache(4)
    cache.update(0, keys, keys)
    with pytest.raises(ShapeError, match="do not fit"):
        cache.update(0, np.zeros((1, 2, 1, 8), dtype=np.float32), keys)
    with pytest.raises(ArgumentError, match="order they run"):
        cache.update(2, keys, keys)

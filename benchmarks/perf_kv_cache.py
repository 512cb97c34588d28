"""KV-cache generation with tt-perf: speed-up over uncached generation by length, batched
throughput, and the cached decoder against the same decoder written in PyTorch, in one run.

The GPT is tt-language's (random weights: speed does not depend on them). For each number of
new tokens it times, on the same prompt:

* ``uncached``: ``tt_language.generate`` (the model's full forward at every step);
* ``cached``: the same call with a ``tt_perf.KVCache`` (the model's own cached path, one token
  per step);
* ``fused``: ``tt_perf.CachedDecoder.generate`` (the same cache, layer norms folded into the
  matrices, plain NumPy);
* ``torch cached``: the same cached loop written with torch ops (``F.layer_norm``,
  ``F.scaled_dot_product_attention``, ``F.gelu``) on the same weights, when torch is installed.

The last line, ``ratio tt/torch = X.XXx``, is the fused decoder's time over torch's at the
longest length (the path milestone 06 gates on); the model's cached path is in the table.

Times are CPU seconds of this process (BLAS single-threaded by default), the best of
``--repeats``: on a shared machine wall time grows with other processes' load, and more for
long computations than for short ones. Batched: ``--prompts`` prompts of random lengths
(left-padded, masked) at once vs one at a time, both cached, for each ``--batch-tokens``; the
same two ways in torch (prompts run into the cache one by one, then batched decoding steps),
so the ratio batching reaches in tt can be set beside the one it reaches in PyTorch; and, as
a bound, the ratio the batch would reach if its attention cost nothing.

    python benchmarks/perf_kv_cache.py [--threads 1] [--layers 4] [--embed 128] [--heads 4]
        [--prompt 64] [--lengths 64 128 256 512] [--prompts 16] [--batch-tokens 32 64 128 256]
        [--uncached-prompts 4] [--json out.json]
"""

from __future__ import annotations

import _harness as bench


def parse():
    parser = bench.parser(__doc__, threads_help="BLAS and torch threads")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512], help="new tokens")
    parser.add_argument("--prompts", type=int, default=16, help="prompts in the batched run")
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[32, 64, 128, 256],
                        help="new tokens per prompt in the batched runs")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--uncached-prompts", type=int, default=4,
                        help="prompts whose uncached one-at-a-time generation is timed (the slowest run)")
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args()


ARGS = parse()
torch = bench.use_threads(ARGS.threads)  # before NumPy loads its BLAS; None without torch (comparison skipped)

import json
from contextlib import contextmanager
from functools import partial

import numpy as np
import tt_core
from rich.console import Console
from rich.table import Table
from tt_language import GPT
from tt_perf import CachedDecoder, kv_cache
from tt_perf.experiments import batched_throughput, kv_cache_speedups
from tt_perf.timing import measure

TF = torch.nn.functional if torch is not None else None


def as_torch(value):
    """Arrays (also inside tuples) as torch tensors sharing their memory."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, tuple):
        return tuple(as_torch(v) for v in value)
    return value


def torch_generate(decoder: CachedDecoder, prompts: list[np.ndarray], new_tokens: int) -> list[np.ndarray]:
    """Greedy cached generation in torch, the same computation as ``decoder.generate(prompts, n)``
    on the same (folded) weights: prompts left-padded into one batch, padding hidden by an
    additive mask; the prompts are run one by one into their rows of the cache, then every
    step decodes the whole batch. One prompt in the list is one-at-a-time generation."""
    wte, wpe, head_w, head_b = (as_torch(a) for a in (decoder.wte, decoder.wpe, decoder.head_w, decoder.head_b))
    blocks = [{name: as_torch(value) for name, value in vars(b).items()} for b in decoder.blocks]
    heads, dim, width = decoder.heads, decoder.head_dim, decoder.embed_dim
    batch, lengths = len(prompts), [len(p) for p in prompts]
    start = max(lengths)
    total = start + new_tokens
    keys = torch.zeros(len(blocks), batch, heads, total, dim)
    values = torch.zeros_like(keys)
    mask = torch.zeros(batch, 1, 1, total)
    ids = torch.zeros(batch, total, dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, start - len(prompt):start] = torch.from_numpy(prompt)
        mask[i, ..., :start - len(prompt)] = -torch.inf

    def forward(new, positions, rows, begin, first, attend):
        """Run tokens ``new`` (rows x T) into cache columns begin..begin+T of ``rows``, attending
        over columns first..begin+T (causal when ``attend`` is None, else that additive mask)."""
        count, stop = new.shape[1], begin + new.shape[1]
        x = (wte[new] + wpe[positions]).reshape(-1, width)
        for layer, b in enumerate(blocks):
            h = TF.layer_norm(x, (width,), eps=b["eps1"])
            qkv = (h @ b["qkv_w"] + b["qkv_b"]).reshape(-1, count, 3, heads, dim).permute(2, 0, 3, 1, 4)
            keys[layer, rows, :, begin:stop] = qkv[1]
            values[layer, rows, :, begin:stop] = qkv[2]
            out = TF.scaled_dot_product_attention(qkv[0], keys[layer, rows, :, first:stop],
                                                  values[layer, rows, :, first:stop], attn_mask=attend,
                                                  is_causal=attend is None, scale=1.0)
            x = x + out.transpose(1, 2).reshape(-1, width) @ b["proj_w"] + b["proj_b"]
            h = TF.layer_norm(x, (width,), eps=b["eps2"])
            x = x + TF.gelu(h @ b["fc_w"] + b["fc_b"], approximate="tanh") @ b["out_w"] + b["out_b"]
        last = x.reshape(-1, count, width)[:, -1]
        return (TF.layer_norm(last, (width,), eps=decoder.eps_f) @ head_w + head_b).argmax(-1)

    with torch.no_grad():
        for i, n in enumerate(lengths):  # each prompt alone (causal) into its own row
            pad = start - n
            ids[i, start] = forward(ids[i:i + 1, pad:start], torch.arange(n)[None], slice(i, i + 1), pad, pad, None)[0]
        positions = torch.tensor([[n - 1] for n in lengths])
        for step in range(start + 1, total):
            positions += 1
            ids[:, step] = forward(ids[:, step - 1:step], positions, slice(None), step - 1, 0, mask[..., :step])
    return [ids[i, start - n:].numpy() for i, n in enumerate(lengths)]


@contextmanager
def attention_free():
    """A bound, not a result: while active, the decoder's attention returns zeros at no cost
    (its tokens are then wrong), so a batched run measures everything but attention. The
    one-at-a-time time over that says what batching could reach if the batch's attention over
    its 16 caches cost nothing while one-at-a-time generation kept paying for its own."""
    real = kv_cache.softmax_attention
    kv_cache.softmax_attention = lambda q, keys, values, *rest, **options: (np.zeros(q.shape, dtype=np.float32), None)
    try:
        yield
    finally:
        kv_cache.softmax_attention = real


def main() -> None:
    console = Console()
    tt_core.manual_seed(0)
    block = ARGS.prompt + max(ARGS.lengths)
    model = GPT(vocab_size=ARGS.vocab, block_size=block, num_layers=ARGS.layers, num_heads=ARGS.heads,
                embed_dim=ARGS.embed).eval()
    size = f"GPT {ARGS.layers} layers x {ARGS.heads} heads x {ARGS.embed} wide, context {block}, " \
           f"{model.num_parameters():,} parameters"
    console.print(f"{size}; prompt {ARGS.prompt} tokens; {ARGS.threads} thread(s); CPU seconds, best of {ARGS.repeats}")
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, ARGS.vocab, ARGS.prompt)
    rows = kv_cache_speedups(model, prompt, ARGS.lengths, repeats=ARGS.repeats)
    decoder = CachedDecoder(model)
    for row in rows:
        if torch is not None:
            run = partial(torch_generate, decoder, [prompt], row["tokens"])
            seconds = measure(run, warmup=0, repeats=ARGS.repeats, clock="cpu").minimum  # best CPU time
            tokens, cached = run()[0], decoder.generate(prompt, row["tokens"])
            row |= {"torch_cached_s": seconds, "tt_over_torch": row["fused_s"] / seconds,
                    "model_cached_over_torch": row["cached_s"] / seconds,
                    "torch_tokens_identical": bool(np.array_equal(tokens, cached))}

    table = Table(title=f"KV cache: {size}")
    for column in ("new tokens", "uncached s", "cached s", "speed-up", "fused s", "speed-up",
                   "identical", "torch cached s", "cached / torch", "fused / torch"):
        table.add_column(column, justify="right")
    nan = float("nan")
    for r in rows:
        table.add_row(str(r["tokens"]), f"{r['uncached_s']:.3f}", f"{r['cached_s']:.3f}", f"{r['speedup']:.1f}x",
                      f"{r['fused_s']:.3f}", f"{r['fused_speedup']:.1f}x", str(r["identical"]),
                      f"{r.get('torch_cached_s', nan):.3f}", f"{r.get('model_cached_over_torch', nan):.2f}",
                      f"{r.get('tt_over_torch', nan):.2f}")
    console.print(table)

    lengths = rng.integers(max(1, ARGS.prompt // 4), ARGS.prompt + 1, ARGS.prompts)
    prompts = [rng.integers(0, ARGS.vocab, n) for n in lengths]
    batched = []
    for n in ARGS.batch_tokens:
        row = batched_throughput(model, prompts, n, repeats=ARGS.repeats, uncached_prompts=ARGS.uncached_prompts)
        with attention_free():  # the batched run again, its attention replaced by zeros
            free_s = measure(partial(decoder.generate, prompts, n), warmup=0, repeats=ARGS.repeats, clock="cpu").minimum
        row["ratio_if_attention_were_free"] = row["one_at_a_time_s"] / free_s
        if torch is not None:
            at_once = partial(torch_generate, decoder, prompts, n)
            alone = partial(lambda n: [torch_generate(decoder, [p], n)[0] for p in prompts], n)
            torch_s = {name: measure(fn, warmup=0, repeats=ARGS.repeats, clock="cpu").minimum
                       for name, fn in (("batched", at_once), ("single", alone))}
            same = all(np.array_equal(a, b) for a, b in zip(at_once(), decoder.generate(prompts, n)))
            row |= {"torch_batched_s": torch_s["batched"], "torch_one_at_a_time_s": torch_s["single"],
                    "torch_throughput_ratio": torch_s["single"] / torch_s["batched"], "torch_tokens_identical": same}
        batched.append(row)

    table = Table(title=f"Batched generation: {ARGS.prompts} prompts of {lengths.min()}-{lengths.max()} tokens")
    for column in ("new tokens", "tokens/s at once", "one at a time", "uncached one at a time", "cache+batch ratio",
                   "ratio", "ratio, free attention", "torch ratio",
                   "tt / torch at once",
                   "tt / torch one at a time", "identical"):
        table.add_column(column, justify="right")
    for r in batched:
        table.add_row(str(r["new_tokens"]), f"{r['batched_tokens_per_s']:.0f}", f"{r['one_at_a_time_tokens_per_s']:.0f}",
                      f"{r['uncached_tokens_per_s']:.0f}", f"{r['combined_ratio']:.1f}x",
                      f"{r['throughput_ratio']:.2f}x", f"{r['ratio_if_attention_were_free']:.2f}x",
                      f"{r.get('torch_throughput_ratio', nan):.2f}x",
                      f"{r['batched_s'] / r.get('torch_batched_s', nan):.2f}",
                      f"{r['one_at_a_time_s'] / r.get('torch_one_at_a_time_s', nan):.2f}",
                      str(r["identical"] and r.get("torch_tokens_identical", True)))
    console.print(table)
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"model": size, "threads": ARGS.threads, "lengths": rows, "batched": batched}, f, indent=2)
    if torch is not None:
        console.print(f"ratio tt/torch = {rows[-1]['tt_over_torch']:.2f}x")


if __name__ == "__main__":
    main()

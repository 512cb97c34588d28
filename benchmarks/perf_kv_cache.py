"""KV-cache generation with tt-perf: speed-up over uncached generation by length, batched
throughput, and the cached decoder against the same decoder written in PyTorch, in one run.

The GPT is tt-language's (random weights: speed does not depend on them). For each number of
new tokens it times, on the same prompt:

* ``cached``: ``tt_perf.CachedDecoder.generate`` (KV cache, one token per step);
* ``uncached``: the same decoder recomputing the whole sequence at every step;
* ``tt-language``: ``tt_language.generate`` (the model's full forward at every step);
* ``torch cached``: the same cached loop written with torch ops (``F.layer_norm``,
  ``F.scaled_dot_product_attention``, ``F.gelu``) on the same weights, when torch is installed.

Times are CPU seconds of this process (BLAS single-threaded by default), the best of
``--repeats``: on a shared machine wall time grows with other processes' load, and more for
long computations than for short ones. Batched: ``--prompts`` prompts of random lengths
(left-padded, masked) at once vs one at a time, both cached.

    python benchmarks/perf_kv_cache.py [--threads 1] [--layers 4] [--embed 128] [--heads 4]
        [--prompt 64] [--lengths 64 128 256 512] [--prompts 16] [--batch-tokens 256] [--json out.json]
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
    parser.add_argument("--batch-tokens", type=int, default=256, help="new tokens per prompt in the batched run")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--no-framework", action="store_true", help="skip tt_language.generate (slowest)")
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args()


ARGS = parse()
torch = bench.use_threads(ARGS.threads)  # before NumPy loads its BLAS; None without torch (comparison skipped)

import json
from functools import partial

import numpy as np
import tt_core
from rich.console import Console
from rich.table import Table
from tt_language import GPT, generate
from tt_perf import CachedDecoder
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


def torch_generate(decoder: CachedDecoder, prompt: np.ndarray, new_tokens: int) -> np.ndarray:
    """Greedy cached generation for one prompt, the same loop as CachedDecoder, in torch."""
    wte, wpe, head, ln_f = (as_torch(a) for a in (decoder.wte, decoder.wpe, decoder.head_w, decoder.ln_f))
    blocks = [{name: as_torch(value) for name, value in vars(b).items()} for b in decoder.blocks]
    heads, dim = decoder.heads, decoder.head_dim
    total = len(prompt) + new_tokens
    keys = torch.zeros(len(blocks), 1, heads, total, dim)
    values = torch.zeros_like(keys)
    ids = torch.zeros(1, total, dtype=torch.long)
    ids[0, :len(prompt)] = torch.from_numpy(prompt)
    length = 0
    with torch.no_grad():
        for step in range(len(prompt), total):
            new = ids[:, length:step]
            x = (wte[new] + wpe[length:step]).reshape(-1, wte.shape[1])
            count = new.shape[1]
            for layer, b in enumerate(blocks):
                h = TF.layer_norm(x, (x.shape[-1],), b["ln1"][0], b["ln1"][1], b["ln1"][2])
                qkv = (h @ b["qkv_w"] + b["qkv_b"]).reshape(1, count, 3, heads, dim).permute(2, 0, 3, 1, 4)
                keys[layer, :, :, length:step] = qkv[1]
                values[layer, :, :, length:step] = qkv[2]
                out = TF.scaled_dot_product_attention(qkv[0], keys[layer, :, :, :step], values[layer, :, :, :step],
                                                      is_causal=count > 1)
                x = x + out.transpose(1, 2).reshape(count, -1) @ b["proj_w"] + b["proj_b"]
                h = TF.layer_norm(x, (x.shape[-1],), b["ln2"][0], b["ln2"][1], b["ln2"][2])
                x = x + TF.gelu(h @ b["fc_w"] + b["fc_b"], approximate="tanh") @ b["out_w"] + b["out_b"]
            logits = TF.layer_norm(x[-1:], (x.shape[-1],), *ln_f) @ head
            ids[0, step] = logits.argmax(-1)[0]
            length = step
    return ids[0].numpy()


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
    framework = None if ARGS.no_framework else (lambda m, p, n: generate(m, p, n, temperature=0))
    rows = kv_cache_speedups(model, prompt, ARGS.lengths, framework_generate=framework, repeats=ARGS.repeats)
    decoder = CachedDecoder(model)
    for row in rows:
        if torch is not None:
            run = partial(torch_generate, decoder, prompt, row["tokens"])
            seconds = measure(run, warmup=0, repeats=ARGS.repeats, clock="cpu").minimum  # best CPU time
            tokens, cached = run(), decoder.generate(prompt, row["tokens"])
            row |= {"torch_cached_s": seconds, "tt_over_torch": row["cached_s"] / seconds,
                    "torch_tokens_identical": bool(np.array_equal(tokens, cached))}

    table = Table(title=f"KV cache: {size}")
    for column in ("new tokens", "cached s", "uncached s", "speed-up", "tt-language s", "speed-up",
                   "identical", "torch cached s", "tt / torch"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["tokens"]), f"{r['cached_s']:.3f}", f"{r['uncached_s']:.3f}", f"{r['speedup']:.1f}x",
                      f"{r.get('framework_s', float('nan')):.3f}", f"{r.get('framework_speedup', float('nan')):.1f}x",
                      str(r["identical"] and r.get("identical_to_framework", True)),
                      f"{r.get('torch_cached_s', float('nan')):.3f}", f"{r.get('tt_over_torch', float('nan')):.2f}")
    console.print(table)

    lengths = rng.integers(max(1, ARGS.prompt // 4), ARGS.prompt + 1, ARGS.prompts)
    prompts = [rng.integers(0, ARGS.vocab, n) for n in lengths]
    batched = batched_throughput(model, prompts, ARGS.batch_tokens, repeats=ARGS.repeats)
    console.print(f"batched: {ARGS.prompts} prompts of lengths {sorted(lengths.tolist())}, {ARGS.batch_tokens} new "
                  f"tokens each: {batched['batched_tokens_per_s']:.0f} tokens/s at once vs "
                  f"{batched['one_at_a_time_tokens_per_s']:.0f} one at a time = {batched['throughput_ratio']:.2f}x "
                  f"(identical: {batched['identical']})")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"model": size, "threads": ARGS.threads, "lengths": rows, "batched": batched}, f, indent=2)


if __name__ == "__main__":
    main()

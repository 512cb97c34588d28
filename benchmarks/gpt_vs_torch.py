"""Training-step speed of a small GPT in TinyTorch vs PyTorch (CPU), in one run, plus
generation speed.

The model is nanoGPT's CPU configuration: 4 layers, 4 heads, embedding 128, context 64,
vocabulary 65 (Tiny Shakespeare's characters), tied input/output embeddings, batch 32. One
step = forward + cross-entropy + backward + AdamW step on random ids, with the same initial
weights on both sides (the first losses agree). Both libraries use the same number of
threads. Rounds alternate tt and torch so that machine noise hits both alike; the result is
the median ms per step of each and their ratio. Generation: tokens/s of sampling 100 tokens
from a one-token prompt without a KV cache (the context window is recomputed each token).

    python benchmarks/gpt_vs_torch.py [--threads 1] [--steps 5] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import sys


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (same both sides)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per library (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--new-tokens", type=int, default=100, help="tokens generated for the tokens/s figure")
    parser.add_argument("--profile", action="store_true", help="cProfile the tt steps instead of comparing")
    return parser.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before NumPy and torch load their BLAS

import statistics
import time

import numpy as np
import torch
import tt_core as tt
from torch import nn
from tt_language import GPT, generate
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import AdamW

VOCAB, BLOCK, LAYERS, HEADS, WIDTH, BATCH = 65, 64, 4, 4, 128, 32


# -- the same model in PyTorch, with the same parameter names --------------------------------


class TorchAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, HEADS, c // HEADS).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class TorchMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(WIDTH, 4 * WIDTH)
        self.proj = nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x):
        return self.proj(nn.functional.gelu(self.fc(x), approximate="tanh"))


class TorchBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(WIDTH), TorchAttention()
        self.ln2, self.mlp = nn.LayerNorm(WIDTH), TorchMLP()

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TorchGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB, WIDTH)
        self.pos = nn.Module()
        self.pos.weight = nn.Parameter(torch.zeros(BLOCK, WIDTH))
        self.blocks = nn.ModuleList(TorchBlock() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.head.weight = self.tok_emb.weight

    def forward(self, ids):
        x = self.tok_emb(ids) + self.pos.weight[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def torch_copy(model: GPT) -> TorchGPT:
    net = TorchGPT()
    state = {k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}
    net.load_state_dict(state)
    return net


@torch.no_grad()
def torch_generate(net, prompt, new_tokens, generator):
    ids = prompt
    for _ in range(new_tokens):
        logits = net(ids[:, -BLOCK:])[:, -1, :]
        probs = torch.softmax(logits, dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    tt.manual_seed(0)
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, VOCAB, (BATCH, BLOCK)), rng.integers(0, VOCAB, (BATCH, BLOCK))) for _ in range(4)]
    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    model = GPT(VOCAB, BLOCK, num_layers=LAYERS, num_heads=HEADS, embed_dim=WIDTH)
    net = torch_copy(model)
    opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    torch_opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)
    loss_fn, torch_loss_fn = CrossEntropyLoss(), nn.CrossEntropyLoss()

    def tt_step(i):
        x, y = data[i % len(data)]
        loss = loss_fn(model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def torch_step(i):
        x, y = torch_data[i % len(torch_data)]
        loss = torch_loss_fn(net(x).reshape(-1, VOCAB), y.reshape(-1))
        torch_opt.zero_grad()
        loss.backward()
        torch_opt.step()
        return loss

    first = tt_step(0).item(), torch_step(0).item()
    second = tt_step(1).item(), torch_step(1).item()
    for i in range(2, ARGS.warmup + 2):
        tt_step(i)
        torch_step(i)

    if ARGS.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(ARGS.steps * 4):
            tt_step(i)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return

    def timed(step) -> float:
        start = time.perf_counter()
        for i in range(ARGS.steps):
            step(i)
        return (time.perf_counter() - start) / ARGS.steps * 1e3

    tt_ms, torch_ms = [], []
    for _ in range(ARGS.rounds):
        tt_ms.append(timed(tt_step))
        torch_ms.append(timed(torch_step))
    ours, theirs = statistics.median(tt_ms), statistics.median(torch_ms)
    ratios = sorted(a / b for a, b in zip(tt_ms, torch_ms))

    prompt = np.zeros(1, dtype=np.int64)
    start = time.perf_counter()
    generate(model, prompt, ARGS.new_tokens, temperature=1.0, seed=0)
    tt_tps = ARGS.new_tokens / (time.perf_counter() - start)
    net.eval()
    start = time.perf_counter()
    torch_generate(net, torch.zeros((1, 1), dtype=torch.long), ARGS.new_tokens, torch.Generator().manual_seed(0))
    torch_tps = ARGS.new_tokens / (time.perf_counter() - start)

    print(f"GPT {LAYERS} layers x {HEADS} heads x {WIDTH}, context {BLOCK}, vocab {VOCAB}, batch {BATCH}, AdamW; "
          f"threads={ARGS.threads} (BLAS and torch)")
    print(f"losses of steps 1, 2: tt {first[0]:.5f}, {second[0]:.5f}  torch {first[1]:.5f}, {second[1]:.5f}")
    print(f"tt    {ours:8.2f} ms/step (median of {ARGS.rounds} rounds x {ARGS.steps} steps)")
    print(f"torch {theirs:8.2f} ms/step")
    print(f"ratio tt/torch = {ours / theirs:.2f}x  (per-round ratios {ratios[0]:.2f}..{ratios[-1]:.2f}; target <= 1.5x)")
    print(f"generation, no KV cache, {ARGS.new_tokens} tokens: tt {tt_tps:.0f} tokens/s, torch {torch_tps:.0f} tokens/s "
          f"(ratio {torch_tps / tt_tps:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())

"""Training-step speed of a small GPT in TinyTorch vs PyTorch (CPU), in one run, plus
generation speed.

The model is nanoGPT's CPU configuration: 4 layers, 4 heads, embedding 128, context 64,
vocabulary 65 (Tiny Shakespeare's characters), tied input/output embeddings, batch 32. One
step = forward + cross-entropy + backward + AdamW step on random ids, with the same initial
weights on both sides (the first losses agree). Both libraries use the same number of
threads. Rounds alternate tt and torch so that machine noise hits both alike; the result is
the median ms per step of each and their ratio. Generation: ms per token of sampling 100
tokens from a one-token prompt without a KV cache (the context window is recomputed each
token), in alternating rounds as well; its comparison is printed first, so the last line is
the training step's ratio.

    python benchmarks/gpt_vs_torch.py [--threads 1] [--steps 5] [--rounds 7] [--generation-rounds 15]
"""

from __future__ import annotations

import sys

import _harness as bench


def parse():
    parser = bench.parser(__doc__)
    bench.add_round_options(parser, steps=5, rounds=7, warmup=3)
    parser.add_argument("--new-tokens", type=int, default=100, help="tokens generated per generation round")
    parser.add_argument("--generation-rounds", type=int, default=15,
                        help="timed generation rounds per library (a round is one generation: short, so many)")
    return parser.parse_args()


ARGS = parse()
bench.use_threads(ARGS.threads)  # before NumPy and torch load their BLAS

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


def per_token(loss_fn):
    """``loss_fn`` on (batch, block, vocab) logits and (batch, block) ids, flattened to tokens."""
    return lambda logits, ids: loss_fn(logits.reshape(-1, VOCAB), ids.reshape(-1))


@torch.no_grad()
def torch_generate(net, prompt, new_tokens, generator):
    ids = prompt
    for _ in range(new_tokens):
        logits = net(ids[:, -BLOCK:])[:, -1, :]
        probs = torch.softmax(logits, dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def main() -> None:
    tt.manual_seed(0)
    rng = np.random.default_rng(0)
    data = [(rng.integers(0, VOCAB, (BATCH, BLOCK)), rng.integers(0, VOCAB, (BATCH, BLOCK))) for _ in range(4)]
    torch_data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]

    model = GPT(VOCAB, BLOCK, num_layers=LAYERS, num_heads=HEADS, embed_dim=WIDTH)
    net = bench.copy_weights(model, TorchGPT())
    opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    torch_opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.1)
    tt_step = bench.training_step(model, per_token(CrossEntropyLoss()), data, opt)
    torch_step = bench.training_step(net, per_token(nn.CrossEntropyLoss()), torch_data, torch_opt)

    first = tt_step(0).item(), torch_step(0).item()
    second = tt_step(1).item(), torch_step(1).item()
    bench.warm_up([tt_step, torch_step], ARGS.warmup, start=2)

    if ARGS.profile:
        bench.profile(tt_step, ARGS.steps * 4, lines=30)
        return

    result = bench.interleaved({"tt": tt_step, "torch": torch_step}, rounds=ARGS.rounds, steps=ARGS.steps)

    prompt, torch_prompt = np.zeros(1, dtype=np.int64), torch.zeros((1, 1), dtype=torch.long)
    net.eval()
    generation = {"tt": lambda i: generate(model, prompt, ARGS.new_tokens, temperature=1.0, seed=i),
                  "torch": lambda i: torch_generate(net, torch_prompt, ARGS.new_tokens, torch.Generator().manual_seed(i))}
    bench.warm_up(list(generation.values()), 1)
    sampled = bench.interleaved(generation, rounds=ARGS.generation_rounds)
    for name in sampled.ms:  # ms per generation of new_tokens -> ms per token (a generation step)
        sampled.ms[name] = [ms / ARGS.new_tokens for ms in sampled.ms[name]]
    sampled.steps = ARGS.new_tokens

    print(f"GPT {LAYERS} layers x {HEADS} heads x {WIDTH}, context {BLOCK}, vocab {VOCAB}, batch {BATCH}, AdamW; "
          f"{bench.threads_and_kernels()}")
    print(f"generation without a KV cache, {ARGS.new_tokens} tokens from a one-token prompt:")
    bench.print_comparison(sampled, unit="token", digits=3, target=1.0)
    print(f"training step; losses of steps 1, 2: tt {first[0]:.5f}, {second[0]:.5f}  "
          f"torch {first[1]:.5f}, {second[1]:.5f}")
    bench.print_comparison(result, unit="step", digits=2, target=1.0)


if __name__ == "__main__":
    sys.exit(main())

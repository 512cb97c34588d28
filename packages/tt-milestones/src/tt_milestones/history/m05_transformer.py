"""Milestone 05: the Transformer (Vaswani et al., 2017), built from tt-language's parts.

Three experiments:

1. **Attention proof.** Reverse a sequence of 8 digits. Output position ``t`` must copy input
   position ``7 - t``: information has to move *between* positions, which is exactly what
   attention does. A tiny transformer learns it to 100% in seconds. A model of the same size
   built from the same parts minus attention (embedding + positions + MLP blocks, each
   position processed on its own) cannot: it never sees the token it has to output, so it
   stays at chance (10% of digits, 0% of sequences).
2. **TinyTalks.** A character-level GPT learns 210 question/answer pairs (train loss must go
   below 1.5), is measured on the 45 held-out validation pairs, and answers held-out test
   questions. The checkpoint is saved; ``--chat`` loads it and opens a prompt.
3. **Tiny Shakespeare.** nanoGPT's CPU configuration (4 layers x 4 heads x 128, context 64),
   trained for a 15-minute wall-clock budget with a cosine learning-rate schedule over that
   time; target validation loss <= 1.80, and a sample of generated text.

``--quick`` runs (1) and a short TinyTalks run whose loss must fall.
"""

from __future__ import annotations

import math
import string
import time
from pathlib import Path

import numpy as np
from tt_core import Module, ModuleList, Tensor, load, save

from ..api import RunContext

CHECKPOINT = "tinytalks_gpt.npz"


def run(ctx: RunContext) -> None:
    if ctx.options.get("chat"):
        chat(ctx)
        return
    attention_proof(ctx)
    tinytalks(ctx)
    if not ctx.quick:
        shakespeare(ctx)


# ----------------------------------------------------------------------------------------
# shared pieces
# ----------------------------------------------------------------------------------------


def _optimizer(ctx: RunContext, model: Module, lr: float, weight_decay: float = 0.1):
    """AdamW with weight decay on matrices only (not on biases, norms or position tables)."""
    AdamW = ctx.component("optimizer", "AdamW")
    decay = [p for name, p in model.named_parameters() if p.ndim == 2 and "pos" not in name]
    plain = [p for name, p in model.named_parameters() if not (p.ndim == 2 and "pos" not in name)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return AdamW(groups, lr=lr, betas=(0.9, 0.99))


def _lm_loss(ctx: RunContext, model, x: np.ndarray, y: np.ndarray) -> Tensor:
    """Mean next-token cross-entropy of ``model`` on ids ``x`` against targets ``y``."""
    logits = model(x)
    return ctx.component("loss", "CrossEntropyLoss")()(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _train_step(ctx: RunContext, model, opt, x, y, lr: float) -> float:
    for group in opt.param_groups:
        group["lr"] = lr
    loss = _lm_loss(ctx, model, x, y)
    opt.zero_grad()
    loss.backward()
    ctx.component("function", "clip_grad_norm_")(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def _eval_loss(ctx: RunContext, model, ids: np.ndarray, block_size: int, batch_size: int = 64) -> float:
    """Mean next-token loss over every non-overlapping window of ``ids`` (deterministic)."""
    count = (len(ids) - 1) // block_size
    x = ids[: count * block_size].reshape(count, block_size)
    y = ids[1 : count * block_size + 1].reshape(count, block_size)
    total = 0.0
    model.eval()
    with ctx.component("function", "no_grad")():
        for start in range(0, count, batch_size):
            total += _lm_loss(ctx, model, x[start : start + batch_size], y[start : start + batch_size]).item() * len(
                x[start : start + batch_size]
            )
    model.train()
    return total / count


def _cosine(progress: float, peak: float, warmup: float = 0.05, floor: float = 0.1) -> float:
    """Linear warm-up over the first ``warmup`` of training, then cosine decay to ``floor * peak``."""
    if progress < warmup:
        return peak * progress / warmup
    t = min(1.0, (progress - warmup) / (1 - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


# ----------------------------------------------------------------------------------------
# 1. the attention proof
# ----------------------------------------------------------------------------------------

DIGITS, LENGTH = 10, 8


class SequenceModel(Module):
    """Embedding + learned positions -> blocks -> layer norm -> a digit per position.
    With ``TransformerBlock``s it is a (non-causal) transformer encoder; with ``MLPBlock``s
    every position is processed on its own."""

    def __init__(self, ctx: RunContext, blocks, width: int) -> None:
        super().__init__()
        self.embed = ctx.component("layer", "Embedding")(DIGITS, width, std=0.02)
        self.pos = ctx.component("layer", "PositionalEncoding")(LENGTH, width)
        self.blocks = ModuleList(blocks)
        self.norm = ctx.component("layer", "LayerNorm")(width)
        self.head = ctx.component("layer", "Linear")(width, DIGITS)

    def forward(self, ids, return_attention: bool = False):
        """Digit scores (B, T, DIGITS); with ``return_attention`` also each block's attention
        weights (B, heads, T, T), as ``(scores, [weights, ...])`` (transformer blocks only)."""
        x = self.pos(self.embed(ids))
        attention = []
        for block in self.blocks:
            if return_attention:
                x, weights = block(x, return_attention=True)
                attention.append(weights)
            else:
                x = block(x)
        x = self.norm(x)
        scores = self.head(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1] + (DIGITS,))
        return (scores, attention) if return_attention else scores


class MLPBlock(Module):
    """A pre-norm residual MLP block: ``x + W2 relu(W1 norm(x))``, per position."""

    def __init__(self, ctx: RunContext, width: int, hidden: int) -> None:
        super().__init__()
        Linear = ctx.component("layer", "Linear")
        self.norm = ctx.component("layer", "LayerNorm")(width)
        self.fc, self.proj = Linear(width, hidden), Linear(hidden, width)
        self.act = ctx.component("activation", "GELU")()

    def forward(self, x):
        h = self.norm(x)
        h = self.proj(self.act(self.fc(h.reshape(-1, h.shape[-1]))))
        return x + h.reshape(x.shape)


def _train_reversal(ctx: RunContext, model, steps: int, rng, advance) -> dict:
    opt = _optimizer(ctx, model, lr=3e-3, weight_decay=0.0)
    loss_fn = ctx.component("loss", "CrossEntropyLoss")()
    for step in range(steps):
        x = rng.integers(0, DIGITS, (128, LENGTH))
        for group in opt.param_groups:
            group["lr"] = _cosine(step / steps, 3e-3)
        loss = loss_fn(model(x).reshape(-1, DIGITS), x[:, ::-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        advance(loss=loss.item())
    test = np.random.default_rng(12345).integers(0, DIGITS, (2000, LENGTH))
    with ctx.component("function", "no_grad")():
        predicted = model(test).data.argmax(-1)
    right = predicted == test[:, ::-1]
    return {"digits": float(right.mean()), "sequences": float(right.all(axis=1).mean()), "loss": loss.item()}


def attention_proof(ctx: RunContext) -> None:
    ctx.log("[bold]1. Attention proof[/]: reverse 8 digits (output t = input 7 - t)")
    rng = np.random.default_rng(ctx.seed)
    width, steps = 32, 200
    TransformerBlock = ctx.component("layer", "TransformerBlock")
    transformer = SequenceModel(ctx, [TransformerBlock(width, 4, causal=False) for _ in range(2)], width)
    # an MLP block has 2w (norm) + (2w + 1) h + w parameters: pick h to match a transformer block
    block_parameters = transformer.blocks[0].num_parameters()
    mlp_hidden = math.ceil((block_parameters - 3 * width) / (2 * width + 1))
    mlp = SequenceModel(ctx, [MLPBlock(ctx, width, mlp_hidden) for _ in range(2)], width)
    ctx.configure(reversal={"length": LENGTH, "digits": DIGITS, "width": width, "layers": 2, "heads": 4, "steps": steps, "batch": 128,
                                "transformer_parameters": transformer.num_parameters(),
                                "mlp_parameters": mlp.num_parameters(), "mlp_hidden": mlp_hidden})
    results = {}
    for name, model in (("transformer", transformer), ("mlp", mlp)):
        start = time.perf_counter()
        with ctx.progress(steps, f"reversal, {name}") as advance:
            results[name] = _train_reversal(ctx, model, steps, rng, advance)
        results[name]["seconds"] = time.perf_counter() - start
        ctx.log(f"  {name} ({model.num_parameters()} parameters): {results[name]['sequences']:.1%} of sequences, "
                f"{results[name]['digits']:.1%} of digits right after {results[name]['seconds']:.1f} s")
    ctx.record("reversal_mlp_sequence_accuracy", results["mlp"]["sequences"])
    ctx.record("reversal_mlp_digit_accuracy", results["mlp"]["digits"])
    ctx.record("reversal_transformer_seconds", round(results["transformer"]["seconds"], 2))
    ctx.check("reversal_transformer_sequence_accuracy", results["transformer"]["sequences"], ">=", 1.0)
    ctx.check("reversal_mlp_digit_accuracy_below", results["mlp"]["digits"], "<", 0.5)


# ----------------------------------------------------------------------------------------
# 2. TinyTalks
# ----------------------------------------------------------------------------------------


def _qa_text(pairs) -> str:
    return "".join(f"Q: {q}\nA: {a}\n\n" for q, a in pairs)


def _answer(ctx: RunContext, model, tokenizer, question: str, max_tokens: int = 120) -> str:
    generate = ctx.component("function", "generate")
    prompt = tokenizer.encode(f"Q: {question}\nA:")
    out = generate(model, prompt, max_tokens, temperature=0, stop=int(tokenizer.encode("\n")[0]))
    return tokenizer.decode(out[len(prompt):]).strip()


def _tinytalks_tokenizer(ctx: RunContext, train_text: str):
    """Characters of the training text plus printable ASCII (so that any typed question
    encodes); anything else becomes a space."""
    alphabet = set(train_text) | set(string.ascii_letters + string.digits + string.punctuation + " \n")
    return ctx.component("tokenizer", "char")(alphabet, unknown=" ")


def tinytalks(ctx: RunContext) -> tuple:
    ctx.log("[bold]2. TinyTalks[/]: a character-level GPT learns question/answer pairs")
    dataset = ctx.component("dataset", "tinytalks")
    train_pairs, val_pairs, test_pairs = dataset("train"), dataset("val"), dataset("test")
    train_text, val_text = _qa_text(train_pairs), _qa_text(val_pairs)
    tokenizer = _tinytalks_tokenizer(ctx, train_text)
    train_ids, val_ids = tokenizer.encode(train_text), tokenizer.encode(val_text)
    if ctx.quick:
        config = {"block_size": 64, "num_layers": 2, "num_heads": 2, "embed_dim": 64}
        steps, batch, lr = 40, 16, 3e-3
    else:
        config = {"block_size": 96, "num_layers": 2, "num_heads": 4, "embed_dim": 128, "dropout": 0.1}
        steps, batch, lr = 1200, 16, 3e-3
    config["vocab_size"] = tokenizer.vocab_size
    model = ctx.component("model", "GPT")(**config)
    opt = _optimizer(ctx, model, lr)
    windows = ctx.component("function", "random_windows")
    rng = np.random.default_rng(ctx.seed)
    ctx.configure(tinytalks=dict(config, steps=steps, batch=batch, lr=lr, train_pairs=len(train_pairs),
                                 val_pairs=len(val_pairs), parameters=model.num_parameters()))
    block = config["block_size"]
    first = _eval_loss(ctx, model, train_ids, block)
    val_curve = []  # (step, held-out loss): 210 pairs are memorised long before the answers read well
    start = time.perf_counter()
    with ctx.progress(steps, "TinyTalks") as advance:
        for step in range(steps):
            x, y = windows(train_ids, block, batch, rng)
            loss = _train_step(ctx, model, opt, x, y, _cosine(step / steps, lr))
            advance(loss=loss)
            if not ctx.quick and (step + 1) % 100 == 0:
                val_curve.append((step + 1, round(_eval_loss(ctx, model, val_ids, block), 4)))
    seconds = time.perf_counter() - start
    train_loss, val_loss = _eval_loss(ctx, model, train_ids, block), _eval_loss(ctx, model, val_ids, block)
    ctx.record("tinytalks_initial_train_loss", round(first, 4))
    ctx.record("tinytalks_val_loss", round(val_loss, 4))
    ctx.record("tinytalks_train_seconds", round(seconds, 1))
    if val_curve:
        ctx.record("tinytalks_val_curve", val_curve)
        ctx.record("tinytalks_lowest_val_loss", min(val_curve, key=lambda item: item[1]))
    ctx.log(f"  train loss {first:.3f} -> {train_loss:.3f}, held-out val loss {val_loss:.3f} ({seconds:.0f} s)")
    if ctx.quick:
        ctx.check("tinytalks_train_loss_fell_by", first - train_loss, ">", 0.5)
    else:
        ctx.check("tinytalks_train_loss", train_loss, "<", 1.5)
    answers = []
    for question, expected in test_pairs[: 4 if ctx.quick else 10]:
        answer = _answer(ctx, model, tokenizer, question)
        answers.append({"question": question, "answer": answer, "reference": expected})
        ctx.log(f"  Q: {question}\n     model: {answer}\n     reference: {expected}")
    ctx.record("tinytalks_test_answers", answers)
    path = save({"config": config, "state": model.state_dict(), "tokenizer": tokenizer.to_dict()}, ctx.out / CHECKPOINT)
    ctx.log(f"  checkpoint: {path} (talk to it: tt-milestones run 05 --chat)")
    return model, tokenizer


def chat(ctx: RunContext) -> None:
    """Load the TinyTalks checkpoint (training it first if there is none) and answer
    questions typed at the prompt until end of input (Ctrl-D)."""
    path = Path(ctx.out) / CHECKPOINT
    if path.is_file():
        saved = load(path)
        model = ctx.component("model", "GPT")(**saved["config"])
        model.load_state_dict(saved["state"])
        tokenizer = ctx.component("tokenizer", "char").from_dict(saved["tokenizer"])
        ctx.log(f"loaded {path}")
    else:
        ctx.log(f"no checkpoint at {path}: training one first")
        model, tokenizer = tinytalks(ctx)
    ctx.log("Ask a question (Ctrl-D to quit).")
    while True:
        try:
            question = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            break
        if question:
            print(f"bot> {_answer(ctx, model, tokenizer, question)}")


# ----------------------------------------------------------------------------------------
# 3. Tiny Shakespeare
# ----------------------------------------------------------------------------------------


def shakespeare(ctx: RunContext, budget_s: float = 15 * 60) -> None:
    ctx.log("[bold]3. Tiny Shakespeare[/]: character-level GPT, 15 minutes of training")
    corpus = ctx.component("dataset", "tinyshakespeare")
    text = corpus()
    tokenizer = ctx.component("tokenizer", "char")(text)
    train_ids, val_ids = tokenizer.encode(corpus("train")), tokenizer.encode(corpus("val"))
    config = {"vocab_size": tokenizer.vocab_size, "block_size": 64, "num_layers": 4, "num_heads": 4, "embed_dim": 128}
    batch, lr = 16, 2e-3
    model = ctx.component("model", "GPT")(**config)
    opt = _optimizer(ctx, model, lr)
    windows = ctx.component("function", "random_windows")
    rng = np.random.default_rng(ctx.seed)
    ctx.configure(shakespeare=dict(config, batch=batch, lr=lr, budget_s=budget_s, parameters=model.num_parameters(),
                                   schedule="warm-up 5% then cosine to 10%, over wall-clock time"))
    start, step, losses = time.perf_counter(), 0, []
    with ctx.progress(int(budget_s), "Shakespeare (seconds)") as advance:
        while (elapsed := time.perf_counter() - start) < budget_s:
            x, y = windows(train_ids, config["block_size"], batch, rng)
            losses.append(_train_step(ctx, model, opt, x, y, _cosine(elapsed / budget_s, lr)))
            step += 1
            advance(int(time.perf_counter() - start) - int(elapsed), loss=float(np.mean(losses[-20:])), step=step)
    seconds = time.perf_counter() - start
    val_loss = _eval_loss(ctx, model, val_ids, config["block_size"])
    ctx.record("shakespeare_steps", step)
    ctx.record("shakespeare_train_seconds", round(seconds, 1))
    ctx.record("shakespeare_final_train_loss", round(float(np.mean(losses[-50:])), 4))
    ctx.check("shakespeare_val_loss", val_loss, "<=", 1.80)
    generate = ctx.component("function", "generate")
    sample = tokenizer.decode(generate(model, tokenizer.encode("\n"), 500, temperature=0.8, top_k=40, seed=ctx.seed))
    ctx.record("shakespeare_sample", sample)
    ctx.log(f"  {step} steps in {seconds:.0f} s, val loss {val_loss:.3f}; a sample:\n{sample}")
    save({"config": config, "state": model.state_dict(), "tokenizer": tokenizer.to_dict()},
         ctx.out / "shakespeare_gpt.npz")
    fig, ax = ctx.figure()
    ax.plot(np.convolve(losses, np.ones(20) / 20, mode="valid"))
    ax.set(xlabel="step", ylabel="training loss (20-step mean)", title="Tiny Shakespeare, character level")
    ctx.save_figure(fig, "shakespeare_loss.png", "Tiny Shakespeare: the training loss per step (mean of 20 steps) "
                    "over the 15-minute budget.")

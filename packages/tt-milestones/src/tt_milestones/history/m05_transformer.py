"""Milestone 05: the Transformer (Vaswani et al., 2017), built from tt-language's parts.

Three experiments:

1. **Attention proof.** Reverse a sequence of 8 digits. Output position ``t`` must copy input
   position ``7 - t``: information has to move *between* positions, which is exactly what
   attention does. A tiny transformer learns it to 100% in seconds. A model of the same size
   built from the same parts minus attention (embedding + positions + MLP blocks, each
   position processed on its own) cannot: it never sees the token it has to output, so it
   stays at chance (10% of digits, 0% of sequences).
2. **TinyTalks.** A character-level GPT learns 210 question/answer pairs (train loss must go
   below 1.5), measured every 100 steps on the 45 held-out validation pairs. 210 pairs are
   memorised long before training ends, so the held-out loss bottoms out and rises again:
   the run keeps the weights with the lowest held-out loss, saves them as the checkpoint,
   answers held-out test questions with them and reports their step and losses beside the
   final ones. ``--chat`` loads the checkpoint and opens a prompt.
3. **Tiny Shakespeare.** nanoGPT's CPU configuration (4 layers x 4 heads x 128, context 64),
   batch 32, trained for a 15-minute wall-clock budget with a cosine learning-rate schedule
   over that time, down to 30% of its peak. The weights evaluated, sampled and saved are an exponential moving average
   of the trained ones (tt-learn's ``WeightAverage``, decay 0.99 every 10 steps); the final
   weights' loss is reported beside theirs. Target validation loss <= 1.50 (a full run here:
   1.490 averaged, 1.544 final), and a sample of generated text. The held-out loss is measured
   on a fixed sample of validation windows (spread over the split) every 30 seconds, inside the
   budget, and drawn beside the training loss.

``--quick`` runs (1) and a short TinyTalks run whose loss must fall.

Every training loop here is the milestone's own; each records the gradient flow with tt-learn's
``GradientWatch`` (the gradient norm and update-to-weight ratio of every parameter, averaged
over each tenth of training, or every 200 steps for Shakespeare, measured there on every 10th
step), drawn in the report for the
reversal transformer, TinyTalks and Shakespeare.

Besides the checks, the report shows what attention learned (each head's weights on one
reversal sequence, where the anti-diagonal ``output t <- input 7 - t`` appears; the last
layer's heads on a TinyTalks pair and on a line of Shakespeare), the systems figures of every
model trained, and how the time and memory of one attention layer grow with the context
length against those of the position-wise MLP (64 to 512 positions; 256 in ``--quick``).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import string
import time
from pathlib import Path

import numpy as np
from tt_core import Module, ModuleList, Tensor, load, save
from tt_core.errors import CheckpointError, TinyTorchError

from ..api import RunContext
from ..systems import median_seconds, peak_bytes, record_systems, size
from .gradient_flow import report_gradient_flow

CHECKPOINT = "tinytalks_gpt.npz"
SHAKESPEARE_EVAL_SECONDS = 30.0  # the held-out loss is measured this often during the 15 minutes ...
SHAKESPEARE_EVAL_WINDOWS = 256  # ... on this many validation windows of the context length
SHAKESPEARE_WATCH_EVERY = 10  # the gradient statistics sample every 10th step: measuring one costs ~6% of it
SHAKESPEARE_AVERAGE = {"decay": 0.99, "every": 10}  # over 15 minutes, WeightAverage's early decay
# (1 + n)/(10 + n) stays below 0.99: the average weighs about the last tenth of the steps
SHAKESPEARE_LR_FLOOR = 0.3  # the cosine ends at 30% of the peak: the average smooths the noise a higher rate leaves
CHAT_ENTRIES = {
    "config": "the GPT's constructor arguments",
    "state": "its weights, model.state_dict()",
    "tokenizer": "the tokenizer, tokenizer.to_dict()",
}
"""What a TinyTalks chat checkpoint holds (each a dict), and what each entry is."""


def data_needed(ctx: RunContext) -> tuple[str, ...]:
    """The data sets this run reads: TinyTalks (not for a chat with a saved checkpoint), and
    Tiny Shakespeare for a full run."""
    if ctx.options.get("chat"):
        return () if (Path(ctx.out) / CHECKPOINT).is_file() else ("tinytalks",)
    return ("tinytalks",) if ctx.quick else ("tinytalks", "tinyshakespeare")


def run(ctx: RunContext) -> None:
    # every data file the run reads is checked (or downloaded) before the first training step,
    # and all that are missing or corrupt are named at once
    needed = data_needed(ctx)
    if needed:
        ctx.component("function", "require_data")(*needed)
    if ctx.options.get("chat"):
        chat(ctx)
        return
    with ctx.phase("reversal"):
        attention_proof(ctx)
    with ctx.phase("tinytalks"):
        tinytalks(ctx)
    if not ctx.quick:
        with ctx.phase("shakespeare"):
            shakespeare(ctx)
    with ctx.phase("context_scaling"):
        context_scaling(ctx, CONTEXT_LENGTHS[:3] if ctx.quick else CONTEXT_LENGTHS)


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


def _train_step(ctx: RunContext, model, opt, x, y, lr: float, watch) -> float:
    """One clipped AdamW step at learning rate ``lr``, measured by ``watch`` (a GradientWatch;
    None: not measured)."""
    for group in opt.param_groups:
        group["lr"] = lr
    loss = _lm_loss(ctx, model, x, y)
    opt.zero_grad()
    loss.backward()
    with watch.step() if watch is not None else contextlib.nullcontext():
        ctx.component("function", "clip_grad_norm_")(model.parameters(), 1.0)
        opt.step()
    return loss.item()


def _close_period(watch, step: int, every: int) -> None:
    """End ``watch``'s period after every ``every`` steps, recorded under the step count."""
    if (step + 1) % every == 0:
        watch.end_epoch(step + 1)


def _eval_loss(ctx: RunContext, model, ids: np.ndarray, block_size: int, batch_size: int = 64,
               windows: int | None = None) -> float:
    """Mean next-token loss over the non-overlapping windows of ``ids`` (deterministic): every
    one, or ``windows`` of them spread evenly over the text."""
    count = (len(ids) - 1) // block_size
    x = ids[: count * block_size].reshape(count, block_size)
    y = ids[1 : count * block_size + 1].reshape(count, block_size)
    if windows is not None and windows < count:
        chosen = np.linspace(0, count - 1, windows).astype(np.int64)
        x, y, count = x[chosen], y[chosen], windows
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
    watch = ctx.component("function", "GradientWatch")(model)
    started = time.perf_counter()
    for step in range(steps):
        x = rng.integers(0, DIGITS, (128, LENGTH))
        for group in opt.param_groups:
            group["lr"] = _cosine(step / steps, 3e-3)
        loss = loss_fn(model(x).reshape(-1, DIGITS), x[:, ::-1].reshape(-1))
        opt.zero_grad()
        loss.backward()
        with watch.step():
            opt.step()
        _close_period(watch, step, max(1, steps // 10))
        advance(loss=loss.item())
    step_seconds = (time.perf_counter() - started) / steps
    test = np.random.default_rng(12345).integers(0, DIGITS, (2000, LENGTH))
    with ctx.component("function", "no_grad")():
        predicted = model(test).data.argmax(-1)
    right = predicted == test[:, ::-1]
    return {"digits": float(right.mean()), "sequences": float(right.all(axis=1).mean()), "loss": loss.item(),
            "step_seconds": step_seconds, "gradients": watch.records}


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
    report_gradient_flow(ctx, "reversal_transformer", results["transformer"]["gradients"],
                         "Reversal transformer", xlabel="training step")
    ctx.record("reversal_mlp_sequence_accuracy", results["mlp"]["sequences"])
    ctx.record("reversal_mlp_digit_accuracy", results["mlp"]["digits"])
    ctx.record("reversal_transformer_seconds", round(results["transformer"]["seconds"], 2))
    ctx.check("reversal_transformer_sequence_accuracy", results["transformer"]["sequences"], ">=", 1.0)
    ctx.check("reversal_mlp_digit_accuracy_below", results["mlp"]["digits"], "<", 0.5)
    record_systems(ctx, "reversal_transformer", transformer, np.zeros((128, LENGTH), dtype=np.int64),
                   step_seconds=results["transformer"]["step_seconds"], what="reversal transformer")
    reversal_attention(ctx, transformer)


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
    every = max(1, steps // 12)
    curve = []  # {step, train_loss, val_loss} every ``every`` steps
    best = {}  # the point with the lowest held-out loss so far, and its weights
    watch = ctx.component("function", "GradientWatch")(model)
    start, losses = time.perf_counter(), []
    with ctx.progress(steps, "TinyTalks") as advance:
        for step in range(steps):
            x, y = windows(train_ids, block, batch, rng)
            losses.append(_train_step(ctx, model, opt, x, y, _cosine(step / steps, lr), watch))
            _close_period(watch, step, max(1, steps // 10))
            advance(loss=losses[-1])
            if (step + 1) % every == 0 or step + 1 == steps:
                point = {"step": step + 1, "train_loss": round(_eval_loss(ctx, model, train_ids, block), 4),
                         "val_loss": round(_eval_loss(ctx, model, val_ids, block), 4)}
                curve.append(point)
                if not best or point["val_loss"] < best["val_loss"]:  # a copy: the arrays change in place
                    best = {**point, "state": {k: np.array(v, copy=True) for k, v in model.state_dict().items()}}
    seconds = time.perf_counter() - start
    final = curve[-1]
    model.load_state_dict(best.pop("state"))
    ctx.record("tinytalks_initial_train_loss", round(first, 4))
    ctx.record("tinytalks_final", final)
    ctx.record("tinytalks_best", best)
    ctx.record("tinytalks_curve", curve)
    ctx.record("tinytalks_train_seconds", round(seconds, 1))
    report_gradient_flow(ctx, "tinytalks", watch.records, "TinyTalks GPT", xlabel="training step")
    ctx.log(f"  train loss {first:.3f} -> {final['train_loss']:.3f} after {steps} steps (held-out {final['val_loss']:.3f}, "
            f"{seconds:.0f} s); kept the weights of step {best['step']}: held-out {best['val_loss']:.3f}, "
            f"train {best['train_loss']:.3f}")
    plot_loss_curves(ctx, "tinytalks", losses, curve, best, "TinyTalks, character level", "held-out pairs")
    if ctx.quick:
        ctx.check("tinytalks_train_loss_fell_by", first - final["train_loss"], ">", 0.5)
    else:
        ctx.check("tinytalks_train_loss", final["train_loss"], "<", 1.5)
    answers = []
    for question, expected in test_pairs[: 4 if ctx.quick else 10]:
        answer = _answer(ctx, model, tokenizer, question)
        answers.append({"question": question, "answer": answer, "reference": expected})
        ctx.log(f"  Q: {question}\n     model: {answer}\n     reference: {expected}")
    ctx.record("tinytalks_test_answers", answers)
    example, _ = windows(train_ids, block, batch, np.random.default_rng(0))
    record_systems(ctx, "tinytalks_gpt", model, example, step_seconds=seconds / steps, what="TinyTalks GPT")
    text_attention(ctx, "tinytalks", model, tokenizer, _qa_text(test_pairs[:1])[:block].rstrip("\n"))
    path = save({"config": config, "state": model.state_dict(), "tokenizer": tokenizer.to_dict()}, ctx.out / CHECKPOINT)
    ctx.log(f"  checkpoint: {path} (talk to it: tt-milestones run 05 --chat)")
    return model, tokenizer


def load_chat_checkpoint(path: Path) -> dict:
    """The TinyTalks checkpoint at ``path``, checked before anything is built from it.

    Returns:
        A dict with the entries of :data:`CHAT_ENTRIES` (``config``, ``state``, ``tokenizer``).

    Raises:
        CheckpointError: the file is not a TinyTorch checkpoint, or it lacks one of those
            entries or holds one that is not a dict; the message names every such entry and
            how to make a new checkpoint.
    """
    saved = load(path)
    remedy = "delete it (or choose another --out) and run `tt-milestones run 05 --chat` to train and save a new one"
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} is not a TinyTalks chat checkpoint (it holds a {type(saved).__name__}, not a "
                              f"dict with {', '.join(CHAT_ENTRIES)}): {remedy}")
    missing = [f"{key} ({meaning})" for key, meaning in CHAT_ENTRIES.items() if key not in saved]
    not_dicts = [f"{key} (a {type(saved[key]).__name__})" for key in CHAT_ENTRIES
                 if key in saved and not isinstance(saved[key], dict)]
    if missing or not_dicts:
        problems = ([f"it lacks {', '.join(missing)}"] if missing else []) + (
            [f"these entries are not dicts: {', '.join(not_dicts)}"] if not_dicts else [])
        raise CheckpointError(f"{path} is not a complete TinyTalks chat checkpoint: {'; '.join(problems)}; {remedy}")
    return saved


def chat(ctx: RunContext) -> None:
    """Load the TinyTalks checkpoint (training it first if there is none) and answer
    questions typed at the prompt until end of input (Ctrl-D). A question that cannot be
    answered (text the tokenizer refuses) gets the reason, and the chat goes on.

    Raises:
        CheckpointError: the checkpoint is incomplete (see :func:`load_chat_checkpoint`), or
            its ``config``, weights or tokenizer do not fit (the message names the file and
            how to make a new one).
    """
    path = Path(ctx.out) / CHECKPOINT
    if path.is_file():
        saved = load_chat_checkpoint(path)
        remedy = "delete the checkpoint and run `tt-milestones run 05 --chat` to train and save a new one"
        try:
            model = ctx.component("model", "GPT")(**saved["config"])
        except (TypeError, TinyTorchError) as error:  # an unknown argument, or a value the GPT refuses
            raise CheckpointError(f"the config in {path} does not fit the GPT ({error}): {remedy}") from None
        try:
            model.load_state_dict(saved["state"])
            tokenizer = ctx.component("tokenizer", "char").from_dict(saved["tokenizer"])
        except TinyTorchError as error:
            raise CheckpointError(f"{path} does not fit the GPT its config describes ({error}): {remedy}") from None
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
        if not question:
            continue
        try:
            print(f"bot> {_answer(ctx, model, tokenizer, question)}")
        except TinyTorchError as error:  # e.g. text that is not valid Unicode: say so, keep chatting
            print(f"bot> (cannot answer that: {error})")


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
    batch, lr = 32, 4e-3
    model = ctx.component("model", "GPT")(**config)
    opt = _optimizer(ctx, model, lr)
    windows = ctx.component("function", "random_windows")
    rng = np.random.default_rng(ctx.seed)
    ctx.configure(shakespeare=dict(config, batch=batch, lr=lr, budget_s=budget_s, parameters=model.num_parameters(),
                                   schedule=f"warm-up 5% then cosine to {SHAKESPEARE_LR_FLOOR:.0%}, over wall-clock time",
                                   weight_average=SHAKESPEARE_AVERAGE))
    watch = ctx.component("function", "GradientWatch")(model)
    average = ctx.component("function", "WeightAverage")(model, **SHAKESPEARE_AVERAGE)
    start, step, losses, curve, next_eval = time.perf_counter(), 0, [], [], 0.0
    with ctx.progress(int(budget_s), "Shakespeare (seconds)") as advance:
        while (elapsed := time.perf_counter() - start) < budget_s:
            x, y = windows(train_ids, config["block_size"], batch, rng)
            measured = watch if step % SHAKESPEARE_WATCH_EVERY == 0 else None
            losses.append(_train_step(ctx, model, opt, x, y, _cosine(elapsed / budget_s, lr, floor=SHAKESPEARE_LR_FLOOR),
                                       measured))
            _close_period(watch, step, 200)
            average.update()
            step += 1
            if elapsed >= next_eval:  # a fixed sample of held-out windows, timed inside the budget
                curve.append({"step": step, "val_loss": round(_eval_loss(ctx, model, val_ids, config["block_size"],
                                                                         windows=SHAKESPEARE_EVAL_WINDOWS), 4)})
                next_eval += SHAKESPEARE_EVAL_SECONDS
            advance(int(time.perf_counter() - start) - int(elapsed), loss=float(np.mean(losses[-20:])), step=step)
    seconds = time.perf_counter() - start
    if watch.steps:  # the steps after the last full period of 200
        watch.end_epoch(step)
    final_loss = _eval_loss(ctx, model, val_ids, config["block_size"])  # the whole validation split
    average.copy_to()  # from here on the model holds the averaged weights
    val_loss = _eval_loss(ctx, model, val_ids, config["block_size"])
    ctx.record("shakespeare_steps", step)
    ctx.record("shakespeare_train_seconds", round(seconds, 1))
    ctx.record("shakespeare_final_train_loss", round(float(np.mean(losses[-50:])), 4))
    ctx.record("shakespeare_final_weights_val_loss", round(final_loss, 4))
    curve.append({"step": step, "val_loss": round(final_loss, 4)})
    ctx.record("shakespeare_val_curve", curve)
    report_gradient_flow(ctx, "shakespeare", watch.records, "Tiny Shakespeare GPT", xlabel="training step")
    ctx.check("shakespeare_val_loss", val_loss, "<=", 1.50)
    generate = ctx.component("function", "generate")
    sample = tokenizer.decode(generate(model, tokenizer.encode("\n"), 500, temperature=0.8, top_k=40, seed=ctx.seed))
    ctx.record("shakespeare_sample", sample)
    example, _ = windows(train_ids, config["block_size"], batch, np.random.default_rng(0))
    record_systems(ctx, "shakespeare_gpt", model, example, step_seconds=seconds / max(step, 1), what="Shakespeare GPT")
    val_text = corpus("val")
    line_start = val_text.index("\n") + 1
    text_attention(ctx, "shakespeare", model, tokenizer, val_text[line_start:line_start + config["block_size"]])
    ctx.log(f"  {step} steps in {seconds:.0f} s, val loss {val_loss:.3f} with the averaged weights "
            f"({final_loss:.3f} with the final ones); a sample:\n{sample}")
    save({"config": config, "state": model.state_dict(), "tokenizer": tokenizer.to_dict()},
         ctx.out / "shakespeare_gpt.npz")
    kept = {"step": step, "val_loss": val_loss, "why": "their moving average"}
    plot_loss_curves(ctx, "shakespeare", losses, curve, kept, "Tiny Shakespeare, character level",
                     f"validation ({SHAKESPEARE_EVAL_WINDOWS} windows spread over it every "
                     f"{SHAKESPEARE_EVAL_SECONDS:g} s; all of it at the end)")


def plot_loss_curves(ctx: RunContext, name: str, losses: list[float], curve: list[dict], best: dict | None,
                     title: str, held_out: str) -> None:
    """The training loss of every step (20-step mean) with the held-out loss of ``curve``'s
    points beside it (and their loss on the whole training text, when measured); ``best``
    marks the kept weights (``best["why"]`` says which, default the lowest held-out loss)."""
    fig, ax = ctx.figure(figsize=(8, 4.5))
    smooth = min(20, len(losses))
    ax.plot(np.arange(smooth, len(losses) + 1), np.convolve(losses, np.ones(smooth) / smooth, mode="valid"),
            color="tab:blue", alpha=0.6, label=f"training batches ({smooth}-step mean)")
    steps = [point["step"] for point in curve]
    if "train_loss" in curve[0]:
        ax.plot(steps, [point["train_loss"] for point in curve], marker="o", color="tab:blue", label="training text")
    ax.plot(steps, [point["val_loss"] for point in curve], marker="o", color="tab:orange", label=held_out)
    if best is not None:
        ax.axvline(best["step"], color="grey", linestyle="--", linewidth=0.8)
        ax.plot(best["step"], best["val_loss"], marker="*", markersize=11, color="tab:red", linestyle="none")
        ax.annotate(f"kept: step {best['step']}, held-out {best['val_loss']:.3f}", (best["step"], best["val_loss"]),
                    textcoords="offset points", xytext=(-6, 10), ha="right", fontsize=8)
    ax.set(xlabel="step", ylabel="cross-entropy (nats per character)", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    kept = f" The dashed line marks the weights kept ({best.get('why', 'lowest held-out loss')})." if best else ""
    ctx.save_figure(fig, f"{name}_loss.png", f"{title}: the training loss per step beside the held-out loss "
                    f"({held_out}).{kept}")


# ----------------------------------------------------------------------------------------
# 4. what attention learned, and what it costs
# ----------------------------------------------------------------------------------------

CONTEXT_LENGTHS = (64, 128, 256, 512)


def _returns_attention(module) -> bool:
    """Whether ``module``'s forward takes ``return_attention`` (a learner's layer may not)."""
    try:
        return "return_attention" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def reversal_attention(ctx: RunContext, model: SequenceModel) -> None:
    """Every head's attention weights on one reversal sequence (digits all different, so each
    key is easy to read), and the share of queries whose most-attended key is the reversed
    position (over 200 test sequences), per layer and head. Records ``reversal_attention``
    and draws ``reversal_attention.png``."""
    if not _returns_attention(model.blocks[0]):
        ctx.log("  [yellow]attention maps skipped: this TransformerBlock's forward takes no return_attention[/]")
        return
    sequence = np.random.default_rng(ctx.seed).permutation(DIGITS)[:LENGTH][None, :]
    test = np.random.default_rng(54321).integers(0, DIGITS, (200, LENGTH))
    reversed_position = np.arange(LENGTH)[::-1]
    model.eval()
    with ctx.component("function", "no_grad")():
        _, maps = model(sequence, return_attention=True)
        _, test_maps = model(test, return_attention=True)
    model.train()
    shares = [(np.asarray(w).argmax(-1) == reversed_position).mean(axis=(0, 2)).round(4).tolist() for w in test_maps]
    ctx.record("reversal_attention", {
        "sequence": sequence[0].tolist(),
        "weights": [np.asarray(w)[0].round(4).tolist() for w in maps],  # [layer][head][query][key]
        "reversed_key_share": shares,  # [layer][head]: share of queries whose top key is 7 - t
    })
    for layer, share in enumerate(shares):
        ctx.log(f"  layer {layer}: queries attending most to the reversed position, per head: "
                + ", ".join(f"{s:.0%}" for s in share))
    weights = np.stack([np.asarray(w)[0] for w in maps])  # (layers, heads, T, T)
    layers, heads = weights.shape[:2]
    fig, axes = ctx.figure(layers, heads, figsize=(2.6 * heads, 2.7 * layers + 0.5), squeeze=False)
    digits = [str(d) for d in sequence[0]]
    for (layer, head), ax in np.ndenumerate(axes):
        image = ax.imshow(weights[layer, head], cmap="magma", vmin=0, vmax=1)
        ax.plot(reversed_position, np.arange(LENGTH), ls=":", color="cyan", lw=0.8)
        ax.set_xticks(range(LENGTH), digits, fontsize=7)
        ax.set_yticks(range(LENGTH), range(LENGTH), fontsize=7)
        ax.set_title(f"layer {layer}, head {head}: {shares[layer][head]:.0%}", fontsize=8)
        if head == 0:
            ax.set_ylabel("output position (query)", fontsize=7)
        if layer == layers - 1:
            ax.set_xlabel("input digit (key)", fontsize=7)
        if head == heads - 1:
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    fig.suptitle(f"Reversal: attention of every head on {' '.join(digits)} (dotted: the reversed position; "
                 "%: queries whose top key is it, over 200 sequences)", fontsize=9)
    ctx.save_figure(fig, "reversal_attention.png", "Each head's attention weights (rows: output positions, "
                    "columns: input digits) on one sequence after training on reversal; the dotted anti-diagonal "
                    "is the reversed position the output must copy, with each head's share of queries that attend "
                    "most to it.")


def text_attention(ctx: RunContext, name: str, model, tokenizer, text: str) -> None:
    """The attention weights of every head of ``model``'s last block on ``text`` (causal, so
    only the lower triangle is used), as ``<name>_attention.png``."""
    if not _returns_attention(model):
        ctx.log(f"  [yellow]{name} attention maps skipped: this GPT's forward takes no return_attention[/]")
        return
    ids = np.asarray(tokenizer.encode(text))[None, :]
    model.eval()
    with ctx.component("function", "no_grad")():
        _, attention = model(ids, return_attention=True)
    model.train()
    weights = np.asarray(attention[-1])[0]  # (heads, T, T)
    heads, length = weights.shape[0], weights.shape[1]
    labels = [tokenizer.decode([int(i)]).replace("\n", "↵").replace(" ", "␣") for i in ids[0]]
    cols = min(heads, 2)
    rows = -(-heads // cols)
    fig, axes = ctx.figure(rows, cols, figsize=(6.2 * cols, 6.2 * rows), squeeze=False)
    for ax in axes.ravel()[heads:]:
        ax.axis("off")
    fontsize = 5 if length > 40 else 7
    from matplotlib.colors import PowerNorm

    for head, ax in enumerate(axes.ravel()[:heads]):
        # a square-root colour scale: the few strong weights do not hide the many small ones
        ax.imshow(weights[head], cmap="magma", norm=PowerNorm(0.5, vmin=0, vmax=float(weights[head].max()) or 1.0))
        ax.set_xticks(range(length), labels, fontsize=fontsize)
        ax.set_yticks(range(length), labels, fontsize=fontsize)
        ax.set(title=f"{name}: last layer, head {head}", xlabel="attended character (key)",
               ylabel="reading position (query)")
    ctx.record(f"{name}_attention_text", text)
    ctx.save_figure(fig, f"{name}_attention.png", f"{name}: the attention weights of each head of the GPT's last "
                    f"layer on a {length}-character sample (row: the position reading, column: the earlier "
                    "character it attends to; brighter is more attention, on a square-root scale).")


def context_scaling(ctx: RunContext, lengths: tuple[int, ...], width: int = 128, heads: int = 4,
                    batch: int = 4, repeats: int = 5) -> list[dict]:
    """Time and peak memory of one forward pass (no graph) of one causal attention layer and
    one position-wise MLP block (hidden 4 x width) at each context length. Attention compares
    every position with every other (T^2 scores per head); the MLP handles each position on its
    own (T rows). Records ``context_scaling`` and draws ``context_scaling.png``."""
    rng = np.random.default_rng(ctx.seed)
    layers = {"attention": ctx.component("layer", "MultiHeadAttention")(width, heads, causal=True),
              "MLP": MLPBlock(ctx, width, 4 * width)}
    rows = []
    with ctx.component("function", "no_grad")():
        for length in lengths:
            x = Tensor(rng.standard_normal((batch, length, width)).astype(np.float32))
            row = {"length": length}
            for name, layer in layers.items():
                forward = lambda layer=layer, x=x: layer(x)
                row[f"{name}_ms"] = round(1e3 * median_seconds(forward, repeats), 4)
                row[f"{name}_bytes"] = peak_bytes(forward)
            rows.append(row)
    ctx.record("context_scaling", {"width": width, "heads": heads, "batch": batch, "rows": rows})
    first, last = rows[0], rows[-1]
    grow = last["length"] / first["length"]
    ctx.log(f"  context {first['length']} -> {last['length']} ({grow:g}x): attention {last['attention_ms'] / first['attention_ms']:.1f}x "
            f"the time, {last['attention_bytes'] / max(first['attention_bytes'], 1):.1f}x the memory; the MLP "
            f"{last['MLP_ms'] / first['MLP_ms']:.1f}x and {last['MLP_bytes'] / max(first['MLP_bytes'], 1):.1f}x")
    fig, (time_ax, memory_ax) = ctx.figure(1, 2, figsize=(11, 4.2))
    for name, colour in (("attention", "tab:red"), ("MLP", "tab:blue")):
        time_ax.plot(lengths, [r[f"{name}_ms"] for r in rows], marker="o", color=colour, label=name)
        memory_ax.plot(lengths, [r[f"{name}_bytes"] / 2**20 for r in rows], marker="o", color=colour, label=name)
    scale = np.asarray(lengths, dtype=float) / lengths[0]
    for ax, key in ((time_ax, "ms"), (memory_ax, "bytes")):  # guides for the slopes of T and T^2
        unit = 1.0 if key == "ms" else 2**20
        ax.plot(lengths, rows[0][f"MLP_{key}"] / unit * scale, ls="--", lw=0.8, color="grey", label="∝ T")
        ax.plot(lengths, rows[0][f"attention_{key}"] / unit * scale**2, ls=":", lw=0.8, color="grey", label="∝ T²")
    time_ax.set(ylabel="ms per forward pass", title="time of one layer's forward pass")
    memory_ax.set(ylabel="peak MB allocated", title="memory of one layer's forward pass")
    for ax in (time_ax, memory_ax):
        ax.set(xscale="log", yscale="log", xlabel="context length (positions)")
        ax.set_xticks(lengths, [str(n) for n in lengths])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Attention ({heads} heads) against the position-wise MLP, width {width}, batch {batch} "
                 f"(peak at the longest context: {size(last['attention_bytes'])} vs {size(last['MLP_bytes'])})",
                 fontsize=9)
    ctx.save_figure(fig, "context_scaling.png", "Measured time and peak memory of one forward pass of a causal "
                    f"attention layer and of a position-wise MLP block (width {width}, batch {batch}) at context "
                    f"lengths {', '.join(map(str, lengths))} (log-log, with grey guides growing as T and T²): attention's "
                    "grow with the square of the length once its T x T scores dominate, the MLP's in proportion to it.")
    return rows

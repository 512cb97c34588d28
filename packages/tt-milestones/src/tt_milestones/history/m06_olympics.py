"""Milestone 06: the Torch Olympics (2018), where every speed and size claim is measured.

MLPerf (2018) made machine-learning systems compete on measured, reproducible benchmarks
instead of claims. This run does the same for the models of the earlier milestones, on this
machine, in one process:

1. **Profile** the MLP, the CNN and a GPT: parameters, FLOPs, activation memory and time per
   layer (tables in the log, bar charts as PNG).
2. **Compress** the trained MLP (milestone 03) and CNN (milestone 04) as Deep Compression
   (2016) did: magnitude pruning while fine-tuning (and BatchNorm folding), weight sharing by
   a per-layer k-means codebook (16 centroids for the MLP, 32 for the CNN), and entropy
   coding of the index gaps and codes (LZMA). Targets: the file on disk >= 30x (MLP) and
   >= 16x (CNN) smaller than float32, with the test accuracy of the model loaded back from
   that file <= 1 point lower. The report records the bytes and accuracy of each stage.
   ``--quick`` (TinyDigits' 64-pixel inputs, a LeNet of 20 k parameters) aims at >= 16x and
   >= 12x: on such small models biases, codebooks and headers weigh more. A smaller
   student trained by knowledge distillation is a further entry.
3. **KV cache**: greedy generation with and without the cache must give the same tokens, by
   length 64/128/256/512, two cached paths against tt-language's ``generate`` recomputing the
   context: the GPT's own cached path (``generate(..., cache=KVCache(n))``, memoization
   alone) and tt-perf's fused ``CachedDecoder`` (the same cache, layer norms folded, no
   Tensors). Both are recorded; the fused one must be >= 40x faster at 512 new tokens.
4. **Cache and batching together**: 16 prompts of different lengths at once (prompts packed
   into one matrix, then left padding + attention mask), cached, against uncached generation
   one prompt at a time (its tokens/s measured on the first 4 prompts): >= 12x the
   throughput at 64 and at 512 new tokens (about 35x measured at 64 on a loaded 2-core CPU),
   the same tokens. Batching alone (both cached, about 3.4x at 64) is recorded and logged
   without a target: what a batch shares is the reading of the weights and the Python work
   of a step; what it cannot share is each sequence's prompt and each sequence's attention
   over its own cache, which grows with length, so the ratio is bound by the hardware.
5. **Acceleration**, one optimisation at a time, each with its speed-up and an output check.
6. **Olympics scorecard**: float32 baseline against the optimised submissions (latency,
   memory, compression, accuracy, all-around), as JSON and PNG.

The machine this runs on may be shared: BLAS runs single-threaded (when threadpoolctl is
installed), and the generation ratios compare CPU times (see ``tt_perf.timing``).

The networks are those of milestones 03 (MNIST MLP 784-512-256-10) and 04 (the CIFAR-10
CNN), built by those milestones' own functions. Their trained weights are used when their
runs left them beside this run's folder (``03-mlp/mnist_mlp.npz``, ``04-cnn/cifar10_cnn.npz``:
state dicts); otherwise this run trains them itself, the CNN narrower and with a short budget
(the report says which).
``--quick`` uses the 8x8 TinyDigits for both and a small GPT: seconds, for CI.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tt_core import load, save

from ..api import RunContext
from ..systems import record_systems
from . import m03_mlp, m04_cnn

# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------

QUICK = {
    "task": "tinydigits", "mlp_hidden": (256, 256), "mlp_dropout": 0.0, "mlp_epochs": 15, "mlp_lr": 2e-3,
    "cnn_widths": "LeNet", "cnn_epochs": 15, "cnn_lr": 3e-3, "batch_size": 32, "sparsity": {"mlp": 0.85, "cnn": 0.80},
    "clusters": {"mlp": 16, "cnn": 32}, "size_ratio": {"mlp": 16.0, "cnn": 12.0}, "finetune_steps": {"mlp": 500, "cnn": 800},
    "prune_every": 10, "finetune_lr": 1e-3, "student_hidden": (32,),
    "student_epochs": 15,
    "gpt": {"vocab_size": 65, "block_size": 160, "num_layers": 2, "num_heads": 4, "embed_dim": 64}, "prompt": 32,
    "lengths": (32, 64, 128), "batch_prompts": 16, "batch_new_tokens": (32, 64, 128), "combined_check_tokens": (64, 128),
    "uncached_prompts": 2, "kv_target": 4.0, "combined_target": 4.0, "repeats": 1,
}
FULL = {
    "task": "mnist", "mlp_hidden": m03_mlp.MNIST.hidden, "mlp_dropout": m03_mlp.MNIST.dropout, "mlp_epochs": 5,
    "mlp_lr": m03_mlp.MNIST.lr, "cnn_widths": (16, 32, 64, 128), "cnn_epochs": 5, "cnn_lr": 2e-3, "batch_size": 128,
    "sparsity": {"mlp": 0.92, "cnn": 0.85}, "clusters": {"mlp": 16, "cnn": 32}, "size_ratio": {"mlp": 30.0, "cnn": 16.0},
    "finetune_steps": {"mlp": 3000, "cnn": 1000}, "prune_every": 50, "finetune_lr": 3e-4,
    "student_hidden": (64,), "student_epochs": 3,
    "gpt": {"vocab_size": 65, "block_size": 576, "num_layers": 4, "num_heads": 4, "embed_dim": 128}, "prompt": 64,
    "lengths": (64, 128, 256, 512), "batch_prompts": 16, "batch_new_tokens": (64, 128, 256, 512),
    "combined_check_tokens": (64, 512), "uncached_prompts": 4, "kv_target": 40.0, "combined_target": 12.0, "repeats": 2,
}


# ----------------------------------------------------------------------------------------
# Data and models
# ----------------------------------------------------------------------------------------


def load_task(ctx: RunContext, name: str):
    """(train_x, train_y, test_x, test_y): float32 NCHW images in [0, 1] (as milestones 03
    and 04 feed them; CIFAR-10 also normalised per channel) and int64 labels."""
    source = ctx.component("dataset", name)
    arrays = [source.load_arrays(split) for split in ("train", "test")]
    peak = 16.0 if name == "tinydigits" else 255.0
    (train_x, train_y), (test_x, test_y) = [(x.astype(np.float32) / peak, y.astype(np.int64)) for x, y in arrays]
    if name == "cifar10":
        mean = train_x.mean(axis=(0, 2, 3), keepdims=True)
        std = train_x.std(axis=(0, 2, 3), keepdims=True)
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    return train_x, train_y, test_x, test_y


def flat(images: np.ndarray) -> np.ndarray:
    """Images as rows of pixels, the MLP's input."""
    return images.reshape(len(images), -1)


def train(ctx: RunContext, model, train_x, train_y, epochs: int, batch_size: int, lr: float, label: str) -> float:
    """Adam on the cross-entropy loss, with a progress bar; returns the seconds per step."""
    loader = ctx.component("function", "batches")(train_x, train_y, batch_size, shuffle=True)
    loss_fn = ctx.component("loss", "CrossEntropyLoss")()
    optimizer = ctx.component("optimizer", "Adam")(model.parameters(), lr=lr)
    model.train()
    started = time.perf_counter()
    with ctx.progress(epochs * len(loader), f"training {label}") as advance:
        for _ in range(epochs):
            for x, y in loader:
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                advance(loss=loss.item())
    model.eval()
    return (time.perf_counter() - started) / max(epochs * len(loader), 1)


def earlier_model(ctx: RunContext, path: Path, model, source: str):
    """``model`` with the weights saved at ``path`` (a state dict), or None when there are none that fit."""
    from tt_core.errors import CheckpointError

    if not path.is_file():
        return None
    try:
        model.load_state_dict(load(path))
    except (CheckpointError, AttributeError, TypeError) as error:
        ctx.log(f"[yellow]{path} does not fit this model: {error}[/]")
        return None
    ctx.log(f"using the trained model of {source} from {path}")
    return model.eval()


def reuse(ctx: RunContext, name: str, model, saved_by_milestone: str):
    """The trained weights an earlier milestone's run saved (``saved_by_milestone``, relative to
    the runs folder), else those this milestone saved in an earlier run into the same folder
    (``models/<name>-float32.npz``), else None."""
    for path, source in ((ctx.out.parent / saved_by_milestone, f"milestone {saved_by_milestone.split('/')[0]}"),
                         (ctx.out / "models" / f"{name}-float32.npz", "an earlier run of this milestone")):
        if earlier_model(ctx, path, model, source) is not None:
            ctx.record(f"{name}_source", f"{source} ({path})")
            return model
    return None


def trained_mlp(ctx: RunContext, settings: dict, train_x, train_y):
    mlp = m03_mlp.build_mlp(ctx, flat(train_x).shape[1], settings["mlp_hidden"], settings["mlp_dropout"], 10)
    if ctx.quick or reuse(ctx, "mlp", mlp, "03-mlp/mnist_mlp.npz") is None:
        ctx.record("mlp_train_step_seconds", train(ctx, mlp, flat(train_x), train_y, settings["mlp_epochs"],
                                                   settings["batch_size"], settings["mlp_lr"], f"the {settings['task']} MLP"))
        ctx.record("mlp_source", f"trained here, {settings['mlp_epochs']} epochs")
    return mlp


def trained_cnn(ctx: RunContext, settings: dict, data):
    if ctx.quick:
        cnn = m04_cnn.lenet(m04_cnn.layer_kit(ctx))
    else:
        for widths in (m04_cnn.CIFAR_WIDTHS, settings["cnn_widths"]):  # milestone 04's network, or a narrower one
            cnn = m04_cnn.cifar_net(m04_cnn.layer_kit(ctx), widths=widths)
            if reuse(ctx, "cnn", cnn, "04-cnn/cifar10_cnn.npz") is not None:
                return cnn
        ctx.log(f"[yellow]no trained model from milestone 04: training its network with widths "
                f"{settings['cnn_widths']} for {settings['cnn_epochs']} epochs here[/]")
    ctx.record("cnn_train_step_seconds",
               train(ctx, cnn, data[0], data[1], settings["cnn_epochs"], settings["batch_size"], settings["cnn_lr"], "the CNN"))
    ctx.record("cnn_source", f"trained here, widths {settings['cnn_widths']}, {settings['cnn_epochs']} epochs")
    return cnn


# ----------------------------------------------------------------------------------------
# The events
# ----------------------------------------------------------------------------------------


def profile_models(ctx: RunContext, models: dict) -> None:
    """Profile each ``name: (model, example_input)``; table to the log, chart to PNG."""
    profile = ctx.component("perf", "profile")
    for name, (model, example) in models.items():
        report = profile(model, example, warmup=2, repeats=5)
        if ctx.console is not None:
            ctx.console.print(report.table())
        ctx.record(f"profile_{name}", {"params": report.total_params, "flops": report.total_flops,
                                       "activation_bytes": report.activation_bytes,
                                       "latency_ms": report.latency.median_ms, "input": list(report.input_shapes[0])})
        record_systems(ctx, name, model, example, profiled=report, what=name.upper(),
                       step_seconds=ctx.metrics.get(f"{name}_train_step_seconds"))  # None: not trained here
        ctx.save_figure(report.figure(), f"profile_{name}.png", f"The {name.upper()}'s parameters, forward FLOPs and "
                        "self time per layer, from the profiler.")


def compress(ctx: RunContext, name: str, model, data, settings: dict, flatten: bool):
    """Prune + fine-tune, fold, k-means weight sharing, entropy-coded file; checks the size
    ratio and the accuracy drop of the model loaded back from that file."""
    compress_classifier = ctx.component("perf", "compress_classifier")

    train_x, train_y, test_x, test_y = data
    if flatten:
        train_x, test_x = flat(train_x), flat(test_x)
    steps = settings["finetune_steps"][name]
    with ctx.progress(steps, f"pruning the {name} while fine-tuning") as advance:
        compressed, report = compress_classifier(
            model, train_x, train_y, test_x, test_y, ctx.out / "models", name=name,
            sparsity=settings["sparsity"][name], clusters=settings["clusters"][name], finetune_steps=steps,
            batch_size=settings["batch_size"], lr=settings["finetune_lr"], prune_every=settings["prune_every"],
            on_step=lambda step, sparsity, loss: advance(sparsity=sparsity, loss=loss),
        )
    ctx.record(f"{name}_compression", report.to_dict())
    ctx.log(f"{name}: {report.float_bytes / 1024:.1f} KB float32 -> {report.pruned_bytes / 1024:.1f} KB pruned "
            f"({report.sparsity:.0%} zeros, sparse) -> {report.shared_bytes / 1024:.1f} KB + {report.clusters} shared "
            f"weights per layer -> {report.compressed_bytes / 1024:.1f} KB entropy-coded ({report.ratio:.1f}x); "
            f"accuracy {report.float_accuracy:.2f}% -> {report.pruned_accuracy:.2f}% pruned -> "
            f"{report.compressed_accuracy:.2f}% loaded from the file; latency {report.float_latency_ms:.3f} -> "
            f"{report.compressed_latency_ms:.3f} ms")
    ctx.check(f"{name}_size_ratio", report.ratio, ">=", settings["size_ratio"][name])
    ctx.check(f"{name}_accuracy_drop_points", report.accuracy_drop, "<=", 1.0)
    return compressed, report


def distilled_student(ctx: RunContext, teacher, data, settings: dict):
    """A small MLP trained to match the teacher's softened outputs, then quantized to int8."""
    accuracy = ctx.component("perf", "classifier_accuracy")
    distill = ctx.component("perf", "distill")

    train_x, train_y, test_x, test_y = data
    train_x, test_x = flat(train_x), flat(test_x)
    student = m03_mlp.build_mlp(ctx, train_x.shape[1], settings["student_hidden"], 0.0, 10)
    batches = ctx.component("function", "batches")(train_x, train_y, settings["batch_size"], shuffle=True)
    optimizer = ctx.component("optimizer", "Adam")(student.parameters(), lr=settings["mlp_lr"])
    epochs = settings["student_epochs"]
    with ctx.progress(epochs, "distilling a student") as advance:
        distill(student, teacher, batches, optimizer, epochs=epochs, temperature=4.0, alpha=0.7,
                on_epoch=lambda epoch, loss: advance(loss=loss))
    quantized = ctx.component("perf", "quantize_int8")(student, [train_x[:256]])
    student_accuracy = accuracy(quantized, test_x, test_y)
    path = save(quantized.state_dict(), ctx.out / "models" / "student-int8.npz")
    ctx.record("student", {"hidden": list(settings["student_hidden"]), "params": student.num_parameters(),
                           "int8_bytes": path.stat().st_size, "accuracy": student_accuracy})
    ctx.log(f"distilled student {settings['student_hidden']}: {student.num_parameters():,} parameters, "
            f"int8 file {path.stat().st_size / 1024:.1f} KB, accuracy {student_accuracy:.2f}%")
    return quantized, path


def kv_cache(ctx: RunContext, settings: dict):
    """Cached vs uncached greedy generation at each length, and cached batched generation."""
    kv_cache_speedups = ctx.component("perf", "kv_cache_speedups")
    batched_throughput = ctx.component("perf", "batched_throughput")

    gpt = ctx.component("model", "GPT")(**settings["gpt"]).eval()
    generate = ctx.component("function", "generate")
    rng = np.random.default_rng(ctx.seed)
    prompt = rng.integers(0, settings["gpt"]["vocab_size"], settings["prompt"])
    ctx.configure(gpt={**settings["gpt"], "parameters": gpt.num_parameters()}, prompt_tokens=settings["prompt"])
    ctx.log(f"KV cache on GPT {settings['gpt']} ({gpt.num_parameters():,} parameters), "
            f"prompt of {settings['prompt']} tokens")
    rows = kv_cache_speedups(gpt, prompt, settings["lengths"], generate=generate, repeats=settings["repeats"])
    for row in rows:
        ctx.log(f"  {row['tokens']:4d} tokens: uncached {row['uncached_s']:.3f} s, the model's cache "
                f"{row['cached_s']:.3f} s ({row['speedup']:.1f}x), fused decoder {row['fused_s']:.3f} s "
                f"({row['fused_speedup']:.1f}x)")
    ctx.record("kv_cache", rows)
    ctx.check("kv_tokens_identical", float(all(r["identical"] for r in rows)), ">=", 1.0)
    longest = rows[-1]
    ctx.check_speed(f"kv_speedup_at_{longest['tokens']}_tokens", longest["fused_speedup"], ">=", settings["kv_target"])

    lengths = rng.integers(settings["prompt"] // 4, settings["prompt"] + 1, settings["batch_prompts"])
    prompts = [rng.integers(0, settings["gpt"]["vocab_size"], n) for n in lengths]
    batched = [batched_throughput(gpt, prompts, n, repeats=settings["repeats"], generate=generate,
                                  uncached_prompts=settings["uncached_prompts"]) for n in settings["batch_new_tokens"]]
    ctx.record("batched_generation", batched)
    for row in batched:
        ctx.log(f"  {row['new_tokens']} new tokens: {row['batched_tokens_per_s']:.0f} tokens/s for {len(prompts)} "
                f"prompts at once, cached ({row['combined_ratio']:.1f}x uncached one at a time, "
                f"{row['uncached_tokens_per_s']:.0f} tokens/s); batching alone {row['throughput_ratio']:.1f}x "
                f"(cached one at a time {row['one_at_a_time_tokens_per_s']:.0f} tokens/s)")
    ctx.check("batched_tokens_identical", float(all(row["identical"] for row in batched)), ">=", 1.0)
    for row in batched:
        if row["new_tokens"] in settings["combined_check_tokens"]:
            ctx.check_speed(f"cached_batched_vs_uncached_at_{row['new_tokens']}_tokens", row["combined_ratio"], ">=",
                            settings["combined_target"])
    plot_kv(ctx, rows, batched, settings["combined_target"])
    return gpt, prompt


def plot_kv(ctx: RunContext, rows: list[dict], batched: list[dict], combined_target: float) -> None:
    fig, (left, right) = ctx.figure(1, 2, figsize=(11, 4))
    tokens = [r["tokens"] for r in rows]
    left.plot(tokens, [r["speedup"] for r in rows], marker="o", label="the model's cached path")
    left.plot(tokens, [r["fused_speedup"] for r in rows], marker="s", label="fused decoder (same cache)")
    left.set(xlabel="generated tokens", ylabel="speed-up over uncached generate (x)",
             title="KV-cache speed-up by length", xscale="log")
    left.set_xticks(tokens, [str(t) for t in tokens])
    left.minorticks_off()
    left.legend()
    counts = [r["new_tokens"] for r in batched]
    right.plot(counts, [r["combined_ratio"] for r in batched], marker="o", label="cached + batched vs uncached")
    right.plot(counts, [r["throughput_ratio"] for r in batched], marker="s", label="batching alone (both cached)")
    right.axhline(combined_target, color="grey", linestyle="--", linewidth=0.8, label=f"target {combined_target:g}x")
    right.set(xlabel="new tokens per prompt", ylabel="throughput over one at a time (x)", xscale="log",
              title=f"{batched[0]['prompts']} prompts at once", ylim=(0, None))
    right.legend()
    right.set_xticks(counts, [str(c) for c in counts])
    right.minorticks_off()
    ctx.save_figure(fig, "kv_cache_speedup.png", "Left: the KV cache's generation speed-up by number of generated "
                    "tokens; right: the throughput of cached batched generation over uncached (and over cached) "
                    "generation one prompt at a time, by new tokens.")


def acceleration(ctx: RunContext, mlp, mlp_batch, cnn, cnn_batch) -> None:
    results = ctx.component("perf", "acceleration_suite")(mlp, mlp_batch, cnn, cnn_batch, repeats=10 if ctx.quick else 30)
    ctx.record("acceleration", results)
    for result in results:
        ctx.log(f"  {result['name']}: {result['baseline_ms']:.3f} -> {result['optimized_ms']:.3f} ms "
                f"({result['speedup']:.2f}x), max |difference| {result['max_abs_diff']:.2e}")
        ctx.check(f"{result['key']}_max_abs_diff", result["max_abs_diff"], "<=", result["tolerance"])
    fig, ax = ctx.figure(figsize=(7, 4))
    ax.barh([r["name"] for r in results], [r["speedup"] for r in results], color="tab:green")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set(xlabel="speed-up (x, > 1 is faster)", title="Acceleration, one optimisation at a time")
    ctx.save_figure(fig, "acceleration.png", "The speed-up of each optimisation on its own (above 1 is faster), "
                    "each checked against the unoptimised output.")


def olympics(ctx: RunContext, baseline, compressed, student, data) -> None:
    Arena = ctx.component("perf", "Arena")
    Submission = ctx.component("perf", "Submission")
    save_coded = ctx.component("perf", "save_coded")
    run_olympics = ctx.component("perf", "olympics")
    _, _, test_x, test_y = data
    test_x = flat(test_x)
    arena = Arena(batch=test_x[:64], out=ctx.out / "olympics", test_x=test_x, test_y=test_y,
                  repeats=10 if ctx.quick else 30)
    card = run_olympics(
        Submission("float32 MLP", baseline),
        [Submission("pruned+shared MLP", compressed, save=lambda path: save_coded(compressed, path)),
         Submission("distilled int8 student", student)],
        arena,
    )
    if ctx.console is not None:
        ctx.console.print(card.table())
    card.save_json(ctx.out / "scorecard.json")
    ctx.save_figure(card.figure(), "scorecard.png", "The Olympics scorecard: latency, memory, compression and "
                    "accuracy of the float32 baseline against the optimised submissions.")
    ctx.record("olympics", {"ratios": card.ratios, "winner": card.winner})


# ----------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------


def run(ctx: RunContext) -> None:
    settings = QUICK if ctx.quick else FULL
    # every data file the run reads is checked (or downloaded) before anything trains, and all
    # that are missing or corrupt are named at once (the quick run's TinyDigits is embedded)
    ctx.component("function", "require_data")(settings["task"], *(() if ctx.quick else ("cifar10",)))
    threads = 1 if ctx.component("function", "threadpoolctl_available")() else None
    ctx.configure(**{k: v for k, v in settings.items() if k != "gpt"}, blas_threads=threads or "unchanged")
    if threads is None:
        ctx.log("[yellow]threadpoolctl is not installed: BLAS keeps its default thread count[/]")
    with ctx.component("function", "blas_threads")(threads):
        run_events(ctx, settings)


def run_events(ctx: RunContext, settings: dict) -> None:
    data = load_task(ctx, settings["task"])
    cnn_data = data if ctx.quick else load_task(ctx, "cifar10")
    mlp = trained_mlp(ctx, settings, data[0], data[1])
    cnn = trained_cnn(ctx, settings, cnn_data)
    mlp_batch, cnn_batch = flat(data[2][:64]), cnn_data[2][:64]

    profile_models(ctx, {"mlp": (mlp, mlp_batch), "cnn": (cnn, cnn_batch)})
    compressed_mlp, _ = compress(ctx, "mlp", mlp, data, settings, flatten=True)
    compress(ctx, "cnn", cnn, cnn_data, settings, flatten=False)
    student, _ = distilled_student(ctx, mlp, data, settings)
    gpt, prompt = kv_cache(ctx, settings)
    profile_models(ctx, {"gpt": (gpt, prompt[None, :])})
    acceleration(ctx, mlp, mlp_batch, cnn, cnn_batch)
    olympics(ctx, mlp, compressed_mlp, student, data)

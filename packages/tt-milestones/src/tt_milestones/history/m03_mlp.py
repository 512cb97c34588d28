"""Milestone 03: backpropagation and the multi-layer perceptron (Rumelhart, Hinton, Williams 1986).

A perceptron draws one straight line; stacking layers with a non-linearity between them lets a
network bend its boundaries, and backpropagation -- the chain rule applied from the loss back
through every layer -- tells each weight how to change. Here a multi-layer perceptron (fully
connected layers with ReLU) learns to read handwritten digits:

* **TinyDigits** (8x8 images, 1,437 train / 360 test): 64 -> 128 -> 10, target >= 97% test
  accuracy, a few seconds of training (this is all that ``--quick`` runs);
* **MNIST** (28x28 images, 60,000 train / 10,000 test): 784 -> 512 -> 256 -> 10, target
  >= 98.5% test accuracy within 30 seconds of training. Label smoothing (0.1) and a one-cycle
  schedule (Adam's rate rising to 2e-3, then annealed, stepped every batch) get there in 8
  epochs; the budget holds by construction: tt-learn's ``TimeBudget`` re-plans the epochs
  (and the schedule's length) after each one from the measured time of whole epochs, test
  evaluation included, so a slower machine trains fewer epochs instead of overrunning.

Both are trained with cross-entropy and Adam by tt-learn's ``Trainer`` (TinyDigits with a
cosine schedule over its epochs); the data come from tt-data's catalogue through its ``DataLoader``. The test split
is evaluated after every epoch for the curves only: nothing is tuned on it, the reported model
is the one after the last epoch.

The report shows the curves, the confusion matrix, a grid of misclassified test images and the
gradient flow (the gradient norm and update-to-weight ratio of every weight matrix, per epoch).

Why not sigmoids, as in 1986? A last experiment (quick runs too) trains the same deep MLP
(8 hidden layers of 64) twice on TinyDigits, once with sigmoid and once with ReLU, the same way:
the sigmoid's derivative is at most 1/4, so the gradient shrinks at every layer on its way back
and the first layers receive next to nothing (the *vanishing gradient*); ReLU passes it through
where it is active. The check: the sigmoid network's first-layer gradient is at least 1000
times smaller than the ReLU one's; the report shows both gradient flows and records the
accuracy each network reached.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
from tt_core import Sequential, Tensor, manual_seed, save

from ..api import RunContext
from ..systems import record_systems, step_seconds_from_history
from .gradient_flow import draw_depth_bars, draw_lines, report_gradient_flow, summary, weight_names


@dataclass(frozen=True)
class Task:
    """One digit-reading task: the data set, the network and how to train it."""

    dataset: str
    title: str
    hidden: tuple[int, ...]
    dropout: float
    epochs: int
    batch_size: int
    lr: float
    target: float
    label_smoothing: float = 0.0
    schedule: str = "cosine"  # "cosine" per epoch, or "onecycle" per batch
    budget_seconds: float | None = None  # training time, test evaluation after each epoch included


TINYDIGITS = Task("tinydigits", "TinyDigits (8x8)", hidden=(128,), dropout=0.0, epochs=30, batch_size=32,
                  lr=1e-2, target=0.97)
MNIST = Task("mnist", "MNIST (28x28)", hidden=(512, 256), dropout=0.0, epochs=8, batch_size=128,
             lr=2e-3, target=0.985, label_smoothing=0.1, schedule="onecycle", budget_seconds=30.0)
# the vanishing-gradient contrast: trained as TINYDIGITS is, with 8 hidden layers (no accuracy target)
DEEP = replace(TINYDIGITS, title="TinyDigits, 8 hidden layers of 64", hidden=(64,) * 8, epochs=15)
DEEP_GRADIENT_RATIO = 1e-3  # the sigmoid network's first-layer gradient norm over the ReLU one's, at most


def build_mlp(ctx: RunContext, n_in: int, hidden: tuple[int, ...], dropout: float, n_out: int,
              activation: str = "ReLU"):
    """``Linear -> activation (-> Dropout)`` for every hidden width, then a ``Linear`` to the class scores."""
    Linear, Activation, Dropout = (ctx.component("layer", "Linear"), ctx.component("activation", activation),
                                   ctx.component("layer", "Dropout"))
    layers = []
    for width in hidden:
        layers += [Linear(n_in, width), Activation()] + ([Dropout(dropout)] if dropout else [])
        n_in = width
    return Sequential(*layers, Linear(n_in, n_out))


def predict(ctx: RunContext, model, images: np.ndarray, batch_size: int = 2000) -> np.ndarray:
    """Predicted classes for ``images`` (N, features), in eval mode and without a graph."""
    no_grad = ctx.component("function", "no_grad")
    model.eval()
    with no_grad():
        scores = [model(Tensor(images[i:i + batch_size])).data for i in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(scores).argmax(axis=1)


def make_trainer(ctx: RunContext, model, task: Task, steps_per_epoch: int, budget=None):
    """The registry's Trainer with cross-entropy, Adam and ``task``'s schedule (cosine over the
    epochs, or one-cycle over every batch), recording the gradient flow; ``budget`` (a
    ``TimeBudget``) makes it re-plan its epochs to end inside the budget."""
    optimizer = ctx.component("optimizer", "Adam")(model.parameters(), lr=task.lr)
    if task.schedule == "onecycle":
        scheduler = ctx.component("scheduler", "OneCycleLR")(optimizer, max_lr=task.lr,
                                                             total_steps=task.epochs * steps_per_epoch)
    else:
        scheduler = ctx.component("scheduler", "CosineAnnealingLR")(optimizer, T_max=task.epochs)
    return ctx.component("trainer", "Trainer")(
        model, optimizer, ctx.component("loss", "CrossEntropyLoss")(label_smoothing=task.label_smoothing),
        scheduler=scheduler, scheduler_interval="batch" if task.schedule == "onecycle" else "epoch",
        metrics={"accuracy": ctx.component("metric", "accuracy")}, progress=ctx.console is not None,
        console=ctx.console, track_gradients=True, budget=budget,
    )


def train_task(ctx: RunContext, task: Task) -> dict:
    """Train one MLP on ``task``; records and checks its figures and returns what the plots need."""
    source = ctx.component("dataset", task.dataset)
    train, test = source("train", flatten=True), source("test", flatten=True)
    (x_test, y_test), n_features = test.arrays, train.arrays[0].shape[1]
    DataLoader = ctx.component("loader", "DataLoader")
    model = build_mlp(ctx, n_features, task.hidden, task.dropout, len(source.classes))
    train_loader, test_loader = DataLoader(train, task.batch_size, shuffle=True), DataLoader(test, 1000)
    name = task.dataset
    n_params = sum(p.size for p in model.parameters())
    ctx.configure(**{name: {**asdict(task), "layers": [n_features, *task.hidden, len(source.classes)],
                            "parameters": n_params, "optimizer": "Adam",
                            "train_images": len(train), "test_images": len(test)}})
    ctx.record(f"{name}_test_accuracy_before", float(np.mean(predict(ctx, model, x_test) == y_test)))
    ctx.log(f"[bold]{task.title}[/]: MLP {' -> '.join(map(str, [n_features, *task.hidden, 10]))}, "
            f"{n_params:,} parameters, {task.epochs} epochs")
    started = time.perf_counter()
    budget = None if task.budget_seconds is None else ctx.component("function", "TimeBudget")(task.budget_seconds)
    trainer = make_trainer(ctx, model, task, len(train_loader), budget)
    history = trainer.fit(train_loader, test_loader, epochs=task.epochs)
    seconds = time.perf_counter() - started
    ctx.record(f"{name}_epochs_trained", len(history))
    if task.budget_seconds is None:
        ctx.record(f"{name}_train_seconds", round(seconds, 2))
    else:
        ctx.check(f"{name}_train_seconds", round(seconds, 2), "<=", task.budget_seconds)
    ctx.record(f"{name}_seconds_per_epoch", round(float(np.mean([row["seconds"] for row in history])), 3))
    ctx.record(f"{name}_train_accuracy", history[-1]["accuracy"])
    predicted = predict(ctx, model, x_test)
    ctx.check(f"{name}_test_accuracy", float(np.mean(predicted == y_test)), ">=", task.target)
    save(model.state_dict(), ctx.out / f"{name}_mlp.npz")  # milestone 06 compresses this model
    return {"task": task, "history": history, "images": x_test, "labels": y_test, "predicted": predicted,
            "shape": source.image_shape, "classes": source.classes, "gradients": trainer.gradient_stats,
            "model": model, "train_images": len(train)}


def first_layer_gradient(rows: list[dict]) -> float:
    """The first weight matrix's gradient norm, averaged over the epochs of training."""
    first = weight_names(rows)[0]
    return float(np.mean([row["grad_norm"] for row in rows if row["parameter"] == first]))


def vanishing_gradients(ctx: RunContext) -> None:
    """The same deep MLP with sigmoid and with ReLU, from the same initial weights and batches:
    checks that the sigmoid network's first layer gets a far smaller gradient; records both
    accuracies and gradient flows and draws them side by side."""
    source = ctx.component("dataset", DEEP.dataset)
    train, test = source("train", flatten=True), source("test", flatten=True)
    (x_test, y_test), n_features = test.arrays, train.arrays[0].shape[1]
    DataLoader = ctx.component("loader", "DataLoader")
    ctx.configure(deep={**asdict(DEEP), "activations": ["Sigmoid", "ReLU"], "target": None})
    ctx.log(f"[bold]{DEEP.title}[/]: the same MLP with sigmoid and with ReLU, {DEEP.epochs} epochs each")
    results = {}
    for activation in ("Sigmoid", "ReLU"):
        manual_seed(ctx.seed)  # the same initial weights and the same batches for both
        model = build_mlp(ctx, n_features, DEEP.hidden, DEEP.dropout, len(source.classes), activation)
        loader = DataLoader(train, DEEP.batch_size, shuffle=True)
        trainer = make_trainer(ctx, model, DEEP, len(loader))
        trainer.fit(loader, epochs=DEEP.epochs)
        key, rows = f"deep_{activation.lower()}", trainer.gradient_stats
        results[activation] = {"rows": rows, "first": first_layer_gradient(rows),
                               "accuracy": float(np.mean(predict(ctx, model, x_test) == y_test))}
        ctx.record(f"{key}_test_accuracy", results[activation]["accuracy"])
        ctx.record(f"{key}_first_layer_gradient_norm", results[activation]["first"])
        ctx.record(f"{key}_gradient_flow", summary(rows))
        ctx.log(f"  {activation}: test accuracy {results[activation]['accuracy']:.1%}, "
                f"first-layer gradient norm {results[activation]['first']:.3g}")
    ctx.check("deep_sigmoid_over_relu_first_layer_gradient", results["Sigmoid"]["first"] / results["ReLU"]["first"],
              "<=", DEEP_GRADIENT_RATIO)
    plot_vanishing(ctx, results)


# -- what it costs --------------------------------------------------------------------------

SWEEP_WIDTHS = (16, 64, 256, 1024, 4096)
SWEEP_EPOCHS = 5


def systems(ctx: RunContext, result: dict) -> None:
    """The systems figures of one task's trained MLP (a training batch of test images)."""
    task = result["task"]
    steps_per_epoch = -(-result["train_images"] // task.batch_size)
    record_systems(ctx, task.dataset, result["model"], result["images"][:task.batch_size],
                   step_seconds=step_seconds_from_history(result["history"], steps_per_epoch),
                   what=f"MLP {'-'.join(map(str, [result['images'].shape[1], *task.hidden, 10]))}")


def width_sweep(ctx: RunContext, widths: tuple[int, ...] = SWEEP_WIDTHS, epochs: int = SWEEP_EPOCHS) -> list[dict]:
    """TinyDigits MLPs of one hidden layer of each width, trained for a few epochs as the
    TinyDigits task is: test accuracy, parameters and measured seconds per training step
    against the width. Records ``width_sweep`` and draws ``width_sweep.png``."""
    task = TINYDIGITS
    source = ctx.component("dataset", task.dataset)
    train, test = source("train", flatten=True), source("test", flatten=True)
    x_test, y_test = test.arrays
    DataLoader = ctx.component("loader", "DataLoader")
    rows = []
    for width in widths:
        model = build_mlp(ctx, x_test.shape[1], (width,), 0.0, len(source.classes))
        optimizer = ctx.component("optimizer", "Adam")(model.parameters(), lr=task.lr)
        trainer = ctx.component("trainer", "Trainer")(
            model, optimizer, ctx.component("loss", "CrossEntropyLoss")(), progress=False)
        loader = DataLoader(train, task.batch_size, shuffle=True)
        history = trainer.fit(loader, epochs=epochs)
        accuracy = float(np.mean(predict(ctx, model, x_test) == y_test))
        rows.append({"width": width, "parameters": model.num_parameters(), "test_accuracy": round(accuracy, 4),
                     "step_ms": round(1e3 * step_seconds_from_history(history, len(loader)), 4)})
        ctx.log(f"  width {width}: {rows[-1]['parameters']:,} parameters, test accuracy {accuracy:.1%} after "
                f"{epochs} epochs, {rows[-1]['step_ms']:.2f} ms per step")
    ctx.record("width_sweep", {"epochs": epochs, "batch_size": task.batch_size, "rows": rows})
    plot_width_sweep(ctx, rows, epochs)
    return rows


def plot_width_sweep(ctx: RunContext, rows: list[dict], epochs: int) -> None:
    widths = [row["width"] for row in rows]
    fig, (acc_ax, time_ax) = ctx.figure(1, 2, figsize=(10, 4))
    acc_ax.plot(widths, [row["test_accuracy"] for row in rows], marker="o")
    for row in rows:
        acc_ax.annotate(f"{row['parameters']:,} params", (row["width"], row["test_accuracy"]), fontsize=7,
                        textcoords="offset points", xytext=(0, 7), ha="center")
    acc_ax.set(xscale="log", xlabel="hidden width", ylabel="test accuracy",
               title=f"TinyDigits after {epochs} epochs: accuracy by width")
    time_ax.plot(widths, [row["step_ms"] for row in rows], marker="o", color="tab:orange")
    time_ax.set(xscale="log", xlabel="hidden width", ylabel="ms per training step", ylim=(0, None),
                title=f"measured time of one training step (batch {TINYDIGITS.batch_size})")
    acc_ax.margins(x=0.12, y=0.2)
    for ax in (acc_ax, time_ax):
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    ctx.save_figure(fig, "width_sweep.png", f"One-hidden-layer MLPs of widths {', '.join(map(str, widths))} on "
                    f"TinyDigits, {epochs} epochs each: test accuracy (with parameter counts) and measured time per "
                    "training step against the width.")


# -- the report ------------------------------------------------------------------------------


def plot_curves(ctx: RunContext, result: dict) -> None:
    """Training loss and accuracy per epoch, with the test split's beside them."""
    history, name = result["history"], result["task"].dataset
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = ctx.figure(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [row["loss"] for row in history], marker="o", label="train")
    loss_ax.plot(epochs, [row["val_loss"] for row in history], marker="o", label="test")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title=f"{result['task'].title}: loss", yscale="log")
    acc_ax.plot(epochs, [row["accuracy"] for row in history], marker="o", label="train")
    acc_ax.plot(epochs, [row["val_accuracy"] for row in history], marker="o", label="test")
    acc_ax.axhline(result["task"].target, color="gray", linestyle="--", label="target")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title=f"{result['task'].title}: accuracy")
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    ctx.save_figure(fig, f"{name}_curves.png", f"{result['task'].title}: training and test loss (log scale) and "
                    "accuracy per epoch, with the target accuracy dashed.")


def confusion(labels: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """``matrix[true, predicted]`` = how many test images of class ``true`` got ``predicted``."""
    return np.bincount(labels * n + predicted, minlength=n * n).reshape(n, n)


def plot_confusion(ctx: RunContext, result: dict) -> None:
    classes = result["classes"]
    matrix = confusion(result["labels"], result["predicted"], len(classes))
    fig, ax = ctx.figure(figsize=(6, 5.5))
    image = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 4 else "black")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=f"{result['task'].title}: confusion matrix (test)")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    ctx.save_figure(fig, f"{result['task'].dataset}_confusion.png", f"{result['task'].title}: how many test images "
                    "of each true class (rows) got each predicted class (columns).")


def plot_misclassified(ctx: RunContext, result: dict, most: int = 32, cols: int = 8) -> None:
    """Up to ``most`` misclassified test images, each titled ``true -> predicted``."""
    wrong = np.flatnonzero(result["predicted"] != result["labels"])[:most]
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = ctx.figure(rows, cols, figsize=(cols * 1.2, rows * 1.4 + 0.6), squeeze=False)
    height, width = result["shape"][1:]
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), wrong):
        ax.imshow(result["images"][index].reshape(height, width), cmap="gray_r")
        ax.set_title(f"{result['labels'][index]} -> {result['predicted'][index]}", fontsize=8, color="#cc0000")
    fig.suptitle(f"{result['task'].title}: {int(np.sum(result['predicted'] != result['labels']))} of "
                 f"{len(result['labels'])} test images misclassified (true -> predicted)")
    ctx.save_figure(fig, f"{result['task'].dataset}_misclassified.png", f"{result['task'].title}: the first "
                    "misclassified test images, each titled true -> predicted class.")


def plot_vanishing(ctx: RunContext, results: dict) -> None:
    """The gradient norm of every weight matrix over training, sigmoid beside ReLU on one scale,
    and both networks' first-epoch gradient norms by depth."""
    fig, (sigmoid_ax, relu_ax, bars) = ctx.figure(1, 3, figsize=(16, 4.5))
    relu_ax.sharey(sigmoid_ax)
    for ax, activation in ((sigmoid_ax, "Sigmoid"), (relu_ax, "ReLU")):
        draw_lines(ax, results[activation]["rows"], legend=activation == "ReLU")
        ax.set_title(f"{activation}: test accuracy {results[activation]['accuracy']:.1%}")
    draw_depth_bars(bars, {name: result["rows"] for name, result in results.items()}, epoch=1,
                    colours=("#cc0000", "#3d85c6"))
    bars.set_title("gradient norm by depth, first epoch")
    fig.suptitle(f"{DEEP.title}: the sigmoid's gradients vanish on the way to the first layers, ReLU's do not")
    ctx.save_figure(fig, "deep_sigmoid_vs_relu_gradient_flow.png", f"{DEEP.title}: the gradient norm of every "
                    "weight matrix over training with sigmoid and with ReLU (same scale, with each test accuracy), "
                    "and both networks' first-epoch gradient norms by depth.")


def run(ctx: RunContext) -> None:
    tasks = (TINYDIGITS,) if ctx.quick else (TINYDIGITS, MNIST)
    # every data file this run reads is checked (or downloaded) before the first training step,
    # and all that are missing or corrupt are named at once (TinyDigits is embedded: nothing to check)
    ctx.component("function", "require_data")(*(task.dataset for task in tasks))
    for task in tasks:
        with ctx.phase(task.dataset):
            result = train_task(ctx, task)
            plot_curves(ctx, result)
            plot_confusion(ctx, result)
            plot_misclassified(ctx, result)
            report_gradient_flow(ctx, task.dataset, result["gradients"], f"MLP on {task.title}")
            systems(ctx, result)
    with ctx.phase("vanishing_gradients"):
        vanishing_gradients(ctx)
    with ctx.phase("width_sweep"):
        width_sweep(ctx)

"""Milestone 01: Rosenblatt's perceptron (1957), built from tt-core alone.

The perceptron answers ``step(w . x + b)``: 1 when the weighted sum is positive, else 0. Its
learning rule needs no gradients. For each training example it gets wrong, it adds the
example to the weights when the answer should have been 1 and subtracts it when it should
have been 0::

    w += lr * (y - y_hat) * x        b += lr * (y - y_hat)

An epoch visits the examples one at a time in a shuffled order (the rule is sequential by
nature: each update changes the next prediction), and training stops after the first epoch
without a mistake, which the convergence theorem guarantees when the classes are linearly
separable.

Two tasks: points in the plane split by a line (target 100%), and the 8x8 handwritten
digits 0 vs 1 (target >= 98% on the test split). Training starts from all-zero weights, so
the untrained perceptron answers 0 for everything: its accuracy before training is the share
of class 0, about 50%.
"""

from __future__ import annotations

import time

import numpy as np
from tt_core import tensor
from tt_core.digits import load_digits
from tt_core.rng import generator

from ..api import RunContext
from ..systems import record_systems


class Perceptron:
    """A tt-core ``Linear(n_features, 1)`` followed by a step, trained by the perceptron rule."""

    def __init__(self, linear) -> None:
        self.linear = linear
        linear.weight.data[...] = 0
        linear.bias.data[...] = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """0/1 answers for a batch of inputs (one vectorised forward pass of the layer)."""
        return (self.linear(tensor(x)).numpy()[:, 0] > 0).astype(np.int64)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y))

    def epoch(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, lr: float = 1.0) -> int:
        """One pass over the examples in shuffled order; returns the number of mistakes."""
        w, b = self.linear.weight.data[0], self.linear.bias.data  # views: updating them updates the layer
        mistakes = 0
        for i in rng.permutation(len(y)):
            error = y[i] - int(x[i] @ w + b[0] > 0)  # +1, -1, or 0 when the answer was right
            if error:
                w += lr * error * x[i]
                b += lr * error
                mistakes += 1
        return mistakes

    def fit(self, x: np.ndarray, y: np.ndarray, max_epochs: int, rng: np.random.Generator, advance) -> list[int]:
        """Epochs until one makes no mistake (or ``max_epochs``); returns mistakes per epoch."""
        history: list[int] = []
        for _ in range(max_epochs):
            history.append(self.epoch(x, y, rng))
            advance(mistakes=history[-1])
            if history[-1] == 0:
                break
        return history


def separable_points(n: int, rng: np.random.Generator, margin: float = 0.05):
    """``n`` points in [-1, 1]^2 on both sides of a random line, none closer to it than ``margin``.

    Returns ``(points float32 (n, 2), labels int64 (n,), (normal, offset) of the true line)``.
    """
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    offset = rng.uniform(-0.2, 0.2)
    candidates = rng.uniform(-1, 1, size=(4 * n, 2))
    distance = candidates @ normal - offset
    keep = np.flatnonzero(np.abs(distance) > margin)[:n]
    return candidates[keep].astype(np.float32), (distance[keep] > 0).astype(np.int64), (normal, offset)


def digit_pair(split: str, pair: tuple[int, int] = (0, 1)):
    """The embedded 8x8 digits of two classes: pixels scaled to [0, 1], labels 0/1."""
    images, labels = load_digits(split)
    keep = np.isin(labels, pair)
    x = images[keep].reshape(-1, 64).astype(np.float32) / 16
    return x, (labels[keep] == pair[1]).astype(np.int64)


def train_task(ctx: RunContext, name: str, label: str, train, evaluate, split: str, max_epochs: int, rng):
    """Train a fresh perceptron on ``train = (x, y)``; records its accuracy on ``evaluate``
    (the ``split`` named) before and after training, and its mistakes per epoch. Returns the
    perceptron, its mistakes per epoch, its accuracy and the seconds of one update step."""
    perceptron = Perceptron(ctx.component("layer", "Linear")(train[0].shape[1], 1))
    before = ctx.record(f"{name}_{split}_accuracy_before", perceptron.accuracy(*evaluate))
    started = time.perf_counter()
    with ctx.progress(max_epochs, f"perceptron, {label}") as advance:
        history = perceptron.fit(*train, max_epochs, rng, advance)
    seconds_per_update = (time.perf_counter() - started) / (len(history) * len(train[1]))
    after = perceptron.accuracy(*evaluate)
    ctx.record(f"{name}_mistakes_per_epoch", history)
    ctx.log(f"{label}: {split} accuracy {before:.1%} before training, {after:.1%} after {len(history)} epochs")
    return perceptron, history, after, seconds_per_update


def logistic_regression(ctx: RunContext, x_train, y_train, x_test, y_test) -> float | None:
    """For comparison, when tt-learn is installed: the same layer trained by gradient descent
    on the logistic loss (autograd), instead of by the perceptron's mistakes."""
    needs = (("autograd", "engine"), ("loss", "BCEWithLogitsLoss"), ("optimizer", "SGD"))
    if not all(ctx.registry.has(kind, name) for kind, name in needs):
        return None
    model = ctx.component("layer", "Linear")(x_train.shape[1], 1)
    loss_fn = ctx.component("loss", "BCEWithLogitsLoss")()
    optimizer = ctx.component("optimizer", "SGD")(model.parameters(), lr=0.5)
    inputs, targets = tensor(x_train), tensor(y_train.reshape(-1, 1).astype(np.float32))
    steps = 50 if ctx.quick else 200
    with ctx.progress(steps, "logistic regression (autograd)") as advance:
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            advance(loss=loss.item())
    return float(np.mean((model(tensor(x_test)).numpy()[:, 0] > 0) == y_test))


def plot_boundary(ctx: RunContext, perceptron: Perceptron, x, y, true_line) -> None:
    """The plane coloured by the perceptron's answer, the points, and the true dividing line."""
    grid = np.linspace(-1.1, 1.1, 200, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    answers = perceptron.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    fig, ax = ctx.figure(figsize=(5, 5))
    ax.contourf(gx, gy, answers, levels=[-0.5, 0.5, 1.5], colors=["#f4cccc", "#cfe2f3"])
    ax.scatter(*x[y == 0].T, s=12, c="#cc0000", label="class 0")
    ax.scatter(*x[y == 1].T, s=12, c="#0b5394", label="class 1")
    normal, offset = true_line
    # points p with p . normal = offset, parametrised along the line's direction
    along = np.linspace(-2, 2, 2)[:, None] * np.array([-normal[1], normal[0]]) + offset * normal
    ax.plot(along[:, 0], along[:, 1], "k--", lw=1, label="true line")
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), title="Perceptron decision regions", aspect="equal")
    ax.legend(loc="lower right", fontsize=8)
    ctx.save_figure(fig, "decision_boundary.png", "The 2-D points of both classes over the regions where the trained "
                    "perceptron answers 0 (red) and 1 (blue), with the true dividing line dashed.")


def plot_convergence(ctx: RunContext, histories: dict[str, list[int]]) -> None:
    fig, ax = ctx.figure(figsize=(6, 4))
    for name, history in histories.items():
        ax.plot(np.arange(1, len(history) + 1), history, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="mistakes (weight updates)", title="Perceptron convergence")
    ax.legend()
    ctx.save_figure(fig, "convergence.png", "Mistakes (weight updates) per epoch on both tasks, falling to zero "
                    "when an epoch makes no mistake.")


def plot_digit_weights(ctx: RunContext, perceptron: Perceptron) -> None:
    """The 64 learned weights as an 8x8 image: blue pixels vote for 1, red ones for 0."""
    weights = perceptron.linear.weight.data.reshape(8, 8)
    limit = float(np.abs(weights).max()) or 1.0
    fig, ax = ctx.figure(figsize=(4, 4))
    image = ax.imshow(weights, cmap="RdBu", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax)
    ax.set(title="Weights for 0 (red) vs 1 (blue)", xticks=[], yticks=[])
    ctx.save_figure(fig, "digit_weights.png", "The 64 learned weights of the digits perceptron as an 8x8 image: blue "
                    "pixels vote for 1, red ones for 0.")


def run(ctx: RunContext) -> None:
    rng = generator()
    n_points, max_epochs = (100, 25) if ctx.quick else (400, 100)
    margin = 0.05
    ctx.configure(points=n_points, margin=margin, max_epochs=max_epochs, learning_rate=1.0, digits=(0, 1), init="zeros")

    x, y, true_line = separable_points(n_points, rng, margin)
    plane, plane_history, plane_accuracy, _ = train_task(
        ctx, "separable", "2-D points", (x, y), (x, y), "train", max_epochs, rng
    )
    ctx.check("separable_accuracy", plane_accuracy, ">=", 1.0)

    x_train, y_train = digit_pair("train")
    x_test, y_test = digit_pair("test")
    ctx.configure(digit_train_images=len(y_train), digit_test_images=len(y_test))
    digits, digit_history, digit_accuracy, seconds_per_update = train_task(
        ctx, "digits", "digits 0 vs 1", (x_train, y_train), (x_test, y_test), "test", max_epochs, rng
    )
    ctx.record("digits_train_accuracy", digits.accuracy(x_train, y_train))
    ctx.check("digits_test_accuracy", digit_accuracy, ">=", 0.98)

    logistic = logistic_regression(ctx, x_train, y_train, x_test, y_test)
    if logistic is not None:
        ctx.record("digits_logistic_regression_test_accuracy", logistic)
        ctx.log(f"for comparison, logistic regression with autograd: test accuracy {logistic:.1%}")

    record_systems(ctx, "digits_perceptron", digits.linear, x_train[:1], what="perceptron, digits 0 vs 1",
                   step_seconds=seconds_per_update)  # it learns from one example at a time
    plot_boundary(ctx, plane, x, y, true_line)
    plot_convergence(ctx, {"separable points": plane_history, "digits 0 vs 1": digit_history})
    plot_digit_weights(ctx, digits)

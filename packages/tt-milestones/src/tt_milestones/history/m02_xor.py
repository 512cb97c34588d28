"""Milestone 02: the XOR crisis (1969), with autograd from tt-learn.

XOR answers 1 when exactly one of its two inputs is 1. No straight line separates
{(0, 1), (1, 0)} from {(0, 0), (1, 1)}, so a single layer ``sigmoid(w . x + b)`` cannot
compute it, whatever its weights. Minsky and Papert's *Perceptrons* made that argument in 1969.

Gradient descent shows it directly: trained on the four points with the binary
cross-entropy, a single layer's best weights are ``w = 0, b = 0`` (the four points cancel
each other out), so its output is 0.5 everywhere and its loss stays at ``log 2 ≈ 0.693``.
Accuracy can't go above 75%. Add one hidden layer of tanh units and the same gradient descent
finds weights that bend the boundary around the corners: 100%.

Both networks are built from registry components (``layer:Linear``, ``activation:Tanh``,
``loss:BCEWithLogitsLoss``, ``optimizer:SGD``), so a learner's own plugin for any of them is
what gets trained here.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tt_core import Sequential, tensor

from ..api import RunContext
from ..systems import record_systems

# the truth table: inputs (4, 2) and targets (4, 1), as floats for the logistic loss
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = np.array([[0], [1], [1], [0]], dtype=np.float32)
LOG2 = math.log(2)
# colour bands of the probability maps: 0.45-0.55 is one neutral band, "undecided"
BANDS = np.concatenate([[0.0], np.linspace(0.05, 0.95, 10), [1.0]])


def train(ctx: RunContext, model, steps: int, lr: float, momentum: float, label: str) -> list[float]:
    """Full-batch gradient descent on the four points; returns the loss of every step."""
    loss_fn = ctx.component("loss", "BCEWithLogitsLoss")()
    optimizer = ctx.component("optimizer", "SGD")(model.parameters(), lr=lr, momentum=momentum)
    x, y = tensor(INPUTS), tensor(TARGETS)
    losses = []
    with ctx.progress(steps, label) as advance:
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            advance(loss=losses[-1])
    return losses


def evaluate(ctx: RunContext, model) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy and the predicted probabilities on the four points."""
    logits = model(tensor(INPUTS))
    loss = ctx.component("loss", "BCEWithLogitsLoss")()(logits, tensor(TARGETS)).item()
    probabilities = ctx.component("activation", "Sigmoid")()(logits).numpy()
    accuracy = float(np.mean((logits.numpy() > 0) == (TARGETS > 0.5)))
    return loss, accuracy, probabilities[:, 0]


def plot_losses(ctx: RunContext, curves: dict[str, list[float]]) -> None:
    fig, ax = ctx.figure(figsize=(6, 4))
    for name, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, label=name)
    ax.axhline(LOG2, color="grey", ls="--", lw=1, label="log 2 (output 0.5 everywhere)")
    ax.set(xlabel="gradient step", ylabel="binary cross-entropy (log scale)", title="XOR: training loss", yscale="log")
    ax.legend()
    ctx.save_figure(fig, "loss_curves.png", "Training loss per step (log scale) of the single layer, stuck at log 2, "
                    "and of the 2-layer MLP, which falls towards 0.")


def plot_boundaries(ctx: RunContext, models: dict[str, object]) -> None:
    """Each network's probability of class 1 over the plane, its 0.5 contour and the points."""
    grid = np.linspace(-0.5, 1.5, 121, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    points = tensor(np.column_stack([gx.ravel(), gy.ravel()]))
    sigmoid = ctx.component("activation", "Sigmoid")()
    fig, axes = ctx.figure(1, len(models), figsize=(5 * len(models), 4.6))
    for ax, (name, model) in zip(np.atleast_1d(axes), models.items()):
        probability = sigmoid(model(points)).numpy().reshape(gx.shape)
        image = ax.contourf(gx, gy, probability, levels=BANDS, cmap="RdBu", vmin=0, vmax=1)
        if probability.max() - probability.min() > 0.05:
            ax.contour(gx, gy, probability, levels=[0.5], colors="k", linewidths=1.5)
        else:  # flat: any 0.5 contour would only trace rounding noise
            ax.text(0.5, -0.35, f"P = {probability.mean():.3f} everywhere", ha="center", fontsize=9)
        for target, colour, marker in ((0, "#cc0000", "o"), (1, "#0b5394", "s")):
            chosen = TARGETS[:, 0] == target
            ax.scatter(*INPUTS[chosen].T, s=140, c=colour, marker=marker, edgecolors="black", linewidths=2,
                       label=f"XOR = {target}")
        ax.set(title=name, xlabel="x1", ylabel="x2", aspect="equal")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
        fig.colorbar(image, ax=ax, label="P(XOR = 1)")
    ctx.save_figure(fig, "decision_boundary.png", "Each network's probability of XOR = 1 over the plane with its 0.5 "
                    "contour and the four points: flat for the single layer, bent around the corners by the MLP.")


def run(ctx: RunContext) -> None:
    Linear = ctx.component("layer", "Linear")
    Tanh = ctx.component("activation", "Tanh")
    hidden = 8
    single_steps, mlp_steps = (150, 150) if ctx.quick else (300, 300)
    lr, momentum = 0.5, 0.9
    ctx.configure(data="XOR truth table (4 points)", loss="BCEWithLogitsLoss", optimizer="SGD full batch",
                  learning_rate=lr, momentum=momentum, single_layer_steps=single_steps, mlp_steps=mlp_steps,
                  mlp=f"Linear(2, {hidden}) - Tanh - Linear({hidden}, 1)")

    single = Linear(2, 1)
    single_losses = train(ctx, single, single_steps, lr, momentum, "single layer")
    single_loss, single_accuracy, single_probabilities = evaluate(ctx, single)
    ctx.log(f"single layer: loss {single_loss:.4f} (log 2 = {LOG2:.4f}), accuracy {single_accuracy:.0%}, "
            f"outputs {np.round(single_probabilities, 3).tolist()}")
    ctx.record("single_layer_weights", single.weight.numpy().ravel().tolist())
    ctx.check("single_layer_loss", single_loss, ">=", 0.69)
    ctx.check("single_layer_accuracy", single_accuracy, "<=", 0.75)

    mlp = Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1))
    started = time.perf_counter()
    mlp_losses = train(ctx, mlp, mlp_steps, lr, momentum, "2-layer MLP")
    mlp_step_seconds = (time.perf_counter() - started) / mlp_steps
    mlp_loss, mlp_accuracy, mlp_probabilities = evaluate(ctx, mlp)
    ctx.log(f"2-layer MLP: loss {mlp_loss:.4f}, accuracy {mlp_accuracy:.0%}, "
            f"outputs {np.round(mlp_probabilities, 3).tolist()}")
    ctx.record("mlp_loss", mlp_loss)
    ctx.check("mlp_accuracy", mlp_accuracy, ">=", 1.0)

    record_systems(ctx, "mlp", mlp, INPUTS, step_seconds=mlp_step_seconds, what=f"MLP 2-{hidden}-1")
    plot_losses(ctx, {"single layer": single_losses, f"2-layer MLP ({hidden} tanh units)": mlp_losses})
    plot_boundaries(ctx, {"single layer: stuck at 0.5": single, "2-layer MLP: XOR solved": mlp})

"""Milestone 04: convolutional networks (LeCun, Bottou, Bengio and Haffner, 1998).

A convolution slides one small learned filter over the whole image, so a network needs few
weights and recognises a stroke or an edge wherever it appears; pooling then makes the
answer tolerant to small shifts. Two runs:

1. **LeNet on TinyDigits** (quick mode runs only this): two convolution + pooling stages
   and three fully connected layers, in LeNet-5's shape, on the embedded 8x8 digits.
   Target >= 97% test accuracy, in seconds.
2. **A CNN with batch norm on CIFAR-10** (32x32 colour photos, ten classes): seven 3x3
   convolutions with batch normalisation, trained with augmentation (random crops of the
   zero-padded image, horizontal flips), label smoothing, SGD with Nesterov momentum and a
   one-cycle learning-rate schedule. Target >= 85% test accuracy within 20 minutes, counted
   from the first training step to the end of the final evaluation, on a 2-core CPU. The
   budget holds by construction: tt-learn's ``TimeBudget`` re-plans the number of epochs and
   the one-cycle schedule's length after every epoch from the measured time of whole epochs
   (augmentation, data loading and the per-epoch evaluation included) and keeps time for the
   final evaluation, so a slower or busier machine trains fewer epochs (a lower accuracy)
   instead of overrunning. The per-epoch curves are measured on every fifth test image
   (2,000, all classes alike: the test split is sorted by class); the reported accuracy is
   on all 10,000, averaged over six views of each image (test-time augmentation: the image
   and its mirror image, each as it is and shifted by one pixel up-left and down-right, the
   unshifted views weighted double).

The report holds the learning curves, per-class accuracy, the confusion matrix, a grid of
test images with their predicted labels and the gradient flow (the gradient norm and
update-to-weight ratio of every filter bank and weight matrix, per epoch), for each data set.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import tt_core
from tt_core import Tensor

from ..api import RunContext
from ..systems import count as si_count
from ..systems import record_systems, step_seconds_from_history
from .gradient_flow import report_gradient_flow

CIFAR_WIDTHS = (32, 64, 128, 256)

LENET = {"epochs": 15, "batch_size": 32, "max_lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}
CIFAR = {
    "widths": CIFAR_WIDTHS, "max_epochs": 16, "batch_size": 256, "max_lr": 0.2, "momentum": 0.9, "weight_decay": 5e-4,
    "label_smoothing": 0.2, "crop_padding": 4, "budget_minutes": 20.0, "eval_batch_size": 500, "curve_images": 2000,
}
# test-time augmentation: (pixels shifted right and down, mirrored, weight) of each view
TTA_VIEWS = ((0, False, 0.25), (0, True, 0.25), (-1, False, 0.125), (-1, True, 0.125), (1, False, 0.125),
             (1, True, 0.125))


# ----------------------------------------------------------------------------------------
# The networks (``nn`` names the layer classes, PyTorch's or TinyTorch's)
# ----------------------------------------------------------------------------------------


def layer_kit(ctx: RunContext) -> SimpleNamespace:
    """The layer classes this milestone builds from, as the registry provides them."""
    layer = lambda name: ctx.component("layer", name)
    return SimpleNamespace(
        Conv2d=layer("Conv2d"), MaxPool2d=layer("MaxPool2d"), BatchNorm2d=layer("BatchNorm2d"),
        Flatten=layer("Flatten"), Linear=layer("Linear"), ReLU=ctx.component("activation", "ReLU"),
        Sequential=tt_core.Sequential,
    )


def lenet(nn: SimpleNamespace, classes: int = 10):
    """LeNet-5's shape for 8x8 digits: (conv 3x3, batch norm, ReLU, max-pool 2) twice, then
    fully connected layers of 120, 84 and 10 units. 8x8 -> 4x4 (6 maps) -> 2x2 (16 maps) -> 64.

    Batch norm (2015, not in the 1998 LeNet) makes the result steady from seed to seed.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes),
    )


def cifar_net(nn: SimpleNamespace, widths: tuple[int, int, int, int] = CIFAR_WIDTHS, classes: int = 10):
    """The CIFAR-10 network: seven 3x3 convolutions, each followed by batch norm and ReLU.

    ``nn`` names the layer classes (``Conv2d``, ``MaxPool2d``, ``BatchNorm2d``, ``ReLU``,
    ``Flatten``, ``Linear``, ``Sequential``) with PyTorch's signatures, so the same function
    builds the TinyTorch model and, for the benchmark, the PyTorch one (``nn=torch.nn``).

    Resolution halves after the stem and after the first convolution of each stage
    (32 -> 16 -> 8 -> 4 -> 2 -> 1), pooling *before* batch norm so that the normalisation
    runs on four times fewer pixels. Convolutions carry no bias (batch norm's shift does it).
    """

    def conv_bn(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        return layers + [nn.BatchNorm2d(cout), nn.ReLU()]

    stem, w1, w2, w3 = widths
    return nn.Sequential(
        *conv_bn(3, stem, pool=True),                                 # 32x32 -> 16x16
        *conv_bn(stem, w1, pool=True), *conv_bn(w1, w1, pool=False),  # -> 8x8
        *conv_bn(w1, w2, pool=True), *conv_bn(w2, w2, pool=False),    # -> 4x4
        *conv_bn(w2, w3, pool=True), *conv_bn(w3, w3, pool=False),    # -> 2x2
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(w3, classes),        # -> 1x1
    )


# ----------------------------------------------------------------------------------------
# Training and evaluation
# ----------------------------------------------------------------------------------------


def loaders(ctx: RunContext, train, test, batch_size: int, eval_batch_size: int, augment=None, curve_images=None):
    """Shuffled training batches (with ``augment`` applied) and in-order test batches; with
    ``curve_images``, also the batches of that many test images spread evenly over the split
    (for per-epoch curves: CIFAR-10's test split is sorted by class)."""
    DataLoader = ctx.component("loader", "DataLoader")
    TensorDataset = ctx.component("dataset_class", "TensorDataset")
    Compose = ctx.component("transform", "Compose")
    normalize = ctx.component("transform", "Normalize")(*channel_stats(train[0]))
    train_transform = Compose([*(augment or []), normalize])
    train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True, transform=train_transform)
    test_loader = DataLoader(TensorDataset(*test), batch_size=eval_batch_size, transform=normalize)
    if curve_images is None:
        return train_loader, test_loader
    spread = tuple(array[::max(1, len(array) // curve_images)][:curve_images] for array in test)
    return train_loader, test_loader, DataLoader(TensorDataset(*spread), batch_size=eval_batch_size, transform=normalize)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a uint8 image set (N, C, H, W)."""
    pixels = images.transpose(1, 0, 2, 3).reshape(images.shape[1], -1)
    return pixels.mean(axis=1, dtype=np.float64), pixels.std(axis=1, dtype=np.float64)


def make_trainer(ctx: RunContext, model, settings: dict, steps: int, label_smoothing: float = 0.0, budget=None):
    """The registry's Trainer with SGD (Nesterov momentum) and a one-cycle schedule, recording
    the gradient flow; ``budget`` (a ``TimeBudget``) makes it re-plan epochs and schedule."""
    optimizer = ctx.component("optimizer", "SGD")(
        model.parameters(), lr=settings["max_lr"], momentum=settings["momentum"], nesterov=True,
        weight_decay=settings["weight_decay"],
    )
    scheduler = ctx.component("scheduler", "OneCycleLR")(optimizer, max_lr=settings["max_lr"], total_steps=steps)
    loss_fn = ctx.component("loss", "CrossEntropyLoss")(label_smoothing=label_smoothing)
    accuracy = ctx.component("metric", "accuracy")
    return ctx.component("trainer", "Trainer")(
        model, optimizer, loss_fn, scheduler, metrics={"accuracy": accuracy}, scheduler_interval="batch",
        console=ctx.console, progress=ctx.console is not None, track_gradients=True, budget=budget,
    )


def view(images: np.ndarray, shift: int, mirrored: bool) -> np.ndarray:
    """``images`` (N, C, H, W) shifted by ``shift`` pixels right and down (the uncovered border
    is 0, the mean after normalisation), mirrored left-right with ``mirrored``."""
    out = np.ascontiguousarray(images[..., ::-1]) if mirrored else images
    if shift:
        moved = np.zeros_like(out)
        if shift > 0:
            moved[..., shift:, shift:] = out[..., :-shift, :-shift]
        else:
            moved[..., :shift, :shift] = out[..., -shift:, -shift:]
        out = moved
    return out


def predict(ctx: RunContext, model, loader, views=((0, False, 1.0),)) -> np.ndarray:
    """Class scores for every batch of ``loader`` in eval mode: the weighted sum of the scores
    of each ``(shift, mirrored, weight)`` view of the images (see :func:`view`; one plain view
    by default, :data:`TTA_VIEWS` for test-time augmentation)."""
    model.eval()
    scores = []
    with ctx.component("function", "no_grad")():
        for x, _ in loader:
            scores.append(sum(weight * model(Tensor(view(x.data, shift, mirrored))).data
                              for shift, mirrored, weight in views))
    return np.concatenate(scores)


# ----------------------------------------------------------------------------------------
# The two runs
# ----------------------------------------------------------------------------------------


def run_lenet(ctx: RunContext) -> None:
    digits = ctx.component("dataset", "tinydigits")
    train, test = digits.load_arrays("train"), digits.load_arrays("test")
    settings = LENET
    train_loader, test_loader = loaders(ctx, train, test, settings["batch_size"], len(test[1]))
    model = lenet(layer_kit(ctx))
    ctx.configure(lenet={**settings, "parameters": model.num_parameters()})
    trainer = make_trainer(ctx, model, settings, settings["epochs"] * len(train_loader))
    start = time.perf_counter()
    history = trainer.fit(train_loader, test_loader, epochs=settings["epochs"])
    ctx.record("tinydigits_training_seconds", time.perf_counter() - start)
    report(ctx, "tinydigits", digits.classes, model, test_loader, test, history)
    report_gradient_flow(ctx, "tinydigits", trainer.gradient_stats, "LeNet on TinyDigits")
    what_it_learned(ctx, "tinydigits", "LeNet", model, train_loader, test_loader, test, history, digits.classes)


def run_cifar(ctx: RunContext) -> None:
    cifar = ctx.component("dataset", "cifar10")
    train, test = cifar.load_arrays("train"), cifar.load_arrays("test")
    settings = CIFAR
    augment = [
        ctx.component("transform", "RandomCrop")(32, padding=settings["crop_padding"]),
        ctx.component("transform", "RandomHorizontalFlip")(),
    ]
    train_loader, test_loader, curve_loader = loaders(ctx, train, test, settings["batch_size"],
                                                      settings["eval_batch_size"], augment, settings["curve_images"])
    model = cifar_net(layer_kit(ctx), settings["widths"])
    ctx.configure(cifar10={**settings, "parameters": model.num_parameters(), "tta_views": TTA_VIEWS})
    # the budget counts from here to the end of the final evaluation, which it keeps time for:
    # len(TTA_VIEWS) passes over all test images, in passes over the curve's images
    final_passes = len(TTA_VIEWS) * len(test[1]) / settings["curve_images"]
    budget = ctx.component("function", "TimeBudget")(settings["budget_minutes"] * 60, final_evaluations=final_passes)
    trainer = make_trainer(ctx, model, settings, settings["max_epochs"] * len(train_loader),
                           settings["label_smoothing"], budget)
    history = trainer.fit(train_loader, curve_loader, epochs=settings["max_epochs"])
    scores = predict(ctx, model, test_loader, TTA_VIEWS)
    minutes = budget.elapsed() / 60
    ctx.record("cifar10_epochs_trained", len(history))
    ctx.check("cifar10_training_minutes", minutes, "<=", settings["budget_minutes"])
    ctx.record("cifar10_test_accuracy_one_view", float(np.mean(predict(ctx, model, test_loader).argmax(1) == test[1])))
    report(ctx, "cifar10", cifar.classes, model, test_loader, test, history, scores)
    report_gradient_flow(ctx, "cifar10", trainer.gradient_stats, "CNN on CIFAR-10")
    tt_core.save(model.state_dict(), ctx.out / "cifar10_cnn.npz")  # after the checks: a failed save keeps them
    what_it_learned(ctx, "cifar10", "CIFAR-10 CNN", model, train_loader, test_loader, test, history, cifar.classes)


def report(ctx: RunContext, name: str, classes, model, test_loader, test, history, scores=None) -> None:
    """The test-accuracy check, the history and the plots of one run."""
    images, labels = test
    scores = predict(ctx, model, test_loader) if scores is None else scores
    predicted = scores.argmax(axis=1)
    target = {"tinydigits": 0.97, "cifar10": 0.85}[name]
    ctx.check(f"{name}_test_accuracy", float(np.mean(predicted == labels)), ">=", target)
    confusion = np.bincount(labels * len(classes) + predicted, minlength=len(classes) ** 2).reshape(len(classes), -1)
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    ctx.record(f"{name}_per_class_accuracy", dict(zip(classes, per_class.round(4).tolist())))
    ctx.record(f"{name}_history", [{k: round(float(v), 5) for k, v in row.items()} for row in history])
    plot_curves(ctx, name, history)
    plot_per_class(ctx, name, classes, per_class)
    plot_confusion(ctx, name, classes, confusion)
    plot_predictions(ctx, name, classes, images, labels, predicted)


# ----------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------


def plot_curves(ctx: RunContext, name: str, history) -> None:
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = ctx.figure(1, 2, figsize=(10, 4))
    left.plot(epochs, [row["loss"] for row in history], marker="o", label="train")
    left.plot(epochs, [row["val_loss"] for row in history], marker="o", label="test")
    left.set(xlabel="epoch", ylabel="cross-entropy", title=f"{name}: loss")
    right.plot(epochs, [row["accuracy"] for row in history], marker="o", label="train")
    right.plot(epochs, [row["val_accuracy"] for row in history], marker="o", label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title=f"{name}: accuracy")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    ctx.save_figure(fig, f"{name}_curves.png", f"{name}: training and test loss and accuracy per epoch.")


def plot_per_class(ctx: RunContext, name: str, classes, per_class: np.ndarray) -> None:
    fig, ax = ctx.figure(figsize=(8, 4))
    ax.bar(range(len(classes)), per_class, color="#3d85c6")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set(ylim=(0, 1), ylabel="test accuracy", title=f"{name}: accuracy per class")
    for i, value in enumerate(per_class):
        ax.text(i, value + 0.01, f"{value:.0%}", ha="center", fontsize=8)
    ctx.save_figure(fig, f"{name}_per_class.png", f"{name}: test accuracy of each class.")


def plot_confusion(ctx: RunContext, name: str, classes, confusion: np.ndarray) -> None:
    fig, ax = ctx.figure(figsize=(7, 6))
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=f"{name}: confusion matrix (test)")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, count, ha="center", va="center", fontsize=7,
                color="white" if count > confusion.max() / 2 else "black")
    ctx.save_figure(fig, f"{name}_confusion.png", f"{name}: how many test images of each true class (rows) got "
                    "each predicted class (columns).")


def plot_predictions(ctx: RunContext, name: str, classes, images, labels, predicted, rows: int = 4, cols: int = 8) -> None:
    """Test images spread over the test set, with their predicted class (red when wrong,
    with the truth)."""
    fig, axes = ctx.figure(rows, cols, figsize=(cols * 1.4, rows * 1.6))
    for k, ax in zip(np.linspace(0, len(labels) - 1, rows * cols).astype(int), axes.ravel()):
        image = images[k].transpose(1, 2, 0)
        ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray" if image.shape[2] == 1 else None)
        right = predicted[k] == labels[k]
        title = classes[predicted[k]] if right else f"{classes[predicted[k]]}\n(is {classes[labels[k]]})"
        ax.set_title(title, fontsize=7, color="green" if right else "red")
        ax.axis("off")
    ctx.save_figure(fig, f"{name}_predictions.png", f"{name}: test images spread over the test set with the "
                    "predicted class, green when right, red with the true class when wrong.")


# ----------------------------------------------------------------------------------------
# What the network learned, and what it costs
# ----------------------------------------------------------------------------------------


def what_it_learned(ctx: RunContext, name: str, title: str, model, train_loader, test_loader, test, history,
                    classes) -> None:
    """The systems figures of the trained ``model``, its first layer's filters, the feature maps
    of one test image after the first two stages, and its parameters against networks with the
    same receptive fields and no weight sharing."""
    x, _ = next(iter(test_loader))  # normalised test images, in order
    batch = train_loader.batch_size if hasattr(train_loader, "batch_size") else len(x)
    record_systems(ctx, name, model, Tensor(x.data[:batch]), what=title,
                   step_seconds=step_seconds_from_history(history, len(train_loader)))
    steps = layer_outputs(ctx, model, Tensor(x.data[:1]))
    plot_filters(ctx, name, steps)
    plot_feature_maps(ctx, name, steps, test[0][0], classes[int(test[1][0])], classes[int(steps[-1][2].argmax())])
    plot_weight_sharing(ctx, name, model, steps)


def layer_outputs(ctx: RunContext, model, image: Tensor) -> list[tuple]:
    """``(layer, input array, output array)`` for each layer of the Sequential ``model`` on
    ``image`` (1, C, H, W), run one layer at a time in eval mode without a graph."""
    was_training = model.training
    model.eval()
    steps, x = [], image
    try:
        with ctx.component("function", "no_grad")():
            for layer in model:
                out = layer(x)
                steps.append((layer, x.data, out.data))
                x = out
    finally:
        model.train(was_training)
    return steps


def _is_conv(layer) -> bool:
    weight = getattr(layer, "weight", None)
    return weight is not None and weight.ndim == 4


def stage_outputs(steps: list[tuple]) -> list[np.ndarray]:
    """The output of each convolutional stage: what enters the next convolution, and for the
    last stage what leaves the convolutional part (the first layer whose output is not a map)."""
    ends = [i for i, (layer, _, _) in enumerate(steps) if _is_conv(layer)][1:]
    ends += [next((i for i, (_, _, out) in enumerate(steps) if out.ndim != 4), len(steps))]
    return [steps[i - 1][2][0] for i in ends]


def plot_filters(ctx: RunContext, name: str, steps: list[tuple], cols: int = 8) -> None:
    """The first convolution's filters as a grid: colour when it reads RGB (each filter
    stretched to the full range), else one grey scale shared by all filters."""
    layer = next(layer for layer, _, _ in steps if _is_conv(layer))
    weights = layer.weight.data
    count_, channels, kh, kw = weights.shape
    rows = -(-count_ // cols)
    fig, axes = ctx.figure(rows, cols, figsize=(cols * 1.1, rows * 1.2 + 0.6), squeeze=False)
    limit = float(np.abs(weights).max()) or 1.0
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:count_]):
        if channels == 3:
            w = weights[i].transpose(1, 2, 0)
            ax.imshow((w - w.min()) / (np.ptp(w) or 1.0), interpolation="nearest")
        else:
            ax.imshow(weights[i, 0], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(str(i), fontsize=7)
    kind = "RGB, each filter stretched to full range" if channels == 3 else "dark negative, light positive"
    fig.suptitle(f"{name}: the {count_} learned {kh}x{kw} filters of the first convolution ({kind})", fontsize=9)
    ctx.save_figure(fig, f"{name}_filters.png", f"{name}: the first convolution's {count_} learned {kh}x{kw} "
                    f"filters as images ({kind}).")


def plot_feature_maps(ctx: RunContext, name: str, steps: list[tuple], image: np.ndarray, label: str,
                      predicted: str, cols: int = 8, most: int = 32) -> None:
    """One test image, then (up to ``most``) feature maps after stage 1 and after stage 2."""
    stages = stage_outputs(steps)[:2]
    blocks = [-(-min(len(maps), most) // cols) for maps in stages]
    fig, axes = ctx.figure(1 + sum(blocks), cols, figsize=(cols * 1.1, (1 + sum(blocks)) * 1.15 + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    picture = image.transpose(1, 2, 0)
    axes[0, 0].imshow(picture[..., 0] if picture.shape[2] == 1 else picture, cmap="gray_r" if picture.shape[2] == 1 else None)
    axes[0, 0].set_title(f"input: {label}\n(predicted {predicted})", fontsize=7)
    row = 1
    for number, (maps, rows) in enumerate(zip(stages, blocks), start=1):
        shown = maps[:most]
        for i, ax in enumerate(axes[row:row + rows].ravel()[:len(shown)]):
            ax.imshow(shown[i], cmap="viridis", interpolation="nearest")
            ax.set_title(f"stage {number}, map {i}" if i == 0 else str(i), fontsize=6)
        row += rows
    shapes = "; ".join(f"stage {i}: {len(m)} maps of {m.shape[1]}x{m.shape[2]}" for i, m in enumerate(stages, start=1))
    fig.suptitle(f"{name}: feature maps of the first test image ({shapes})", fontsize=9)
    ctx.save_figure(fig, f"{name}_feature_maps.png", f"{name}: the first test image ({label}, predicted {predicted}) "
                    f"and its feature maps after the first and second convolutional stages ({shapes}; up to {most} "
                    "maps each, bright = strong activation).")


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


def _taps_inside(size_in: int, size_out: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Along one axis: the kernel taps that fall inside the input (not on padding), summed
    over the output positions."""
    taps = (np.arange(size_out) * stride - padding)[:, None] + np.arange(kernel)[None, :] * dilation
    return int(np.count_nonzero((taps >= 0) & (taps < size_in)))


def weight_sharing(steps: list[tuple]) -> list[dict]:
    """Per convolution: its parameters; those of a locally connected layer with the same
    receptive fields but its own weights at every output position (one per input value each
    position sees; padding needs none); and those of a fully connected layer from the same
    input to the same output. Stride, padding and dilation are read from the layer (1, 0, 1
    when it has none of these attributes)."""
    rows = []
    for layer, x, out in steps:
        if not _is_conv(layer):
            continue
        weight = layer.weight.data
        bias = getattr(layer, "bias", None)
        units = int(np.prod(out.shape[1:]))  # output channels x positions
        biases = units if bias is not None else 0
        stride, padding, dilation = (_pair(getattr(layer, name, default))
                                     for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)))
        seen = np.prod([_taps_inside(x.shape[2 + a], out.shape[2 + a], weight.shape[2 + a], stride[a], padding[a],
                                     dilation[a]) for a in (0, 1)])
        rows.append({
            "layer": f"conv {weight.shape[1]}->{weight.shape[0]}, {weight.shape[2]}x{weight.shape[3]}, "
                     f"{out.shape[2]}x{out.shape[3]} out",
            "shared": int(weight.size + (bias.size if bias is not None else 0)),
            "locally_connected": int(weight.shape[0] * weight.shape[1] * seen + biases),
            "fully_connected": int(np.prod(x.shape[1:]) * units + biases),
        })
    return rows


def plot_weight_sharing(ctx: RunContext, name: str, model, steps: list[tuple]) -> None:
    """Bars (log scale) of each convolution's parameters against the unshared alternatives,
    and the whole network's totals; recorded as ``<name>_weight_sharing``."""
    rows = weight_sharing(steps)
    total = model.num_parameters()
    shared = sum(r["shared"] for r in rows)
    totals = {kind: total - shared + sum(r[kind] for r in rows) for kind in ("shared", "locally_connected", "fully_connected")}
    ctx.record(f"{name}_weight_sharing", {"layers": rows, "network_totals": totals})
    fig, ax = ctx.figure(figsize=(max(6.0, 1.4 * len(rows) + 3), 4.5))
    positions = np.arange(len(rows) + 1)
    labels = [r["layer"].replace(", ", "\n") for r in rows] + ["whole\nnetwork"]
    kinds = (("shared", "convolution (shared weights)", "tab:blue"),
             ("locally_connected", "same receptive fields, unshared", "tab:orange"),
             ("fully_connected", "fully connected", "tab:red"))
    for offset, (kind, label, colour) in zip((-0.27, 0, 0.27), kinds):
        values = [r[kind] for r in rows] + [totals[kind]]
        ax.bar(positions + offset, values, width=0.27, label=label, color=colour)
    ax.set_xticks(positions, labels, fontsize=7)
    ax.set(yscale="log", ylabel="parameters (log scale)",
           title=f"{name}: {si_count(totals['shared'])} parameters with weight sharing, "
                 f"{si_count(totals['locally_connected'])} without")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ctx.save_figure(fig, f"{name}_weight_sharing.png", f"{name}: parameters of each convolution and of the whole "
                    "network (log scale) against a locally connected layer with the same receptive fields but "
                    "unshared weights, and a fully connected layer (computed, not trained).")


def run(ctx: RunContext) -> None:
    # every data file this run reads is checked (or downloaded) before the first training step,
    # and all that are missing or corrupt are named at once (TinyDigits is embedded: nothing to check)
    ctx.component("function", "require_data")("tinydigits", *(() if ctx.quick else ("cifar10",)))
    with ctx.phase("tinydigits"):
        run_lenet(ctx)
    if not ctx.quick:
        with ctx.phase("cifar10"):
            run_cifar(ctx)

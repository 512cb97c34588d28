"""The compression pipeline for a trained classifier: Deep Compression's three stages, measured.

1. **Measure the float32 model**: file size (``tt_core.save`` of its state dict), test
   accuracy, latency on a batch.
2. **Prune** its Linear/Conv2d weights by global magnitude, rising to ``sparsity`` along the
   cubic schedule while fine-tuning (Adam), so the network adapts to each cut; then **fold**
   each BatchNorm2d into the convolution before it (inference form, arrays less). Stored
   sparse with :func:`tt_perf.storage.save_compressed` (bitmask + float32 non-zeros).
3. **Share weights**: per layer, a k-means codebook of ``clusters`` centroids over the
   surviving weights (:func:`tt_perf.sharing.share_weights`). Stored as gaps + uint8 codes +
   codebooks, not yet entropy coded (:func:`tt_perf.coding.save_coded` with ``entropy=False``).
4. **Entropy-code** that layout with LZMA (:func:`tt_perf.coding.save_coded`).

The accuracy of the last stage is that of a model rebuilt from the file
(:func:`load_compressed_model`), not of the one in memory. Every accuracy is measured on the
same test set, so the report shows what each stage costs. Sizes are bytes of real files on
disk.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tt_core
from tt_core import Module, Tensor
from tt_learn.losses import CrossEntropyLoss
from tt_learn.optim import Adam
from tt_learn.train import batches

from .accelerate import fold_batchnorms
from .coding import load_coded, save_coded
from .pruning import Pruner, SparsitySchedule, prune_finetune
from .sharing import share_weights
from .storage import save_compressed
from .timing import measure


def predict(model: Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class scores of ``model`` on ``x``, in batches, without recording a graph."""
    previous = tt_core.set_grad_enabled(False)
    try:
        return np.concatenate([model(Tensor(x[i:i + batch_size])).data for i in range(0, len(x), batch_size)])
    finally:
        tt_core.set_grad_enabled(previous)


def accuracy(model: Module, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy in percent."""
    model.eval()
    return 100.0 * float(np.mean(predict(model, x).argmax(axis=1) == y))


def latency_ms(model: Module, batch: np.ndarray, repeats: int = 20) -> float:
    return measure(lambda: predict(model, batch, len(batch)), warmup=3, repeats=repeats).median_ms


def load_compressed_model(path: str | os.PathLike, architecture: Module) -> Module:
    """A working model rebuilt from a :func:`save_coded` file: a BatchNorm-folded copy of
    ``architecture`` (any trained or untrained instance of the network) with the file's weights."""
    model = fold_batchnorms(architecture)
    model.load_state_dict(load_coded(path))
    return model.eval()


@dataclass
class CompressionReport:
    """Sizes (bytes on disk), test accuracies (%) and latencies (ms) of each stage."""

    name: str
    float_bytes: int
    pruned_bytes: int  # pruned + folded, float32 non-zeros stored sparse
    shared_bytes: int  # + k-means codebooks: gaps, uint8 codes, codebooks, not entropy coded
    compressed_bytes: int  # + entropy coding (the final file)
    float_accuracy: float
    pruned_accuracy: float
    compressed_accuracy: float  # of the model loaded back from the final file
    float_latency_ms: float
    compressed_latency_ms: float
    sparsity: float
    clusters: int
    finetune_steps: int

    @property
    def ratio(self) -> float:
        return self.float_bytes / self.compressed_bytes

    @property
    def accuracy_drop(self) -> float:
        """Points of test accuracy lost (negative: gained)."""
        return self.float_accuracy - self.compressed_accuracy

    def to_dict(self) -> dict:
        return asdict(self) | {"ratio": self.ratio, "accuracy_drop": self.accuracy_drop}


def compress_classifier(model: Module, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                        test_y: np.ndarray, out: str | os.PathLike, *, name: str = "model", sparsity: float = 0.9,
                        clusters: int = 16, finetune_steps: int = 1000, batch_size: int = 64, lr: float = 5e-4,
                        prune_every: int = 20, latency_batch: int = 64,
                        on_step: Callable[[int, float, float], None] | None = None) -> tuple[Module, CompressionReport]:
    """Prune (with fine-tuning), fold, share weights and entropy-code a trained classifier.

    ``model`` is not changed. Returns the compressed model (loaded back from its file) and
    the report; the files ``<name>-float32.npz``, ``<name>-pruned.npz``, ``<name>-shared.npz``
    and ``<name>-compressed.npz`` go to ``out``.
    """
    out = Path(out)
    model.eval()
    float_bytes = os.path.getsize(tt_core.save(model.state_dict(), out / f"{name}-float32.npz"))
    float_accuracy = accuracy(model, test_x, test_y)
    batch = test_x[:latency_batch]
    float_latency = latency_ms(model, batch)

    pruned = copy.deepcopy(model)
    pruner = Pruner(pruned, scope="global")
    schedule = SparsitySchedule(final=sparsity, steps=max(1, int(0.75 * finetune_steps)))
    loader = batches(train_x, train_y, batch_size, shuffle=True)
    prune_finetune(pruned, pruner, schedule, loader, CrossEntropyLoss(), Adam(pruned.parameters(), lr=lr),
                   steps=finetune_steps, prune_every=prune_every, on_step=on_step)
    pruned = fold_batchnorms(pruned)
    pruned_bytes = os.path.getsize(save_compressed(pruned, out / f"{name}-pruned.npz"))
    pruned_accuracy = accuracy(pruned, test_x, test_y)

    share_weights(pruned, clusters)
    shared_bytes = os.path.getsize(save_coded(pruned, out / f"{name}-shared.npz", entropy=False))
    path = save_coded(pruned, out / f"{name}-compressed.npz")
    compressed = load_compressed_model(path, model)  # what is measured is what the file holds
    report = CompressionReport(
        name=name, float_bytes=float_bytes, pruned_bytes=pruned_bytes, shared_bytes=shared_bytes,
        compressed_bytes=os.path.getsize(path), float_accuracy=float_accuracy, pruned_accuracy=pruned_accuracy,
        compressed_accuracy=accuracy(compressed, test_x, test_y), float_latency_ms=float_latency,
        compressed_latency_ms=latency_ms(compressed, batch), sparsity=pruner.sparsity(), clusters=clusters,
        finetune_steps=finetune_steps,
    )
    return compressed, report

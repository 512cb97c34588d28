"""Metrics on model outputs: plain functions of (output, target) returning NumPy values.

Examples:
    >>> import numpy as np
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), np.array([0, 1, 1]))
    0.6666666666666666
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), num_classes=2)
    array([[1, 1],
           [0, 1]])
"""

from __future__ import annotations

import numpy as np
from tt_core import ShapeError, Tensor


def _array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def predictions(output, target_shape: tuple, threshold: float = 0.0) -> np.ndarray:
    """Predicted labels from a model's ``output`` for targets of ``target_shape``:

    * scores with one more axis than the targets (class scores on the last axis): ``argmax``;
    * integer or boolean outputs of the targets' shape: the labels themselves;
    * float outputs of the targets' shape (binary): ``output > threshold`` as 0/1
      (``threshold`` 0 for logits, 0.5 for probabilities).

    Examples:
        >>> import numpy as np
        >>> predictions(np.array([[0.1, 0.9], [0.8, 0.2]]), (2,)).tolist()  # class scores
        [1, 0]
        >>> predictions(np.array([-0.5, 2.0]), (2,)).tolist()  # binary logits
        [0, 1]
    """
    output = _array(output)
    if output.ndim == len(target_shape) + 1 and output.shape[:-1] == tuple(target_shape):
        if output.shape[-1] == 1:
            raise ShapeError(
                f"outputs of shape {output.shape} have one score per sample, targets {tuple(target_shape)}: "
                "for binary outputs give targets of the outputs' shape (or squeeze the last axis)"
            )
        return output.argmax(axis=-1)
    if output.shape != tuple(target_shape):
        raise ShapeError(
            f"cannot compare outputs of shape {output.shape} with targets of shape {tuple(target_shape)}: "
            "give class scores with one more (last) axis than the targets, or labels of the targets' shape"
        )
    if output.dtype.kind in "biu":
        return output
    return (output > threshold).astype(np.int64)


def accuracy(output, target, threshold: float = 0.0) -> float:
    """The fraction of correct predictions (see :func:`predictions` for what ``output`` may be).

    Args:
        output: class scores (N, C) (or (..., C)), labels (N,), or binary logits or
            probabilities of the target's shape.
        target: the true labels (integers, or 0/1 floats for binary outputs).
        threshold: decision threshold for binary float outputs (0 for logits, default).
    """
    target = _array(target)
    if target.size == 0:
        raise ShapeError("accuracy of an empty batch is undefined")
    return float(np.mean(predictions(output, target.shape, threshold) == target))


def confusion_matrix(output, target, num_classes: int, threshold: float = 0.0) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    target = _array(target)
    predicted = predictions(output, target.shape, threshold).ravel()
    labels = target.astype(np.int64).ravel()
    for name, values in (("target", labels), ("prediction", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} labels must be in [0, {num_classes - 1}], got values in [{values.min()}, {values.max()}]"
            )
    counts = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)

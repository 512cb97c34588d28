"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): a small student learns from a big teacher.

A trained teacher's output is more informative than the label alone: for an image of a 7, it
says how much the image also looks like a 1 or a 9. Softened by a temperature ``T``
(``softmax(logits / T)``), these "dark knowledge" probabilities are the student's targets:

    loss = alpha * T² * KL(softmax(teacher / T) || softmax(student / T))
         + (1 - alpha) * cross_entropy(student, labels)

The ``T²`` keeps the soft term's gradients on the same scale as the hard term's whatever the
temperature. The KL divergence is computed as ``sum p_t (log p_t - log p_s)``; ``p_t`` is a
constant (the teacher is not trained).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import tt_core
from tt_core import Module, Tensor
from tt_learn.losses import cross_entropy


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def distillation_loss(student_logits: Tensor, teacher_logits, targets, temperature: float = 4.0,
                      alpha: float = 0.7) -> Tensor:
    """The distillation loss above, averaged over the batch (a Tensor that can ``backward()``)."""
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got temperature={temperature}, alpha={alpha}")
    teacher = np.asarray(teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits, np.float32)
    log_p_teacher = _log_softmax(teacher / temperature)
    p_teacher = np.exp(log_p_teacher)
    log_p_student = (student_logits * (1.0 / temperature)).log_softmax(axis=-1)
    entropy_term = float(np.sum(p_teacher * log_p_teacher)) / len(teacher)  # constant: no gradient
    cross_term = (log_p_student * Tensor._make(p_teacher)).sum() * (-1.0 / len(teacher))
    loss = (cross_term + entropy_term) * (alpha * temperature**2)
    if alpha < 1:
        loss = loss + cross_entropy(student_logits, targets) * (1 - alpha)
    return loss


def distill(student: Module, teacher: Module, batches: Iterable, optimizer, *, epochs: int = 1,
            temperature: float = 4.0, alpha: float = 0.7,
            on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``student`` on ``batches`` of ``(x, y)`` to match ``teacher`` (see the module docstring).

    Returns the mean loss of every epoch.
    """
    teacher.eval()
    student.train()
    history = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for x, y in batches:
            x = x if isinstance(x, Tensor) else Tensor(x)
            previous = tt_core.set_grad_enabled(False)
            try:
                teacher_logits = teacher(x).data
            finally:
                tt_core.set_grad_enabled(previous)
            loss = distillation_loss(student(x), teacher_logits, y, temperature, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.item()) * len(teacher_logits), count + len(teacher_logits)
        history.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    student.eval()
    return history

import numpy as np
import pytest
import tt_core
from tt_core import Tensor
from tt_learn.optim import Adam
from tt_learn.train import batches
from tt_perf.distill import distill, distillation_loss


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_loss_value_and_gradient_match_the_formula(rng):
    student = rng.standard_normal((6, 5)).astype(np.float32)
    teacher = rng.standard_normal((6, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, 6)
    t, alpha = 3.0, 0.6
    logits = Tensor(student, requires_grad=True)
    loss = distillation_loss(logits, teacher, labels, temperature=t, alpha=alpha)
    p_t, p_s = softmax(teacher / t), softmax(student / t)
    kl = np.sum(p_t * (np.log(p_t) - np.log(p_s))) / 6
    ce = -np.mean(np.log(softmax(student))[np.arange(6), labels])
    assert loss.item() == pytest.approx(alpha * t * t * kl + (1 - alpha) * ce, rel=1e-5)
    loss.backward()
    onehot = np.eye(5)[labels]
    expected = (alpha * t * (p_s - p_t) + (1 - alpha) * (softmax(student) - onehot)) / 6
    np.testing.assert_allclose(logits.grad.data, expected, atol=1e-6)


def test_kl_part_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    student = rng.standard_normal((4, 7)).astype(np.float32)
    teacher = rng.standard_normal((4, 7)).astype(np.float32)
    ours = distillation_loss(Tensor(student), teacher, np.zeros(4, int), temperature=2.0, alpha=1.0).item()
    kl = torch.nn.functional.kl_div(torch.log_softmax(torch.tensor(student) / 2, -1),
                                    torch.softmax(torch.tensor(teacher) / 2, -1), reduction="batchmean")
    assert ours == pytest.approx(4 * kl.item(), rel=1e-5)


def test_student_learns_to_agree_with_teacher(mlp, rng):
    x = rng.standard_normal((256, 64)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    tt_core.manual_seed(2)
    student = tt_core.Sequential(tt_core.Linear(64, 16), tt_core.ReLU(), tt_core.Linear(16, 10))

    def agreement():
        return np.mean(student(Tensor(x)).data.argmax(1) == mlp(Tensor(x)).data.argmax(1))

    before = agreement()
    history = distill(student, mlp, batches(x, y, 32, shuffle=True), Adam(student.parameters(), lr=1e-2),
                      epochs=8, alpha=1.0)
    assert history[-1] < history[0]
    assert agreement() > max(before, 0.6)


def test_bad_hyper_parameters():
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(Tensor(np.zeros((1, 2))), np.zeros((1, 2)), [0], temperature=0)

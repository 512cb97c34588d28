"""Gradients against PyTorch as the oracle (skipped cleanly when torch is not installed).

Random composite expressions are built from a table of operations, each written once for
TinyTorch and once for PyTorch, and run in float64 on the same data: the gradients of every
leaf must agree to 1e-5.
"""

import numpy as np
import pytest
import tt_core as tt

torch = pytest.importorskip("torch")

SHAPE = (4, 5)
ROWS = [0, 0, 3, 1]  # repeated rows: a scatter-add in the backward pass
FLIP = [4, 3, 2, 1, 0]

# name -> (number of operands, TinyTorch form, PyTorch form); every one maps (4, 5) tensors to (4, 5)
OPS = {
    "add": (2, lambda a, b: a + b, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    "pow": (2, lambda a, b: (a * a + 1.0) ** b.tanh(), lambda a, b: (a * a + 1.0) ** b.tanh()),
    "matmul": (2, lambda a, b: (a @ b.T) @ a * 0.1, lambda a, b: (a @ b.T) @ a * 0.1),
    "row_broadcast": (2, lambda a, b: a + b.mean(axis=0), lambda a, b: a + b.mean(dim=0)),
    "row_index": (2, lambda a, b: a * b[1], lambda a, b: a * b[1]),
    "elementwise_max": (2, lambda a, b: tt.where(a.data > b.data, a, b), lambda a, b: torch.where(a > b, a, b)),
    "neg": (1, lambda a: -a, lambda a: -a),
    "exp_tanh": (1, lambda a: a.tanh().exp(), lambda a: a.tanh().exp()),
    "log": (1, lambda a: (a * a + 1.0).log(), lambda a: (a * a + 1.0).log()),
    "sqrt": (1, lambda a: (a * a + 0.5).sqrt(), lambda a: (a * a + 0.5).sqrt()),
    "abs": (1, lambda a: a.abs(), lambda a: a.abs()),
    "clip": (1, lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7)),
    "relu": (1, lambda a: a.relu(), lambda a: a.relu()),
    "sigmoid": (1, lambda a: a.sigmoid(), lambda a: a.sigmoid()),
    "tanh": (1, lambda a: a.tanh(), lambda a: a.tanh()),
    "gelu": (1, tt.functional.gelu, lambda a: torch.nn.functional.gelu(a, approximate="tanh")),
    "softmax": (1, lambda a: a.softmax(axis=0), lambda a: a.softmax(dim=0)),
    "log_softmax": (1, lambda a: a.log_softmax(axis=1), lambda a: a.log_softmax(dim=1)),
    "center_max": (1, lambda a: a - a.max(axis=1, keepdims=True), lambda a: a - a.max(dim=1, keepdim=True).values),
    "scale_min": (1, lambda a: a * a.min(axis=0, keepdims=True), lambda a: a * a.min(dim=0, keepdim=True).values),
    "full_max": (1, lambda a: a * a.max(), lambda a: a * a.max()),
    "sum_mean": (
        1,
        lambda a: a.sum(axis=1, keepdims=True) * 0.1 + a.mean() * a,
        lambda a: a.sum(dim=1, keepdim=True) * 0.1 + a.mean() * a,
    ),
    "transpose_reshape": (1, lambda a: a.T.reshape(SHAPE), lambda a: a.T.reshape(SHAPE)),
    "gather_rows": (1, lambda a: a[ROWS], lambda a: a[ROWS]),
    "flip_columns": (1, lambda a: a[:, FLIP], lambda a: a[:, FLIP]),
    "slices": (
        1,
        lambda a: tt.concatenate([a[:, :2], a[:, 2:] * 2.0], axis=1),
        lambda a: torch.cat([a[:, :2], a[:, 2:] * 2.0], dim=1),
    ),
    "stack": (1, lambda a: tt.stack([a, a * a], axis=-1).sum(axis=-1), lambda a: torch.stack([a, a * a], dim=-1).sum(dim=-1)),
    "mask": (1, lambda a: tt.where(a.data > 0, a, a * 0.1), lambda a: torch.where(a > 0, a, a * 0.1)),
}


def build(seed: int, steps: int = 6):
    """A random expression: its leaves' data and a list of (op name, operand positions)."""
    rng = np.random.default_rng(seed)
    leaves = [rng.standard_normal(SHAPE) for _ in range(3)]
    program, pool = [], len(leaves)
    names = sorted(OPS)
    for _ in range(steps):
        name = names[rng.integers(len(names))]
        arity = OPS[name][0]
        program.append((name, [int(i) for i in rng.integers(pool, size=arity)]))
        pool += 1
    weights = [rng.standard_normal(SHAPE) for _ in range(steps)]
    return leaves, program, weights


def run(leaves, program, weights, framework: int):
    """Evaluate the program (framework 1: TinyTorch, 2: PyTorch); the loss weights every
    intermediate result, so every step's gradient counts."""
    pool = list(leaves)
    loss = 0.0
    for (name, operands), weight in zip(program, weights):
        result = OPS[name][framework](*(pool[i] for i in operands))
        pool.append(result)
        loss = loss + (result * weight).sum()
    return loss


@pytest.mark.parametrize("seed", range(40))
def test_random_expressions_match_torch(seed):
    leaves, program, weights = build(seed)
    ours = [tt.tensor(x, dtype=np.float64, requires_grad=True) for x in leaves]
    theirs = [torch.tensor(x, requires_grad=True) for x in leaves]
    loss = run(ours, program, [tt.tensor(w, dtype=np.float64) for w in weights], 1)
    reference = run(theirs, program, [torch.tensor(w) for w in weights], 2)
    loss.backward()
    reference.backward()
    np.testing.assert_allclose(loss.item(), reference.item(), rtol=1e-10)
    for i, (x, y) in enumerate(zip(ours, theirs)):
        if y.grad is None:
            assert x.grad is None, f"leaf {i} is unused but got a gradient ({program})"
            continue
        np.testing.assert_allclose(x.grad.data, y.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"leaf {i}, {program}")


def test_every_op_appears_in_the_random_expressions():
    used = {name for seed in range(40) for name, _ in build(seed)[1]}
    assert used == set(OPS)


ACTIVATIONS = {
    "ReLU": (tt.ReLU(), torch.nn.ReLU()),
    "Sigmoid": (tt.Sigmoid(), torch.nn.Sigmoid()),
    "Tanh": (tt.Tanh(), torch.nn.Tanh()),
    "GELU": (tt.GELU(), torch.nn.GELU(approximate="tanh")),
    "Softmax": (tt.Softmax(axis=-1), torch.nn.Softmax(dim=-1)),
    "Softmax0": (tt.Softmax(axis=0), torch.nn.Softmax(dim=0)),
    "LogSoftmax": (tt.LogSoftmax(axis=-1), torch.nn.LogSoftmax(dim=-1)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_activation_matches_torch(name, dtype, tol):
    ours_layer, torch_layer = ACTIVATIONS[name]
    rng = np.random.default_rng(7)
    data = (rng.standard_normal((6, 7)) * 4).astype(dtype)
    weight = rng.standard_normal((6, 7)).astype(dtype)
    x = tt.tensor(data, dtype=dtype, requires_grad=True)
    y = torch.tensor(data, requires_grad=True)
    out, reference = ours_layer(x), torch_layer(y)
    (out * tt.tensor(weight, dtype=dtype)).sum().backward()
    (reference * torch.tensor(weight)).sum().backward()
    assert out.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(out.data, reference.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(x.grad.data, y.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [((3, 4), (4, 5)), ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))],
)
def test_matmul_matches_torch(shape_a, shape_b):
    rng = np.random.default_rng(3)
    a_data, b_data = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    a, b = (tt.tensor(v, dtype=np.float64, requires_grad=True) for v in (a_data, b_data))
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_data, b_data))
    out, reference = a @ b, ta @ tb
    weight = rng.standard_normal(reference.shape)
    (out * tt.tensor(weight, dtype=np.float64)).sum().backward()
    (reference * torch.tensor(weight)).sum().backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_mlp_step_gradients_match_torch():
    """A 2-layer MLP with a log-softmax loss: float32 parameter gradients agree with torch."""
    rng = np.random.default_rng(0)
    x_data = rng.standard_normal((8, 10)).astype(np.float32)
    labels = rng.integers(3, size=8)
    tt.manual_seed(0)
    model = tt.Sequential(tt.Linear(10, 16), tt.GELU(), tt.Linear(16, 3))
    reference = torch.nn.Sequential(
        torch.nn.Linear(10, 16), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(16, 3)
    )
    with torch.no_grad():
        for p, q in zip(model.parameters(), reference.parameters()):
            q.copy_(torch.from_numpy(p.data))
    logp = model(tt.tensor(x_data)).log_softmax(axis=1)
    loss = -logp[np.arange(8), labels].mean()
    loss.backward()
    ref_loss = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x_data)), torch.from_numpy(labels))
    ref_loss.backward()
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-4, atol=1e-6)

"""Kernels and rules meet as units: what used to fail silently now fails loudly, naming the op."""

import numpy as np
import pytest
import tt_core as tt
from tt_core import GradRule, Op, dispatch
from tt_core.dispatch import bind
from tt_core.errors import GradientRuleError
from tt_core.plugins import Component, ComponentRegistry


def _cube(ctx, x):
    return x * x * x


def _cube_grad(ctx, grad):
    return (grad * 3 * ctx.inputs[0] ** 2,)


def _install(monkeypatch, name, *components, use=()):
    """Bind op ``name`` from ``components`` and put it in the op table; returns the bound op."""
    registry = ComponentRegistry(use=use)
    for component in components:
        registry.add(component)
    bound, errors = bind(registry, name)
    monkeypatch.setitem(dispatch.OP_TABLE, name, bound)
    return bound, errors


def test_an_op_without_a_rule_raises_at_backward_naming_it(monkeypatch):
    _install(monkeypatch, "cube", Component("op", "cube", Op(_cube), "mine"))
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(GradientRuleError, match=r"op 'cube' \(kernel from mine\), which has no gradient rule"):
        (tt.apply("cube", x) + x).sum().backward()


def test_a_rule_under_a_misspelt_name_leaves_the_op_without_one(monkeypatch):
    bound, _ = _install(monkeypatch, "cube", Component("op", "cube", Op(_cube), "mine"),
                        Component("grad_rule", "cueb", GradRule(_cube_grad), "mine"))
    assert bound.backward is None


def test_the_op_with_its_rule_gives_the_right_gradient(monkeypatch):
    _install(monkeypatch, "cube", Component("op", "cube", Op(_cube, _cube_grad), "mine"))
    x = tt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (tt.apply("cube", x) + x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 13.0, 28.0])


def test_a_rule_returning_too_few_gradients_raises(monkeypatch):
    def short(ctx, grad):
        return (grad,)  # mul has two inputs

    _install(monkeypatch, "mul", Component("op", "mul", tt.ops.CORE_OPS["mul"], "tt-core"),
             Component("grad_rule", "mul", GradRule(short), "mine"), use=("mine",))
    a, b = tt.tensor([1.0, 2.0], requires_grad=True), tt.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(GradientRuleError, match=r"rule of op 'mul' \(from mine\) returned 1 values for an op with 2"):
        (a * b).sum().backward()


def test_a_rule_returning_none_for_a_needed_gradient_raises(monkeypatch):
    def forgets(ctx, grad):
        return grad * ctx.inputs[1], None

    _install(monkeypatch, "mul", Component("op", "mul", tt.ops.CORE_OPS["mul"], "tt-core"),
             Component("grad_rule", "mul", GradRule(forgets), "mine"), use=("mine",))
    a, b = tt.tensor([1.0, 2.0], requires_grad=True), tt.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(GradientRuleError, match=r"returned None for input 1, which needs a gradient"):
        (a * b).sum().backward()


def test_a_broadcast_gradient_not_summed_back_raises_naming_the_op(monkeypatch):
    def unsummed(ctx, grad):
        a, b = ctx.inputs
        return grad * b, grad * a  # b was broadcast: its gradient has a's shape

    _install(monkeypatch, "mul", Component("op", "mul", tt.ops.CORE_OPS["mul"], "tt-core"),
             Component("grad_rule", "mul", GradRule(unsummed), "mine"), use=("mine",))
    a, b = tt.randn(4, 3, requires_grad=True), tt.randn(3, requires_grad=True)
    with pytest.raises(GradientRuleError, match=r"'mul' \(from mine\) returned a gradient of shape \(4, 3\) for input 1"):
        (a * b).sum().backward()


def test_a_gelu_kernel_without_the_saved_tanh_is_a_load_error_not_an_attribute_error(monkeypatch):
    def my_gelu(ctx, x):
        return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))

    registry = tt.get_registry()
    bound, errors = _install(
        monkeypatch, "gelu", registry.chosen("op", "gelu"), registry.chosen("grad_rule", "gelu"),
        Component("op", "gelu", Op(my_gelu), "mine"), use=("mine",),
    )
    assert errors and errors[0][0] == "mine" and "reads ctx.tanh" in errors[0][1]
    assert bound.kernel_dist == "tt-core"  # the built-in op is used instead
    x = tt.randn(5, requires_grad=True)
    tt.functional.gelu(x).sum().backward()  # and backward works
    assert x.grad is not None


def test_builtin_kernels_pair_with_a_learners_rule_written_against_the_contract(monkeypatch):
    def relu_grad(ctx, grad):
        return (grad * (ctx.inputs[0] > 0),)

    bound, errors = _install(monkeypatch, "relu", Component("op", "relu", tt.ops.CORE_OPS["relu"], "tt-core"),
                             Component("grad_rule", "relu", GradRule(relu_grad), "mine"), use=("mine",))
    assert errors == [] and bound.rule_dist == "mine"
    x = tt.tensor([-1.0, 2.0], requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0])

"""An op is one unit: kernel and rule chosen together, pairings checked when plugins load,
stubs never chosen, and ``TT_PROVIDERS``/``choose`` picking whole distributions."""

from __future__ import annotations

import numpy as np
import pytest

import tt_core as tt
from tt_core import GradRule, Op, dispatch, plugins
from tt_core.dispatch import bind, context_reads
from tt_core.errors import GradientRuleError
from tt_core.plugins import Component, ComponentRegistry, ProviderChoiceError, is_implemented


def _square(ctx, x):
    ctx.twice = 2 * x
    return x * x


def _square_grad(ctx, grad):
    return (grad * ctx.twice,)


def _square_grad_from_inputs(ctx, grad):
    return (grad * 2 * ctx.inputs[0],)


def _stub_kernel(ctx, x):
    """Your kernel: return x squared."""
    raise NotImplementedError


def _registry(*components: Component, use=()) -> ComponentRegistry:
    registry = ComponentRegistry(use=use)
    for component in components:
        registry.add(component)
    return registry


def _run(bound, x, grad):
    ctx = bound.context()
    out = bound.forward(ctx, x)
    ctx.inputs, ctx.out, ctx.attrs, ctx.needs = [x], out, {}, (True,)
    return out, bound.backward(ctx, grad)


# -- the format ---------------------------------------------------------------------------


def test_op_and_grad_rule_check_what_they_are_given():
    with pytest.raises(tt.TinyTorchError, match="forward must be callable"):
        Op("relu")
    with pytest.raises(tt.TinyTorchError, match="'out' is set by apply"):
        Op(_square, saves=("out",))
    with pytest.raises(tt.TinyTorchError, match="attribute names"):
        Op(_square, saves=(1,))
    assert Op(_square, saves="twice").saves == ("twice",)
    with pytest.raises(tt.TinyTorchError, match="backward must be callable"):
        GradRule(None)


def test_a_rules_reads_are_found_in_its_source():
    assert context_reads(_square_grad) == ("twice",)
    assert context_reads(_square_grad_from_inputs) == ()

    def passes_ctx_on(ctx, grad):
        return _square_grad(ctx, grad)

    assert context_reads(passes_ctx_on) is None  # the helper may read anything
    assert context_reads(lambda ctx, grad: (grad,)) is None  # no def to read
    assert GradRule(_square_grad, reads=("other",)).needs_saved() == ("other",)  # declared wins


def test_registering_bare_functions_gives_the_one_format():
    registry = ComponentRegistry()
    registrar = registry.registrar("legacy", "1.0")
    registrar.register("op", "square", _square)
    registrar.register("grad_rule", "square", _square_grad)
    with pytest.raises(tt.TinyTorchError, match="contract must be a string"):
        registrar.register("kind", "widget", 42)
    registrar.commit()
    op = registry.get("op", "square")
    assert isinstance(op, Op) and op.forward is _square and op.saves is None
    rule = registry.get("grad_rule", "square")
    assert isinstance(rule, GradRule) and rule.backward is _square_grad
    assert registry.chosen("op", "square").version == "1.0"


# -- pairing --------------------------------------------------------------------------------


BUILTIN_KERNEL = Component("op", "square", Op(_square, saves=("twice",)), "tt-core")
BUILTIN_RULE = Component("grad_rule", "square", GradRule(_square_grad, reads=("twice",)), "tt-learn")


def test_a_learners_rule_for_a_builtin_kernel():
    mine = Component("grad_rule", "square", GradRule(_square_grad_from_inputs), "mine")
    bound, errors = bind(_registry(BUILTIN_KERNEL, BUILTIN_RULE, mine, use=("mine",)), "square")
    assert errors == [] and (bound.kernel_dist, bound.rule_dist) == ("tt-core", "mine")
    out, (grad,) = _run(bound, np.array([3.0]), np.array([1.0]))
    assert out.tolist() == [9.0] and grad.tolist() == [6.0]
    # without the choice, the built-in rule runs
    bound, _ = bind(_registry(BUILTIN_KERNEL, BUILTIN_RULE, mine), "square")
    assert bound.rule_dist == "tt-learn"


def test_a_kernel_that_does_not_save_what_the_builtin_rule_reads_is_a_load_error():
    def square(ctx, x):
        return x * x

    mine = Component("op", "square", Op(square), "mine")
    bound, errors = bind(_registry(BUILTIN_KERNEL, BUILTIN_RULE, mine, use=("mine",)), "square")
    assert [dist for dist, _ in errors] == ["mine"]
    message = errors[0][1]
    assert "reads ctx.twice" in message and "kernel from mine saves nothing" in message
    assert "Register your own gradient rule for 'square'" in message
    assert (bound.kernel_dist, bound.rule_dist) == ("tt-core", "tt-learn")  # the built-in unit instead
    # the same kernel with its own rule is a whole op: fine
    whole = Component("op", "square", Op(square, _square_grad_from_inputs), "mine")
    bound, errors = bind(_registry(BUILTIN_KERNEL, BUILTIN_RULE, whole, use=("mine",)), "square")
    assert errors == [] and (bound.kernel_dist, bound.rule_dist) == ("mine", "mine")


def test_a_bare_kernel_for_an_op_whose_builtin_rule_is_inside_it_falls_back():
    builtin = Component("op", "square", Op(_square, _square_grad, saves=("twice",)), "tt-data")
    mine = Component("op", "square", Op(lambda ctx, x: x * x), "mine")
    bound, errors = bind(_registry(builtin, mine, use=("mine",)), "square")
    assert bound.kernel_dist == "tt-data" and errors[0][0] == "mine"
    assert "has no gradient rule" in errors[0][1] and "give your Op a backward" in errors[0][1]
    # where the built-in op has no rule either (tt-core without tt-learn), the kernel is used
    bound, errors = bind(_registry(BUILTIN_KERNEL, mine, use=("mine",)), "square")
    assert bound.kernel_dist == "mine" and errors == []


def test_a_kernel_and_a_rule_of_one_distribution_stay_together():
    def square(ctx, x):
        ctx.x = x
        return x * x

    def square_grad(ctx, grad):
        return (grad * 2 * ctx.x,)

    registry = _registry(BUILTIN_KERNEL, BUILTIN_RULE,
                         Component("op", "square", Op(square, saves=None), "mine"),
                         Component("grad_rule", "square", GradRule(square_grad), "mine"))
    registry.choices[("op", "square")] = "mine"  # TT_PROVIDERS=op:square=mine picks the kernel only
    bound, errors = bind(registry, "square")
    assert errors == [] and (bound.kernel_dist, bound.rule_dist) == ("mine", "mine")


def test_a_rule_reading_an_unsaved_value_names_both_sides_at_backward():
    def escapes(ctx, grad):
        return _square_grad(ctx, grad)  # reads ctx.twice through a helper: unknown at load time

    def square(ctx, x):
        return x * x

    registry = _registry(Component("op", "square", Op(square), "a"),
                         Component("grad_rule", "square", GradRule(escapes), "b"))
    bound, errors = bind(registry, "square")
    assert errors == []
    with pytest.raises(GradientRuleError, match=r"rule of op 'square' \(from b\) reads ctx.twice.*kernel \(from a\)"):
        _run(bound, np.array([1.0]), np.array([1.0]))


def test_every_builtin_pairing_fits():
    system = tt.get_plugin_system()
    assert all(not info.pairing for info in system.plugins)
    assert set(system.bound_ops) == set(tt.ops.CORE_OPS)


# -- stubs -----------------------------------------------------------------------------------


def test_stubs_are_not_implemented_and_never_chosen():
    class Stub(tt.Module):
        def forward(self, x):
            """Return x."""
            raise NotImplementedError()

    class Done(tt.Module):
        def forward(self, x):
            return x

    assert not is_implemented(_stub_kernel) and is_implemented(_square)
    assert not is_implemented(Stub) and is_implemented(Done)
    assert not is_implemented(Op(_stub_kernel)) and is_implemented(Op(_square))
    assert not is_implemented(GradRule(_stub_kernel)) and is_implemented(GradRule(_square_grad))
    registry = _registry(Component("layer", "Id", Done, "tt-core"), Component("layer", "Id", Stub, "mine"),
                         use=("mine",))
    assert registry.get("layer", "Id") is Done
    registry.choices[("layer", "Id")] = "mine"
    assert registry.choose_with_reason("layer", "Id") == (registry.reference("layer", "Id"), "builtin")


def test_a_stub_op_leaves_the_builtin_in_use():
    stub = Component("op", "square", Op(_stub_kernel), "mine")
    bound, errors = bind(_registry(BUILTIN_KERNEL, BUILTIN_RULE, stub, use=("mine",)), "square")
    assert errors == [] and bound.kernel_dist == "tt-core"


# -- choosing whole distributions ------------------------------------------------------------

MINE = """
import numpy as np
from tt_core import GradRule, Linear, Op, hookimpl


class MyLinear(Linear):
    pass


def relu(ctx, x):
    return np.where(x > 0, x, 0).astype(x.dtype)


def todo(ctx, x):
    raise NotImplementedError


@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Linear", MyLinear)
    registry.register("op", "relu", Op(relu))
    registry.register("op", "exp", Op(todo))
    registry.register("lyaer", "Typo", MyLinear)
"""


def test_a_bare_distribution_in_tt_providers_uses_what_it_implements(fake_dist, monkeypatch):
    fake_dist("my-tinytorch", MINE)
    monkeypatch.setenv("TT_PROVIDERS", "my-tinytorch")
    registry = tt.get_registry()
    assert registry.chosen("layer", "Linear").dist == "my-tinytorch"
    assert dispatch.OP_TABLE["relu"].kernel_dist == "my-tinytorch"
    assert dispatch.OP_TABLE["exp"].kernel_dist == "tt-core"  # a stub: the built-in one fills the gap
    assert (tt.tensor([-1.0, 2.0]).relu()).tolist() == [0.0, 2.0]
    assert registry.unknown_kinds() == [("my-tinytorch", "lyaer")]


def test_choose_adds_distributions_after_loading(fake_dist):
    fake_dist("my-tinytorch", MINE)
    assert tt.get_registry().chosen("layer", "Linear").dist == "tt-core"
    assert dispatch.OP_TABLE["relu"].kernel_dist == "tt-core"
    plugins.choose(use=["My_TinyTorch"])
    assert tt.get_registry().chosen("layer", "Linear").dist == "my-tinytorch"
    assert dispatch.OP_TABLE["relu"].kernel_dist == "my-tinytorch"  # the op table was rebuilt
    with pytest.raises(ProviderChoiceError, match="my-tinytorh: no installed.*did you mean my-tinytorch"):
        plugins.choose(use=["my-tinytorh"])
    assert tt.get_registry().use == ("my-tinytorch",)  # a refused choice changes nothing


def test_a_plugin_withdrawn_contributes_nothing(fake_dist):
    fake_dist("my-tinytorch", MINE)
    system = tt.get_plugin_system()
    plugins.choose(use=["my-tinytorch"])
    info = next(p for p in system.plugins if p.dist == "my-tinytorch")
    system.withdraw(info)
    assert tt.get_registry().from_dist("my-tinytorch") == []
    assert dispatch.OP_TABLE["relu"].kernel_dist == "tt-core"


# -- the op table's wrapper ---------------------------------------------------------------


def _doubling(op):
    """A wrapper whose ops return twice their kernel's output, and count their calls."""
    def forward(ctx, *arrays, **attrs):
        _doubling.calls.append(op.name)
        return 2 * op.forward(ctx, *arrays, **attrs)

    return dispatch.BoundOp.make(op.name, forward, op.backward, op.saves, op.kernel_dist, op.rule_dist)


def test_set_wrapper_swaps_the_ops_handed_out_and_restores_the_plain_ones():
    dispatch.reset_dispatch()
    _doubling.calls = []
    x = tt.tensor([1.0, 2.0])
    (x * 3).numpy()  # "mul" is in the table before the wrapper is set
    plain = plugins.get_plugin_system().bound_ops
    assert dispatch.OP_TABLE["mul"] is plain["mul"]

    assert dispatch.set_wrapper(_doubling) is None
    try:
        assert dispatch.get_wrapper() is _doubling
        wrapped = dispatch.OP_TABLE["mul"]
        assert wrapped is not plain["mul"]  # re-bound at once
        assert (wrapped.name, wrapped.kernel_dist, wrapped.rule_dist) == ("mul", "tt-core", plain["mul"].rule_dist)
        np.testing.assert_array_equal((x * 3).numpy(), [6.0, 12.0])
        np.testing.assert_array_equal((x + 1).numpy(), [4.0, 6.0])  # looked up for the first time: wrapped
        assert _doubling.calls == ["mul", "add"]
    finally:
        assert dispatch.set_wrapper(None) is _doubling

    assert {"mul", "add"} <= set(dispatch.ops_used())  # the ops used stay listed
    assert all(dispatch.OP_TABLE[name] is plain[name] for name in dispatch.OP_TABLE)
    np.testing.assert_array_equal((x * 3).numpy(), [3.0, 6.0])
    assert _doubling.calls == ["mul", "add"]


def test_set_wrapper_refuses_what_is_not_callable():
    with pytest.raises(tt.TinyTorchError, match="callable or None"):
        dispatch.set_wrapper("checked")
    assert dispatch.get_wrapper() is None

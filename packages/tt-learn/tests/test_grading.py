"""tt-learn's checkers (grad_rule, loss, optimizer, scheduler) and, now that an autograd engine
is installed, the backward checks of tt-core's layer checker, on registries built by hand.

Deliberately wrong implementations must each be caught with the diagnosis a learner needs;
small correct implementations (written here, differently from the built-ins) must pass under
several seeds.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tt_core as tt
from tt_core import Module, Parameter, Tensor
from tt_core import _plugin as core_plugin
from tt_core.dispatch import GradRule, Op
from tt_core.grading import FAILED, NO_REFERENCE, PASSED, Case, Example, Grade, grade
from tt_core.plugins import ComponentRegistry
from tt_learn import _plugin as learn_plugin
from tt_learn import grading, optim, schedulers
from tt_learn.grad_rules import unbroadcast

SEEDS = (0, 1, 2, 3)


def registry_with(*components) -> ComponentRegistry:
    """tt-core's and tt-learn's components, checkers and examples, plus ``(kind, name, obj)``
    from distribution my-dist."""
    registry = ComponentRegistry()
    for dist, plugin in (("tt-core", core_plugin), ("tt-learn", learn_plugin)):
        registrar = registry.registrar(dist, "1.0")
        plugin.tt_register_components(registrar)
        registrar.commit()
    mine = registry.registrar("my-dist", "0.1")
    for kind, name, obj in components:
        mine.register(kind, name, obj)
    mine.commit()
    return registry


def grade_mine(kind: str, name: str, obj, *extra, seed: int = 0) -> Grade:
    registry = registry_with((kind, name, obj), *extra)
    component = next(c for c in registry.providers(kind, name) if c.dist == "my-dist")
    return grade(component, registry, seed)


def case(result: Grade, start: str) -> Case:
    """The one case whose name starts with ``start``."""
    found = [c for c in result.cases if c.name.startswith(start)]
    assert len(found) == 1, [c.name for c in result.cases]
    return found[0]


def failures(result: Grade) -> list[Case]:
    return [c for c in result.cases if c.status == FAILED]


def not_passed(result: Grade) -> list[tuple[str, str]]:
    return [(c.name, c.detail) for c in result.cases if not c.passed]


def test_tt_learn_registers_its_checkers_and_examples():
    registry = registry_with()
    assert {n: registry.get("checker", n) for n in ("grad_rule", "loss", "optimizer", "scheduler")} == {
        "grad_rule": grading.check_grad_rule, "loss": grading.check_loss,
        "optimizer": grading.check_optimizer, "scheduler": grading.check_scheduler,
    }
    examples = set(registry.names("example"))
    assert {f"loss:{n}" for n in registry.names("loss")} <= examples
    assert {f"scheduler:{n}" for n in registry.names("scheduler")} <= examples


@pytest.mark.parametrize("kind", ["grad_rule", "loss", "optimizer", "scheduler", "layer", "activation"])
def test_every_built_in_component_passes_its_own_checker(kind):
    registry = registry_with()
    for name in registry.names(kind):
        result = grade(registry.reference(kind, name), registry, seed=0)
        assert result.status == PASSED, (name, not_passed(result))


# -- gradient rules -------------------------------------------------------------------------


def test_a_rule_with_the_wrong_sign_is_caught():
    def relu(ctx, grad):
        return (-grad * (ctx.out > 0),)

    result = grade_mine("grad_rule", "relu", GradRule(relu))
    assert result.status == FAILED and result.reference == "tt-learn"
    detail = case(result, "gradients on shape (3, 4) vs the reference and central differences").detail
    assert re.fullmatch(r"gradient of input 0 differs at \[\d, \d\]: yours -?[\d.]+, reference -?[\d.]+ "
                        r"\(\d+ of 12 elements differ; yours is -1 times the reference everywhere: a flipped sign\?\)",
                        detail)


def test_a_broadcast_gradient_not_summed_back_is_caught():
    def mul(ctx, grad):
        a, b = ctx.inputs
        return grad * b, grad * a

    result = grade_mine("grad_rule", "mul", GradRule(mul))
    assert [c.name for c in failures(result)] == [
        "gradients on shapes (4, 3) and (3,) vs the reference and central differences",
        "gradients on shapes (4, 1) and (1, 3) vs the reference and central differences",
    ]
    assert failures(result)[0].detail == (
        "gradient of input 1 has shape (4, 3), but input 1 has shape (3,) (inputs (4, 3) and (3,) were broadcast: "
        "sum the gradient over the broadcast axes)"
    )


def test_a_broadcast_gradient_averaged_instead_of_summed_names_the_element_and_the_shapes():
    def mul(ctx, grad):
        a, b = ctx.inputs
        return unbroadcast(grad * b, a.shape), unbroadcast(grad * a, b.shape) / (grad.size / b.size)

    detail = case(grade_mine("grad_rule", "mul", GradRule(mul)), "gradients on shapes (4, 3) and (3,)").detail
    assert re.fullmatch(r"gradient of input 1 differs at \[0\]: yours -?[\d.]+, reference -?[\d.]+ \(3 of 3 elements "
                        r"differ; yours is 0\.25 times the reference everywhere; inputs \(4, 3\) and \(3,\) were "
                        r"broadcast\)", detail)


def test_a_rule_returning_too_few_gradients_or_reading_what_the_kernel_never_saved():
    def mul(ctx, grad):
        return (grad * ctx.inputs[1],)

    def gelu(ctx, grad):
        return (grad * ctx.inner,)

    detail = failures(grade_mine("grad_rule", "mul", GradRule(mul)))[0].detail
    assert detail == "the rule returned 1 gradient for 2 inputs"
    detail = failures(grade_mine("grad_rule", "gelu", GradRule(gelu)))[0].detail
    assert detail.startswith("raised GradientRuleError: the gradient rule reads ctx.inner, which its kernel did "
                             "not save")


def test_a_rule_under_a_misspelt_name_is_told_that_it_never_runs():
    result = grade_mine("grad_rule", "rleu", GradRule(lambda ctx, grad: (grad,)))
    assert result.status == FAILED
    assert failures(result)[0].detail.startswith("no op named 'rleu' is registered, so this rule never runs "
                                                 "(a misspelt name? known ops: abs, add,")


def cube(ctx, x):
    return x * x * x


def cube_grad(ctx, grad):
    return (3 * grad * ctx.inputs[0] ** 2,)


def test_a_rule_for_a_new_op_is_checked_against_central_differences_only():
    result = grade_mine("grad_rule", "cube", GradRule(cube_grad), ("op", "cube", Op(cube)))
    assert result.status == NO_REFERENCE and result.reference is None, not_passed(result)
    guessed = "shape (3, 4) (a guessed call: register example:op:<name> to say how the op is called)"
    assert [c.name for c in result.cases] == [f"gradients on {guessed} vs central differences",
                                              "gradient dtype: float32 in, float32 out"]

    def wrong(ctx, grad):
        return (grad * ctx.inputs[0] ** 2,)

    detail = failures(grade_mine("grad_rule", "cube", GradRule(wrong), ("op", "cube", Op(cube))))[0].detail
    assert "yours is 0.333 times the central differences everywhere" in detail


def test_an_op_carrying_its_rule_is_compared_with_the_reference_rule():
    def sigmoid(ctx, x):
        return 1 / (1 + np.exp(-x))

    def sigmoid_grad(ctx, grad):
        return (grad * ctx.out,)  # forgot (1 - y)

    result = grade_mine("op", "sigmoid", Op(sigmoid, sigmoid_grad))
    assert case(result, "values on shape (3, 4)").status == PASSED
    assert case(result, "gradients on shape (3, 4)").detail.startswith("gradient of input 0 differs at [0, 0]: yours")
    assert "vs the reference and central differences" in case(result, "gradients on shape (3, 4)").name


# -- losses -------------------------------------------------------------------------------


def test_a_cross_entropy_without_log_softmax_overflows_on_large_logits():
    class NaiveCrossEntropy(Module):
        def __init__(self, reduction="mean", label_smoothing=0.0):
            super().__init__()
            self.reduction, self.label_smoothing = reduction, label_smoothing

        def forward(self, logits, target):
            e = logits.exp()
            log_p = (e / e.sum(axis=1, keepdims=True)).log()
            loss = -log_p[np.arange(len(target.data)), target.data]
            loss = (1 - self.label_smoothing) * loss - self.label_smoothing * log_p.mean(axis=1)
            return {"mean": loss.mean, "sum": loss.sum}.get(self.reduction, lambda: loss)()

    result = grade_mine("loss", "CrossEntropyLoss", NaiveCrossEntropy)
    assert [c.name for c in failures(result)] == [case(result, "inputs 100 times larger").name]
    assert re.fullmatch(r"the loss gives (nan|inf) where the reference gives [\d.]+", failures(result)[0].detail)


def test_a_loss_reducing_the_wrong_way_names_the_reduction():
    class SummingMSE(Module):
        def __init__(self, reduction="mean"):
            super().__init__()
            self.reduction = reduction

        def forward(self, input, target):
            loss = (input - target) ** 2
            return loss if self.reduction == "none" else loss.sum()

    result = grade_mine("loss", "MSELoss", SummingMSE)
    assert [c.name for c in failures(result)] == [
        "value and input gradient of MSELoss(reduction='mean')",
        "inputs 100 times larger (up to " + case(result, "inputs 100").name.split("up to ")[1],
    ]
    assert re.fullmatch(r"the loss differs: yours [\d.]+, reference [\d.]+", failures(result)[0].detail)


class MyBCEWithLogits(Module):
    """-(t log σ(x) + (1 - t) log(1 - σ(x))) = relu(x) - x t + log(1 + exp(-|x|))."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x, t):
        loss = x.relu() - x * t + ((-x.abs()).exp() + 1).log()
        return {"mean": loss.mean, "sum": loss.sum}.get(self.reduction, lambda: loss)()


def test_a_new_loss_gets_values_and_central_differences():
    class Huber(Module):
        def forward(self, x, t):
            d = (x - t).abs()
            return tt.where(d.data < 1, 0.5 * d * d, d - 0.5).mean()

    example = ("example", "loss:Huber",
               lambda rng: Example(inputs=(3 * rng.standard_normal(5), rng.standard_normal(5))))
    result = grade_mine("loss", "Huber", Huber, example)
    assert result.status == NO_REFERENCE, not_passed(result)
    assert case(result, "gradient of the input equals central differences").status == PASSED


# -- optimizers ---------------------------------------------------------------------------


class SGDIgnoringWeightDecay(optim.SGD):
    def update(self, param, grad, state, group, work):
        super().update(param, grad, state, {**group, "weight_decay": 0.0}, work)


class SGDMomentumOneStepLate(optim.SGD):
    """Steps with the velocity of the step before: p -= lr * v; then v = m v + g."""

    def init_state(self, param, group):
        return {"velocity": np.zeros_like(param.data)}

    def update(self, param, grad, state, group, work):
        if not group["momentum"]:
            return super().update(param, grad, {"momentum_buffer": None}, group, work)
        velocity = state["velocity"]
        param -= group["lr"] * velocity
        velocity *= group["momentum"]
        velocity += grad + group["weight_decay"] * param


def test_sgd_ignoring_weight_decay_is_caught():
    result = grade_mine("optimizer", "SGD", SGDIgnoringWeightDecay)
    assert [c.name for c in failures(result)] == ["25 steps with lr=0.05, weight_decay=0.5"]
    assert re.fullmatch(r"with lr=0\.05, weight_decay=0\.5: parameter 0 after step 1 differs at \[0, 0\]: yours "
                        r"-?[\d.]+, reference -?[\d.]+ \(12 of 12 elements differ\)", failures(result)[0].detail)


def test_sgd_momentum_one_step_late_is_caught():
    result = grade_mine("optimizer", "SGD", SGDMomentumOneStepLate)
    names = [c.name for c in failures(result)]
    assert names == ["25 steps with lr=0.05, momentum=0.5", "25 steps with lr=0.05, dampening=0.5, momentum=0.5",
                     "25 steps with lr=0.05, nesterov=True, momentum=0.5"]
    assert failures(result)[0].detail.startswith("with lr=0.05, momentum=0.5: parameter 0 after step 1 differs "
                                                 "at [0, 0]")


class MySGD(optim.Optimizer):
    """SGD written from the formulas of torch.optim.SGD."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def init_state(self, param, group):
        return {"momentum_buffer": None}

    def update(self, param, grad, state, group, work):
        g = grad + group["weight_decay"] * param
        if group["momentum"]:
            buf = state["momentum_buffer"]
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf[...] = group["momentum"] * buf + (1 - group["dampening"]) * g
            g = g + group["momentum"] * buf if group["nesterov"] else buf
        param -= group["lr"] * g


class MyAdam(optim.Optimizer):
    """Adam, and AMSGrad, from the paper's formulas (bias-corrected moments)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad})

    def init_state(self, param, group):
        zeros = np.zeros_like(param.data)
        return {"step": 0, "m": zeros.copy(), "v": zeros.copy(), "v_max": zeros.copy()}

    def update(self, param, grad, state, group, work):
        (b1, b2), g = group["betas"], grad + group["weight_decay"] * param
        state["step"] += 1
        t = state["step"]
        state["m"][...] = b1 * state["m"] + (1 - b1) * g
        state["v"][...] = b2 * state["v"] + (1 - b2) * g * g
        v = state["v"]
        if group["amsgrad"]:
            np.maximum(state["v_max"], v, out=state["v_max"])
            v = state["v_max"]
        m_hat, v_hat = state["m"] / (1 - b1**t), v / (1 - b2**t)
        param -= group["lr"] * m_hat / (np.sqrt(v_hat) + group["eps"])


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_optimizers_pass_under_several_seeds(seed):
    for name, cls in (("SGD", MySGD), ("Adam", MyAdam)):
        result = grade_mine("optimizer", name, cls, seed=seed)
        assert result.status == PASSED, (name, not_passed(result))
        assert len(result.cases) >= 10 and result.speed_ratio > 0


def test_every_option_of_the_reference_gets_a_case():
    names = [c.name for c in grade_mine("optimizer", "RMSprop", optim.RMSprop).cases]
    options = ["", ", alpha=0.9801", ", eps=0.01", ", weight_decay=0.5", ", momentum=0.5", ", centered=True"]
    assert names[:7] == [f"25 steps with lr=0.05{o}" for o in options] + [
        "two parameter groups (the second with its own lr), a parameter without a gradient skipped"]
    assert [n for n in names if n.startswith("state dict")] == [n.replace("25 steps", "state dict round trip")
                                                                 for n in names[:6]]


def test_an_optimizer_keeping_its_state_outside_the_state_dict_fails_the_round_trip():
    class ForgetfulSGD(MySGD):
        def init_state(self, param, group):
            return {}

        def update(self, param, grad, state, group, work):
            buffers = self.__dict__.setdefault("buffers", {})
            state = {"momentum_buffer": buffers.get(id(param))}
            super().update(param, grad, state, group, work)
            buffers[id(param)] = state["momentum_buffer"]

    result = grade_mine("optimizer", "SGD", ForgetfulSGD)
    assert [c.name for c in failures(result)] == ["state dict round trip with lr=0.05, momentum=0.5",
                                                  "state dict round trip with lr=0.05, dampening=0.5, momentum=0.5",
                                                  "state dict round trip with lr=0.05, nesterov=True, momentum=0.5"]
    assert failures(result)[0].detail.startswith("after load_state_dict, parameter 0 after step 13 differs at [0, 0]")


def test_a_new_optimizer_gets_the_round_trip_only():
    class SignSGD(optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, {"lr": lr})

        def init_state(self, param, group):
            return {"step": 0}

        def update(self, param, grad, state, group, work):
            state["step"] += 1
            param -= group["lr"] * np.sign(grad)

    result = grade_mine("optimizer", "SignSGD", SignSGD)
    assert result.status == NO_REFERENCE and [c.name for c in result.cases] == ["state dict round trip with lr=0.05"]


def test_an_optimizer_written_against_the_old_private_names_is_graded_like_any_other():
    with pytest.warns(DeprecationWarning):
        class OldStyleSGD(MySGD):
            def _init_state(self, param, group):
                return MySGD.init_state(self, param, group)

            def _update(self, param, grad, state, group, work):
                MySGD.update(self, param, grad, state, group, work)

    assert grade_mine("optimizer", "SGD", OldStyleSGD).status == PASSED


# -- schedulers ---------------------------------------------------------------------------


class MyStepLR(schedulers.LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, step):
        return [base * self.gamma ** (step // self.step_size) for base in self.base_lrs]


class StepLRDecayingEarly(MyStepLR):
    def lr_at(self, step):
        return [base * self.gamma ** ((step + 1) // self.step_size) for base in self.base_lrs]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_correct_scheduler_passes_and_an_early_one_is_caught(seed):
    assert grade_mine("scheduler", "StepLR", MyStepLR, seed=seed).status == PASSED
    result = grade_mine("scheduler", "StepLR", StepLRDecayingEarly, seed=seed)
    (failed,) = failures(result)
    step_size = int(re.search(r"step_size=(\d+)", failed.name).group(1))
    assert failed.name.startswith("learning rates over 30 steps of StepLR(optimizer, step_size=")
    assert re.fullmatch(rf"lr of group 0 after {step_size - 1} steps: yours [\d.e-]+, reference 0\.1", failed.detail)


def test_a_new_scheduler_gets_the_round_trip_only():
    class Halving(schedulers.LRScheduler):
        def lr_at(self, step):
            return [base / 2**step for base in self.base_lrs]

    result = grade_mine("scheduler", "Halving", Halving, ("example", "scheduler:Halving", lambda rng: Example()))
    assert result.status == NO_REFERENCE
    assert [c.name for c in result.cases] == ["state dict round trip of Halving(optimizer)"]


# -- layers, with an autograd engine ------------------------------------------------------


def test_a_layer_that_cuts_the_graph_is_caught_by_backward():
    class DetachedLinear(tt.Linear):
        def forward(self, x):
            return Tensor(x.data @ self.weight.data.T + self.bias.data)

    result = grade_mine("layer", "Linear", DetachedLinear)
    assert [c.name for c in failures(result)] == ["backward: input and parameter gradients equal the reference's"]
    assert failures(result)[0].detail.startswith("the output does not require grad: the graph was cut")


def test_a_layer_with_a_wrong_gradient_names_the_parameter():
    class DoubledBias(tt.Linear):  # the output is right, the bias gradient twice too large
        def forward(self, x):
            out = super().forward(x)
            return out + (self.bias - self.bias.detach())

    detail = failures(grade_mine("layer", "Linear", DoubledBias))[0].detail
    assert re.fullmatch(r"gradient of bias differs at \[0\]: yours -?[\d.]+, reference -?[\d.]+ \(3 of 3 elements "
                        r"differ; yours is 2 times the reference everywhere\)", detail)


def test_a_new_layer_is_differentiated_by_central_differences():
    class Scale(Module):
        def __init__(self, features):
            super().__init__()
            self.gain = Parameter(np.ones(features, np.float32) * 1.5)

        def forward(self, x):
            return (x * self.gain).tanh()

    example = ("example", "layer:Scale", lambda rng: Example(args=(3,), inputs=(rng.standard_normal((2, 3)),)))
    result = grade_mine("layer", "Scale", Scale, example)
    assert result.status == NO_REFERENCE, not_passed(result)
    assert case(result, "backward: input and parameter gradients equal central differences").status == PASSED


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_losses_and_layers_pass_with_backward(seed):
    class MyReLU(Module):
        def forward(self, x):
            return tt.where(x.data > 0, x, 0.0)

    for kind, name, cls in (("loss", "BCEWithLogitsLoss", MyBCEWithLogits), ("activation", "ReLU", MyReLU)):
        result = grade_mine(kind, name, cls, seed=seed)
        assert result.status == PASSED, (name, not_passed(result))
        assert case(result, "backward" if kind == "activation" else "value and input gradient of "
                    f"{name}(reduction='none')").status == PASSED

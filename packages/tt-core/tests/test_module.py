"""Module: registration, traversal, modes, state dicts, containers, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import tt_core as tt
from tt_core import CheckpointError, Linear, Module, ModuleList, Parameter, ReLU, Sequential, Tensor, TinyTorchError


class Block(Module):
    """A parameter, a buffer, a sub-module and a plain attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("running", tt.zeros(3))
        self.fc = Linear(3, 2)
        self.name = "block"

    def forward(self, x):
        return self.fc(x * self.scale + self.running)


class Net(Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = Block()
        self.layers = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))

    def forward(self, x):
        return self.layers(self.first(x))


# -- registration -----------------------------------------------------------------------


def test_assignment_registers_parameters_modules_and_buffers():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._modules) == ["fc"]
    assert list(block._buffers) == ["running"]
    assert block.name == "block" and "name" not in block._parameters
    assert isinstance(block.scale, Parameter) and block.scale.requires_grad
    assert block.running.shape == (3,) and not block.running.requires_grad
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'missing'"):
        block.missing


def test_named_parameters_dotted_names_and_buffers():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == [
        "first.scale", "first.fc.weight", "first.fc.bias",
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
    ]
    assert [p.shape for p in net.parameters()] == [(3,), (2, 3), (2,), (4, 2), (4,), (1, 4), (1,)]
    assert [name for name, _ in net.named_buffers()] == ["first.running"]
    assert net.num_parameters() == 3 + 6 + 2 + 8 + 4 + 4 + 1


def test_shared_parameters_and_modules_are_listed_once():
    shared = Linear(3, 3)
    model = Sequential(shared, ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [type(m).__name__ for m in model.modules()] == ["Sequential", "Linear", "ReLU"]

    tied = Sequential(Linear(4, 4), Linear(4, 4))
    tied[1].weight = tied[0].weight  # weight tying
    assert tied[1].weight is tied[0].weight
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_reassigning_and_deleting_attributes():
    block = Block()
    block.fc = ReLU()  # a module replaced by another
    assert isinstance(block._modules["fc"], ReLU) and block.fc is block._modules["fc"]
    block.scale = None  # a parameter may be removed by assigning None
    assert block.scale is None and "scale" not in block._parameters
    block.scale = Parameter([2.0])
    assert block._parameters["scale"] is block.scale
    del block.fc
    assert "fc" not in block._modules
    with pytest.raises(AttributeError):
        block.fc


def test_a_plain_tensor_cannot_replace_a_parameter():
    lin = Linear(2, 2)
    with pytest.raises(TinyTorchError, match="weight.*Parameter"):
        lin.weight = Tensor(np.zeros((2, 2)))
    assert isinstance(lin.weight, Parameter)


def test_buffers_hold_tensors_or_none():
    block = Block()
    block.running = tt.ones(3)  # assigning to a buffer's name updates the buffer
    assert block._buffers["running"].data.tolist() == [1, 1, 1] and block.running is block._buffers["running"]
    with pytest.raises(TinyTorchError, match="buffer 'running'"):
        block.running = np.ones(3)
    with pytest.raises(TinyTorchError, match="buffer 'mask'"):
        block.register_buffer("mask", [1, 2])


def test_forgetting_super_init_is_explained():
    class Broken(Module):
        def __init__(self):
            self.fc = Linear(2, 2)

    with pytest.raises(TinyTorchError, match=r"super\(\).__init__\(\)"):
        Broken()


# -- modes ------------------------------------------------------------------------------


def test_train_eval_propagate_to_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.layers.train(False)
    assert net.training and net.first.training and not net.layers.training and not net.layers[0].training
    assert len(list(net.modules())) == 7
    assert [type(m).__name__ for m in net.children()] == ["Block", "Sequential"]


def test_zero_grad_clears_every_parameter_gradient():
    net = Net()
    for p in net.parameters():
        p.grad = tt.ones_like(p)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# -- state dicts ------------------------------------------------------------------------


def test_state_dict_keys_and_copies():
    net = Net()
    state = net.state_dict()
    assert list(state) == [
        "first.scale", "first.running", "first.fc.weight", "first.fc.bias",
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
    ]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["first.scale"][:] = 7  # a copy: the model is untouched
    assert net.first.scale.data.tolist() == [1, 1, 1]


def test_load_state_dict_round_trip(rng):
    source, target = Net(), Net()
    source.first.running = Tensor(rng.standard_normal(3))
    result = target.load_state_dict(source.state_dict())
    assert result == {"missing": [], "unexpected": []}
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    x = Tensor(rng.standard_normal((5, 3)))
    np.testing.assert_allclose(source(x).data, target(x).data)
    # loading copies: changing the source later does not reach the target
    source.first.fc.weight.data[...] = 0
    assert np.abs(target.first.fc.weight.data).sum() > 0
    assert target.first.fc.weight.dtype == np.float32


def test_load_state_dict_accepts_tensors_and_casts_to_the_parameter_dtype():
    lin = Linear(2, 1)
    lin.load_state_dict({"weight": Tensor([[1.0, 2.0]]), "bias": np.array([0.5], dtype=np.float64)})
    assert lin.weight.data.tolist() == [[1.0, 2.0]] and lin.bias.dtype == np.float32


def test_load_state_dict_keeps_each_tensors_memory_layout(rng):
    lin = Linear(3, 4)
    assert lin.weight.data.flags.f_contiguous  # Linear keeps its weight column-major
    weight = rng.standard_normal((4, 3))  # float64, row-major
    lin.load_state_dict({"weight": weight, "bias": np.arange(4)})
    assert lin.weight.data.flags.f_contiguous and lin.weight.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, weight.astype(np.float32))
    assert lin.bias.data.tolist() == [0.0, 1.0, 2.0, 3.0] and lin.bias.dtype == np.float32


def test_strict_load_lists_missing_and_unexpected_keys():
    net = Net()
    state = net.state_dict()
    del state["layers.0.bias"]
    state["layers.9.weight"] = np.zeros(2)
    with pytest.raises(CheckpointError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing keys: layers.0.bias" in message and "unexpected keys: layers.9.weight" in message
    assert "Net" in message


def test_shape_mismatches_are_listed_even_when_not_strict():
    net = Net()
    state = net.state_dict()
    state["first.fc.weight"] = np.zeros((3, 3), dtype=np.float32)
    state["layers.2.bias"] = np.zeros(2, dtype=np.float32)
    before = net.first.fc.weight.data.copy()
    for strict in (True, False):
        with pytest.raises(CheckpointError) as info:
            net.load_state_dict(state, strict=strict)
        message = str(info.value)
        assert "first.fc.weight: checkpoint (3, 3) vs model (2, 3)" in message
        assert "layers.2.bias: checkpoint (2,) vs model (1,)" in message
    np.testing.assert_array_equal(net.first.fc.weight.data, before)  # nothing was loaded


def test_non_strict_load_reports_and_loads_the_rest():
    lin = Linear(2, 2)
    result = lin.load_state_dict({"weight": np.eye(2), "extra": np.zeros(1)}, strict=False)
    assert result == {"missing": ["bias"], "unexpected": ["extra"]}
    np.testing.assert_array_equal(lin.weight.data, np.eye(2))


def test_none_buffers_are_skipped_on_save_and_load():
    class WithOptional(Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", None)
            self.fc = Linear(2, 2)

    model = WithOptional()
    state = model.state_dict()
    assert list(state) == ["fc.weight", "fc.bias"]
    assert WithOptional().load_state_dict(state) == {"missing": [], "unexpected": []}


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(CheckpointError, match="dict"):
        Linear(2, 2).load_state_dict([np.zeros((2, 2))])


def snapshot(module: Module) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in module.state_dict().items()}


def assert_unchanged(module: Module, before: dict[str, np.ndarray]) -> None:
    after = module.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].dtype == value.dtype, key
        np.testing.assert_array_equal(after[key], value, err_msg=key)


@pytest.mark.parametrize("bad, what", [
    (np.array(["a", "b"]), "text"),
    (np.array([True, False]), "bool"),
    (np.array([1 + 2j, 3j]), "complex128"),
    (np.array([{}, None], dtype=object), "Python objects"),
])
def test_a_value_of_the_wrong_dtype_loads_nothing(bad, what):
    """The bad value comes last: the good ones before it must not have been loaded either."""
    net = Net()
    before = snapshot(net)
    state = {key: value + 1 for key, value in net.state_dict().items()}
    state["layers.2.bias"] = np.resize(bad, (1,))
    with pytest.raises(CheckpointError, match=rf"dtypes that cannot be loaded: layers\.2\.bias: checkpoint {what}"):
        net.load_state_dict(state)
    assert_unchanged(net, before)
    with pytest.raises(CheckpointError, match="layers.2.bias"):
        net.check_state_dict(state)
    assert_unchanged(net, before)


def test_every_problem_is_listed_at_once_and_nothing_changes():
    net = Net()
    before = snapshot(net)
    state = net.state_dict()
    state["first.scale"] = np.array(["1", "2", "3"])
    state["first.fc.weight"] = np.zeros((3, 3), np.float32)
    state["layers.0.weight"] = [[1.0], [2.0, 3.0]]  # ragged: not an array
    del state["layers.2.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(CheckpointError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    for part in ("missing keys: layers.2.bias", "unexpected keys: extra", "not arrays: layers.0.weight",
                 "shape mismatches: first.fc.weight: checkpoint (3, 3) vs model (2, 3)",
                 "first.scale: checkpoint text (<U1) vs model float32"):
        assert part in message
    assert_unchanged(net, before)


def test_integer_values_load_into_float_parameters_but_not_floats_into_integer_buffers():
    class Counter(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.zeros(2, np.float32))
            self.register_buffer("count", Tensor(np.array([0], np.int64)))
            self.register_buffer("mask", Tensor(np.array([True, False])))

    model = Counter()
    model.load_state_dict({"w": np.array([1, 2], np.int32), "count": np.array([7], np.int16),
                           "mask": np.array([False, True])})
    assert model.w.data.tolist() == [1.0, 2.0] and model.w.dtype == np.float32
    assert model.count.data.tolist() == [7] and model.count.dtype == np.int64
    assert model.mask.data.tolist() == [False, True]
    before = snapshot(model)
    for key, bad in [("count", np.array([7.5])), ("mask", np.array([1, 0])), ("w", np.array([1.0, 2.0], np.complex64))]:
        state = {**model.state_dict(), key: bad}
        with pytest.raises(CheckpointError, match=f"{key}: checkpoint"):
            model.load_state_dict(state)
        assert_unchanged(model, before)


def test_check_state_dict_reports_without_loading():
    lin = Linear(2, 2)
    before = snapshot(lin)
    assert lin.check_state_dict({"weight": np.eye(2), "extra": 1}, strict=False) == {
        "missing": ["bias"], "unexpected": ["extra"]}
    assert_unchanged(lin, before)
    with pytest.raises(CheckpointError, match="missing keys: bias"):
        lin.check_state_dict({"weight": np.eye(2)})


def test_a_good_load_still_round_trips_after_a_refused_one(rng):
    source, target = Net(), Net()
    bad = source.state_dict()
    bad["layers.0.bias"] = np.array(["x"] * 4)
    with pytest.raises(CheckpointError):
        target.load_state_dict(bad)
    target.load_state_dict(source.state_dict())
    assert_unchanged(target, snapshot(source))
    x = Tensor(rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_deepcopy_gives_an_independent_module():
    net = Net()
    clone = copy.deepcopy(net)
    clone.first.fc.weight.data[...] = 0
    assert np.abs(net.first.fc.weight.data).sum() > 0
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]
    assert clone.first.fc.weight is clone.first.fc._parameters["weight"]  # attribute and registry stay one


# -- containers and repr ----------------------------------------------------------------


def test_sequential_applies_in_order(rng):
    model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    x = Tensor(rng.standard_normal((5, 3)))
    want = np.maximum(x.data @ model[0].weight.data.T + model[0].bias.data, 0)
    want = want @ model[2].weight.data.T + model[2].bias.data
    np.testing.assert_allclose(model(x).data, want, rtol=1e-5, atol=1e-6)
    assert len(model) == 3 and isinstance(model[-1], Linear) and list(model)[1] is model[1]


def test_replacing_a_child_or_parameter_keeps_its_place():
    model = Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
    setattr(model, "0", Linear(3, 4, bias=False))  # e.g. swapping in a quantized layer
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    assert model[0].bias is None
    layer = Linear(2, 2)
    layer.weight = Parameter(np.zeros((2, 2), dtype=np.float32))
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_module_list():
    layers = ModuleList([Linear(2, 2) for _ in range(3)])
    layers.append(ReLU())
    assert len(layers) == 4 and isinstance(layers[3], ReLU)
    assert len(list(layers.parameters())) == 6
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    with pytest.raises(TinyTorchError, match="item 1 is a int"):
        ModuleList([ReLU(), 3])
    with pytest.raises(NotImplementedError, match="ModuleList must define forward"):
        layers(tt.ones(2))


def test_repr_is_readable():
    model = Sequential(Linear(3, 4), ReLU(), tt.Dropout(0.25), Linear(4, 2, bias=False), tt.Softmax(axis=1))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25)\n"
        "  (3): Linear(in_features=4, out_features=2, bias=False)\n"
        "  (4): Softmax(axis=1)\n"
        ")"
    )
    nested = repr(Net())
    assert "  (first): Block(\n    (fc): Linear(in_features=3, out_features=2, bias=True)\n  )" in nested
    assert repr(Parameter([1.0])) == "Parameter containing:\ntensor([1.], requires_grad=True)"

"""``Module``, ``Parameter`` and the containers, with PyTorch's names and habits."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from .errors import CheckpointError, TinyTorchError
from .tensor import Tensor


def _as_array(value) -> np.ndarray:
    return np.asarray(value.data if isinstance(value, Tensor) else value)


class Parameter(Tensor):
    """A Tensor that a Module learns: ``requires_grad`` is on, and assigning it to a
    Module attribute registers it."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model.

    Assigning a :class:`Parameter`, a ``Module`` or (through :meth:`register_buffer`) a
    buffer to an attribute registers it, so ``parameters()``, ``state_dict()`` and
    ``train()``/``eval()`` find it.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration --------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise TinyTorchError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_modules", "_buffers"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Tensor | None) -> None:
        """State that is saved but not learned (running means, masks, ...)."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__setattr__(name, value)

    def add_module(self, name: str, module: "Module") -> None:
        setattr(self, name, module)

    # -- traversal -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:  # a shared (tied) parameter is listed once
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for prefix, module in self.named_modules():
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buf

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # -- modes ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    # -- calling -------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and buffer by dotted name, as NumPy arrays (copies)."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for prefix, module in self.named_modules():
            for name, value in (*module._parameters.items(), *module._buffers.items()):
                if value is not None:
                    key = f"{prefix}.{name}" if prefix else name
                    state[key] = np.array(value.data if isinstance(value, Tensor) else value)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> dict[str, list[str]]:
        """Copy values into this module's parameters and buffers.

        With ``strict`` (the default) every key must match and every shape fit; otherwise
        a :class:`CheckpointError` lists the missing keys, the unexpected keys and the shape
        mismatches. Returns ``{"missing": [...], "unexpected": [...]}``.
        """
        targets: dict[str, tuple[Module, str]] = {}
        for prefix, module in self.named_modules():
            for name in (*module._parameters, *module._buffers):
                targets[f"{prefix}.{name}" if prefix else name] = (module, name)
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        mismatched = []
        for key in targets.keys() & state.keys():
            module, name = targets[key]
            current = getattr(module, name)
            value = _as_array(state[key])
            if isinstance(current, Tensor) and current.shape != value.shape:
                mismatched.append(f"{key}: checkpoint {value.shape} vs model {current.shape}")
        if mismatched or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(unexpected))
            if mismatched:
                parts.append("shape mismatches: " + "; ".join(mismatched))
            raise CheckpointError(f"state dict does not fit {type(self).__name__}: " + " | ".join(parts))
        for key in targets.keys() & state.keys():
            module, name = targets[key]
            current = getattr(module, name)
            value = _as_array(state[key])
            if isinstance(current, Tensor):
                current.data = value.astype(current.dtype, copy=True)
            else:
                module._buffers[name] = Tensor(value, dtype=value.dtype)
        return {"missing": missing, "unexpected": unexpected}

    # -- printing ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of sub-modules, registered under their index."""

    def __init__(self, modules=()) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TinyTorchError(f"{type(self).__name__} takes Modules, item {index} is a {type(module).__name__}")
            self.append(module)

    def append(self, module: Module) -> None:
        self.add_module(str(len(self._modules)), module)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after the other.

    Examples:
        >>> from tt_core import Linear, ReLU
        >>> model = Sequential(Linear(2, 8), ReLU(), Linear(8, 1))
        >>> len(model)
        3
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

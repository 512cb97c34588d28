"""``Module``, ``Parameter`` and the containers, with PyTorch's names and habits."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Iterator

import numpy as np

from .errors import CheckpointError, TinyTorchError
from .tensor import Tensor


_DTYPE_NAMES = {"U": "text", "S": "bytes", "O": "Python objects", "V": "raw records", "M": "dates",
                "m": "time spans"}


def describe_dtype(dtype: np.dtype) -> str:
    """A dtype as a user reads it: ``float32``, ``bool``, ``text (<U5)``."""
    name = _DTYPE_NAMES.get(dtype.kind)
    return dtype.name if name is None else f"{name} ({dtype.str})"


def state_array(value) -> np.ndarray:
    """A state-dict value (Tensor, NumPy array or nested list of numbers) as an array.

    Raises:
        CheckpointError: the value cannot be an array (ragged nested lists, say).
    """
    try:
        return np.asarray(value.data if isinstance(value, Tensor) else value)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"a {type(value).__name__} that is not an array ({error})") from None


def loadable_dtype(source: np.dtype, target: np.dtype) -> bool:
    """Whether values of dtype ``source`` may be loaded into a tensor of dtype ``target``:
    numbers into numbers of the same kind or a wider one (integers into floating point,
    float64 into float32, ...), booleans only into booleans. Never text, objects, complex
    numbers into real ones, or floating point into integers (that would cut off the fraction)."""
    if source.kind not in "biufc" or (source.kind == "b") != (target.kind == "b"):
        return False
    return bool(np.can_cast(source, target, casting="same_kind"))


class Parameter(Tensor):
    """A Tensor that a Module learns: ``requires_grad`` is on, and assigning it to a
    Module attribute registers it.

    Examples:
        >>> Parameter([1.0, 2.0]).requires_grad
        True
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model.

    Assigning a :class:`Parameter` or a ``Module`` to an attribute registers it, as does
    :meth:`register_buffer` for a buffer, so ``parameters()``, ``state_dict()`` and
    ``train()``/``eval()`` find it. A registered parameter can be replaced only by another
    Parameter (or None), a buffer only by a Tensor (or None). The registries (``_parameters``,
    ``_modules``, ``_buffers``) keep the order; each registered value is also an ordinary
    instance attribute, so that ``self.weight`` costs a dict lookup, not a failed attribute
    search (about a fourteenth of the time). Register by assignment, not by writing to a registry.

    Examples:
        >>> from tt_core import Linear
        >>> class Affine(Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.scale = Parameter([2.0])
        ...         self.inner = Linear(3, 1)
        ...     def forward(self, x):
        ...         return self.inner(x) * self.scale
        >>> [name for name, _ in Affine().named_parameters()]
        ['scale', 'inner.weight', 'inner.bias']
        >>> {name: value.shape for name, value in Affine().state_dict().items()}
        {'scale': (1,), 'inner.weight': (1, 3), 'inner.bias': (1,)}
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration --------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise TinyTorchError(
                f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}"
            )
        if name in self._buffers:
            self._buffers[name] = self.__dict__[name] = self._checked_buffer(name, value)
            return
        if name in self._parameters and not (value is None or isinstance(value, Parameter)):
            raise TinyTorchError(
                f"cannot assign a {type(value).__name__} to parameter {name!r} of {type(self).__name__}: "
                f"assign a Parameter (or None), or change the values through {name}.data"
            )
        # a replaced parameter or module keeps its place (the order of a Sequential, of state_dict)
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
            object.__setattr__(self, name, value)
            return
        self.__dict__[name] = value  # the fast lookup (see the class docstring)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: a value put into a registry directly
        for registry in ("_parameters", "_modules", "_buffers"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                self.__dict__.pop(name, None)
                return
        object.__delattr__(self, name)

    def _checked_buffer(self, name: str, value):
        if value is not None and not isinstance(value, Tensor):
            raise TinyTorchError(
                f"buffer {name!r} of {type(self).__name__} must be a Tensor or None, "
                f"got a {type(value).__name__} (wrap it with tt_core.tensor)"
            )
        return value

    def register_buffer(self, name: str, value: Tensor | None) -> None:
        """State that is saved but not learned (running means, masks, ...): a Tensor, or
        None for "not set" (skipped by ``state_dict()``)."""
        if name in self._parameters or name in self._modules:
            raise TinyTorchError(f"{type(self).__name__} already has a parameter or sub-module {name!r}")
        self._buffers[name] = self.__dict__[name] = self._checked_buffer(name, value)

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` under ``name`` (for names that are not identifiers, like "0")."""
        setattr(self, name, module)

    # -- traversal -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "", _seen: set | None = None) -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module with its dotted name; a module reachable by two
        paths (shared) is listed once, under the first."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self) -> Iterator["Module"]:
        """This module and every sub-module, each once."""
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules."""
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` for every parameter of the tree, each once."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) not in seen:  # a shared (tied) parameter is listed once
                    seen.add(id(param))
                    yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of the tree, each once (what an optimizer updates)."""
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` for every buffer that is set (not None)."""
        for prefix, module in self.named_modules():
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{prefix}.{name}" if prefix else name), buf

    def num_parameters(self) -> int:
        """How many numbers the model learns."""
        return int(sum(p.size for p in self.parameters()))

    # -- modes ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``mode=False``: evaluation) on this module and every sub-module."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: ``Dropout`` becomes the identity, and so on."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for param in self.parameters():
            param.grad = None

    # -- calling -------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- state ---------------------------------------------------------------------------
    def named_tensors(self) -> "OrderedDict[str, Tensor]":
        """Every parameter and (non-None) buffer by dotted name: what a state dict holds. A
        tensor shared by two modules (tied weights) is listed under each of its names."""
        tensors: OrderedDict[str, Tensor] = OrderedDict()
        for prefix, module in self.named_modules():
            for name, value in (*module._parameters.items(), *module._buffers.items()):
                if value is not None:
                    tensors[f"{prefix}.{name}" if prefix else name] = value
        return tensors

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every parameter and buffer by dotted name, as NumPy arrays (copies)."""
        return OrderedDict((key, np.array(t.data)) for key, t in self.named_tensors().items())

    def check_state_dict(self, state: Mapping, strict: bool = True) -> dict[str, list[str]]:
        """Check that :meth:`load_state_dict` would accept ``state``, changing nothing.

        Args:
            state: ``{dotted name: Tensor, array or nested list}``, e.g. from :meth:`state_dict`.
            strict: the keys must be exactly this module's (otherwise missing keys are kept
                as they are and unexpected ones ignored).

        Returns:
            ``{"missing": [...], "unexpected": [...]}``: keys of this module that ``state``
            lacks, and keys of ``state`` that this module does not have.

        Raises:
            CheckpointError: listing every problem at once: missing and unexpected keys (with
                ``strict``), values that are not arrays, shape mismatches, and dtypes that
                cannot be loaded (see :func:`loadable_dtype`).
        """
        return self._prepare_load(state, strict)[1]

    def _prepare_load(self, state: Mapping, strict: bool) -> tuple[list[tuple[Tensor, np.ndarray]], dict]:
        """The ``(tensor, new value)`` pairs a load would assign, and the key report; raises
        the :class:`CheckpointError` of :meth:`check_state_dict`."""
        if not isinstance(state, Mapping):
            raise CheckpointError(f"load_state_dict needs a dict of name -> array, got a {type(state).__name__}")
        targets = self.named_tensors()
        missing = [k for k in targets if k not in state]
        unexpected = [str(k) for k in state if k not in targets]
        assignments, unreadable, mismatched, wrong_dtype = [], [], [], []
        for key, target in targets.items():
            if key not in state:
                continue
            try:
                value = state_array(state[key])
            except CheckpointError as error:
                unreadable.append(f"{key}: {error}")
                continue
            if value.shape != target.shape:
                mismatched.append(f"{key}: checkpoint {value.shape} vs model {target.shape}")
            elif not loadable_dtype(value.dtype, target.dtype):
                wrong_dtype.append(f"{key}: checkpoint {describe_dtype(value.dtype)} vs model {target.dtype}")
            else:
                assignments.append((target, value))
        parts = []
        if strict and missing:
            parts.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        for title, problems in (("not arrays", unreadable), ("shape mismatches", mismatched),
                                ("dtypes that cannot be loaded", wrong_dtype)):
            if problems:
                parts.append(f"{title}: " + "; ".join(problems))
        if parts:
            raise CheckpointError(f"state dict does not fit {type(self).__name__}: " + " | ".join(parts))
        return assignments, {"missing": missing, "unexpected": unexpected}

    def load_state_dict(self, state: Mapping, strict: bool = True) -> dict[str, list[str]]:
        """Copy values into this module's parameters and buffers, all or nothing.

        Everything is checked first (see :meth:`check_state_dict`); only when every value
        fits is anything changed. Values are copied and cast to each tensor's dtype, into
        arrays of each tensor's memory layout (a column-major ``Linear`` weight stays so).

        Args:
            state: ``{dotted name: Tensor, array or nested list}``, e.g. from :meth:`state_dict`.
            strict: the keys must be exactly this module's (default); with ``strict=False``
                missing keys keep their values and unexpected ones are ignored.

        Returns:
            ``{"missing": [...], "unexpected": [...]}``.

        Raises:
            CheckpointError: listing the missing keys, the unexpected keys (with ``strict``),
                the shape mismatches and the dtypes that cannot be loaded; nothing is loaded.
        """
        assignments, report = self._prepare_load(state, strict)
        for target, value in assignments:
            data = np.empty_like(target.data)
            np.copyto(data, value, casting="unsafe")
            target.data = data
        return report

    # -- printing ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """What goes between the parentheses of this module's ``repr`` (override it)."""
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

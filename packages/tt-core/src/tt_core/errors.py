"""Errors a user can act on. The CLI prints these without a traceback."""


class TinyTorchError(Exception):
    """Base class of every error caused by how TinyTorch was used (not by a bug in it)."""


class ShapeError(TinyTorchError, ValueError):
    """Operands whose shapes do not fit the operation."""


class CheckpointError(TinyTorchError, ValueError):
    """A file that is not a valid TinyTorch ``.npz`` checkpoint, or a state dict that does not fit."""


class AutogradUnavailableError(TinyTorchError, RuntimeError):
    """``backward()`` was called but no autograd engine (tt-learn) is installed."""


class GradientRuleError(TinyTorchError, RuntimeError):
    """An op's gradient rule is missing, or returned gradients that do not fit its inputs."""


class ArgumentError(TinyTorchError, ValueError):
    """An argument outside the values it takes: a probability above 1, an unknown split or mode,
    a size that is not a positive whole number."""

"""Reference components for the scaffold tests: one of each shape ``new`` writes a stub for.

Registered as tt-core's by the tests, on a hand-built registry.
"""

from __future__ import annotations

from tt_core import GradRule, Module, Op, Tensor


def cube(ctx, x):
    """x³, keeping x² for the rule."""
    ctx.square = x * x
    return ctx.square * x


def cube_grad(ctx, grad):
    return (grad * 3 * ctx.square,)


def twice(ctx, x, factor=2.0):
    return factor * x


def twice_grad(ctx, grad):
    """d(2x)/dx = 2."""
    return (grad * ctx.attrs.get("factor", 2.0),)


class _Scaled(Module):
    """A private base: the stub writes what it defines."""

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        self.scale = scale

    def _helper(self) -> float:  # private, and no hook of Module: no stub
        return self.scale

    def extra_repr(self) -> str:  # cosmetic: no stub
        return f"scale={self.scale}"


class Scale(_Scaled):
    """Multiplies its input by ``scale``.

    Args:
        scale: the factor.

    Examples:
        >>> Scale(3.0)(x)  # the answer, not for the stub
    """

    kind = "scale"

    def forward(self, x: Tensor) -> Tensor:
        """``scale * x``."""
        return x * self.scale

    @property
    def factor(self) -> float:
        return self.scale

    @classmethod
    def unit(cls) -> Scale:
        return cls(1.0)

    @staticmethod
    def describe(text: str, *, width: int = 10) -> str:
        return text[:width]


class Triple(Scale):
    """A component subclassing another: its stub derives from Module, with Scale's methods too."""

    def __init__(self) -> None:
        super().__init__(3.0)


class Entry:
    """One catalogue entry: call it for a split."""

    def __call__(self, split: str = "train", *, flatten: bool = False):
        """The split as a data set."""
        return (split, flatten)


class _Engine:
    """An object used through its methods."""

    def backward(self, tensor, gradient=None, retain_graph: bool = False) -> None:
        """Send gradients back."""


def score(predictions, targets, *, average: str = "macro") -> float:
    """The share of right answers."""
    return float((predictions == targets).mean())


COMPONENTS = (
    ("op", "cube", Op(cube, cube_grad, saves=("square",))),
    ("op", "twice", Op(twice)),
    ("grad_rule", "twice", GradRule(twice_grad)),
    ("layer", "Scale", Scale),
    ("layer", "Triple", Triple),
    ("dataset", "entry", Entry()),
    ("autograd", "engine", _Engine()),
    ("metric", "score", score),
    ("checker", "layer", score),  # the grading machinery: no stub
    ("kind", "gizmo", "a gizmo"),
)

"""Find the first NaN or infinity: :class:`detect_anomaly`.

Inside ``with detect_anomaly():`` every op's output is checked in forward (the kernel's result)
and in backward (each gradient its rule returns). The first value that is NaN or infinite
raises :class:`AnomalyError`, which names the op, whose kernel (forward) or rule (backward)
produced it, the shapes and ranges of the op's inputs, and the line of the caller's code that
ran the op (recorded when the op ran, so a backward error points at the forward line).

Outside the block nothing is checked and nothing costs anything: the block swaps the entries
of tt-core's op table for checking versions (:func:`tt_core.dispatch.set_wrapper`) and puts
the plain ones back when it ends; :func:`tt_core.dispatch.apply` is the same either way. An op
recorded inside the block is checked in backward too when ``backward()`` runs after the block.

Examples:
    >>> import tt_core as tt
    >>> x = tt.tensor([1.0, -1.0], requires_grad=True)
    >>> with detect_anomaly():
    ...     y = x.log()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tt_learn.anomaly.AnomalyError: op 'log' made NaN (1 of 2 values) in forward, kernel from tt-core
      input 0: (2,) float32, min -1, max 1
      output: (2,) float32, min 0, max 0, and NaN
      called at ...: y = x.log()...
"""

from __future__ import annotations

import linecache
import os
import sys
from dataclasses import dataclass

import numpy as np
from tt_core import dispatch
from tt_core.errors import TinyTorchError

from .autograd import _Switch

__all__ = ["AnomalyError", "CallSite", "detect_anomaly"]

LIBRARY_PACKAGES = ("tt_core", "tt_learn", "tt_data", "tt_language", "tt_perf")
"""The packages whose frames are skipped to find the caller's line."""

_SITE = "_tt_call_site"  # where the checked forward keeps the call site on the op's context


class AnomalyError(TinyTorchError, RuntimeError):
    """An op made a NaN or an infinity inside :class:`detect_anomaly`.

    Attributes:
        op: the op's name.
        phase: ``"forward"`` (its kernel's output) or ``"backward"`` (a gradient of its rule).
        provider: the distribution of that kernel or rule.
        site: where the caller's code ran the op (:class:`CallSite`), or None if no frame
            outside TinyTorch's packages was found.
    """

    def __init__(self, message: str, op: str, phase: str, provider: str | None, site: "CallSite | None") -> None:
        super().__init__(message)
        self.op, self.phase, self.provider, self.site = op, phase, provider, site


@dataclass(frozen=True)
class CallSite:
    """A line of the caller's code: file, line number and function."""

    filename: str
    lineno: int
    function: str

    def __str__(self) -> str:
        code = linecache.getline(self.filename, self.lineno).strip()
        return f"{self.filename}:{self.lineno} in {self.function}" + (f": {code}" if code else "")


def _library_dirs() -> tuple[str, ...]:
    """The folders of TinyTorch's packages that are imported (one on the stack is imported)."""
    dirs = []
    for name in LIBRARY_PACKAGES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.dirname(path) + os.sep)
    return tuple(dirs)


def call_site() -> CallSite | None:
    """The innermost frame of the stack that is outside TinyTorch's packages, or None."""
    dirs = _library_dirs()
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(dirs):
        frame = frame.f_back
    if frame is None:
        return None
    return CallSite(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _describe(array) -> str:
    """``"(2, 3) float32, min -1, max 4"``; the range of the finite values, then which other
    values there are (``", and NaN"``, ``", and inf"``)."""
    array = np.asarray(array)
    text = f"{array.shape} {array.dtype}"
    if not array.size or array.dtype.kind not in "biuf":
        return text
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size:
        text += f", min {finite.min():.6g}, max {finite.max():.6g}"
    others = [name for name, test in (("NaN", np.isnan), ("-inf", np.isneginf), ("inf", np.isposinf))
              if array.dtype.kind == "f" and test(array).any()]
    if others:
        text += (", and " if finite.size else ", all ") + " and ".join(others)
    return text


def _what_is_wrong(array) -> str | None:
    """``"NaN (1 of 4 values)"``, ``"inf and NaN (...)"``, or None when every value is finite."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return None
    nan = int(np.isnan(array).sum())
    inf = int(np.isinf(array).sum())
    kinds = " and ".join(name for name, count in (("NaN", nan), ("inf", inf)) if count)
    return f"{kinds} ({nan + inf} of {array.size} values)"


def _inputs(arrays) -> str:
    return "\n".join(f"  input {i}: {_describe(a)}" for i, a in enumerate(arrays)) or "  no inputs"


def _where(site: CallSite | None, what: str = "called") -> str:
    if site is None:
        return f"  {what} from TinyTorch's own code (no frame outside its packages)"
    return f"  {what} at {site}"


def checked(op: dispatch.BoundOp) -> dispatch.BoundOp:
    """``op`` with its kernel's output and its rule's gradients checked for NaN and inf.

    The kernel and the rule run with NumPy's floating-point warnings off: the error raised
    here names what NumPy's warning would not (the op, its provider, the caller's line).

    Raises (when the returned op runs):
        AnomalyError: the kernel's output or a gradient of the rule is NaN or infinite.
    """
    forward, backward = op.forward, op.backward

    def checked_forward(ctx, *arrays, **attrs):
        site = call_site()
        setattr(ctx, _SITE, site)
        with np.errstate(all="ignore"):
            out = forward(ctx, *arrays, **attrs)
        problem = _what_is_wrong(out)
        if problem is not None:
            raise AnomalyError(
                f"op {op.name!r} made {problem} in forward, kernel from {op.kernel_dist}\n"
                f"{_inputs(arrays)}\n  output: {_describe(out)}\n{_where(site)}",
                op.name, "forward", op.kernel_dist, site,
            )
        return out

    def checked_backward(ctx, grad):
        with np.errstate(all="ignore"):
            grads = backward(ctx, grad)
        for i, input_grad in enumerate(grads if isinstance(grads, (tuple, list)) else ()):
            problem = None if input_grad is None else _what_is_wrong(input_grad)
            if problem is not None:
                site = vars(ctx).get(_SITE)
                raise AnomalyError(
                    f"the gradient rule of op {op.name!r} (from {op.rule_dist}) made {problem} in backward, "
                    f"in the gradient of input {i}\n{_inputs(ctx.inputs)}\n"
                    f"  incoming gradient: {_describe(grad)}\n{_where(site, 'the op was called')}",
                    op.name, "backward", op.rule_dist, site,
                )
        return grads

    return dispatch.BoundOp.make(
        op.name, checked_forward, None if backward is None else checked_backward,
        op.saves, op.kernel_dist, op.rule_dist,
    )


class detect_anomaly(_Switch):
    """Check every op's output, in forward and backward, for NaN and inf (module docstring).

    A context manager, and a decorator (``@detect_anomaly`` or ``@detect_anomaly()``). Blocks
    may nest; the table of plain ops is back when the outermost one ends.

    Raises:
        AnomalyError: (inside the block) the first op whose output or gradient is not finite.

    Examples:
        >>> import tt_core as tt
        >>> x = tt.tensor([0.0, 4.0], requires_grad=True)
        >>> with detect_anomaly():
        ...     y = x.sqrt().sum()  # finite: sqrt(0) = 0
        ...     y.backward()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tt_learn.anomaly.AnomalyError: the gradient rule of op 'sqrt' (from tt-learn) made inf (1 of 2 values) in backward, in the gradient of input 0
          input 0: (2,) float32, min 0, max 4
          incoming gradient: (2,) float32, min 1, max 1
          the op was called at ...: y = x.sqrt().sum()...
    """

    def _set(self):
        return dispatch.set_wrapper(checked)

    def _restore(self, previous) -> None:
        dispatch.set_wrapper(previous)

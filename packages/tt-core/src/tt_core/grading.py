"""Grading a component against the built-in one: what "correct" means, written as checks.

``tt-milestones check`` hands every component a distribution provides to :func:`grade`, which
finds the *checker* of the component's kind (itself a registered component: kind ``checker``,
named after the kind it grades) and runs it with a :class:`Grader`. The checker builds inputs
afresh from the grader's random generator (so answers cannot be hard-coded; the same seed
gives the same inputs), runs the learner's component and the built-in one (the *reference*)
side by side, and records one :class:`Case` per property: passed, failed with a diagnosis a
learner can act on, skipped (with the reason), or not implemented.

A checker is a function ``checker(grader, yours, reference, name) -> None``::

    def check_metric(grader, yours, reference, name):
        scores = grader.rng.random(20)
        with grader.case("values on 20 random scores"):
            grader.compare(yours(scores), reference(scores), what=f"{name} of the scores")

    registry.register("checker", "metric", check_metric)

Inside ``with grader.case(...)``, :class:`Mismatch` (raised by :meth:`Grader.compare`, or by
the checker itself) fails the case with its message, :class:`Skip` skips it, a
``NotImplementedError`` marks it not implemented, and any other exception fails it with the
exception's text: the learner's code breaking is a finding, not a crash. An exception that
escapes every case means the checker itself is broken: the grade is ``ERROR``.

Components that need constructor arguments and inputs (layers, losses, schedulers, ...) find
them as component ``("example", "<kind>:<Name>")``: a function ``make(rng) -> Example``,
registered by the package that owns the reference component.

This module also holds the checkers of tt-core's own kinds:

* ``layer`` and ``activation`` (:func:`check_module`): parameter names and shapes,
  initialisation statistics over many fresh constructions, forward in training and eval mode
  after loading the reference's state dict (randomness compared by its statistics), inputs
  near ±1000 for activations, and backward (input and parameter gradients) when an autograd
  engine is installed;
* ``op`` (:func:`check_op`): kernel values on several shapes and inputs that break naive
  formulas, the dtype kept, and the op's own gradient rule when it carries one;
* ``function`` (:func:`check_function`): each function has its own contract, so this checker
  hands a function to the check registered for its name (component ``checker:function:<name>``,
  registered by the package that owns the reference function); a function without one is
  called on its example (``example:function:<name>``) like the reference.

Examples:
    >>> from tt_core.plugins import ComponentRegistry
    >>> from tt_core.layers import ReLU
    >>> registry = ComponentRegistry()
    >>> core = registry.registrar("tt-core")
    >>> _ = core.register("activation", "ReLU", ReLU)
    >>> _ = core.register("checker", "activation", check_module)
    >>> _ = core.register("example", "activation:ReLU", EXAMPLES["activation:ReLU"])
    >>> core.commit()
    >>> grade(registry.chosen("activation", "ReLU"), registry, seed=0).status
    'passed'
"""

from __future__ import annotations

import copy
import inspect
import math
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .dispatch import Context
from .errors import TinyTorchError
from .module import Module, Parameter
from .rng import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
NOT_IMPLEMENTED, NO_REFERENCE, ERROR = "not implemented", "no reference", "error"

__all__ = [
    "BROADCASTING", "ERROR", "EXAMPLES", "FAILED", "NOT_IMPLEMENTED", "NO_REFERENCE", "OVERFLOWING", "PASSED",
    "SAMPLES", "SKIPPED", "Arg", "Case", "Example", "Grade", "Grader", "Mismatch", "Sample", "Skip", "as_tensors",
    "broadcast_note", "call_text", "central_differences", "check_arguments", "check_function", "check_module",
    "check_op", "check_rule", "compare_values", "describe_difference", "epoch_arrays", "expect", "format_value",
    "grade", "grade_all", "op_samples", "raises", "reference_rule_of", "register_graders", "rule_cases", "run_kernel",
    "signature_parameters",
]


class Mismatch(TinyTorchError, AssertionError):
    """Raised inside a case: its message is the diagnosis shown to the learner."""


class Skip(Exception):
    """Raised inside a case that cannot be checked here: its message says why."""


@dataclass
class Case:
    """One checked property of a component.

    Attributes:
        name: what was checked, e.g. ``"values on broadcast operands (4, 3) and (3,)"``.
        status: PASSED, FAILED, SKIPPED or NOT_IMPLEMENTED (ERROR for a checker that broke).
        detail: the diagnosis, e.g. ``"gradient of input 1 differs at [2, 0]: yours 0.31,
            reference 0.62 (inputs (4, 3) and (3,) were broadcast)"``.
    """

    name: str
    status: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass
class Grade:
    """The result of grading one component.

    ``status`` is FAILED when any case failed, else NOT_IMPLEMENTED when any case hit a
    ``NotImplementedError``, else NO_REFERENCE when there was no built-in counterpart to
    compare with, else PASSED; ERROR when the checker itself broke, or could check nothing
    (every case skipped, e.g. no example says how to build the component).
    ``speed_ratio`` is your time divided by the reference's on one representative case
    (shown, never graded).
    """

    kind: str
    name: str
    dist: str
    version: str
    status: str
    cases: list[Case]
    reference: str | None
    speed_ratio: float | None = None

    def to_dict(self) -> dict:
        """A JSON-safe dict (``--json``): every field, the cases as dicts."""
        return asdict(self)


@dataclass
class Example:
    """How a checker builds and feeds a component: ``make(rng) -> Example``.

    Attributes:
        args: constructor arguments.
        kwargs: constructor keyword arguments.
        inputs: the arrays given to forward; floating ones get their gradients checked.
    """

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    inputs: tuple = ()


# ----------------------------------------------------------------------------------------
# Diagnoses
# ----------------------------------------------------------------------------------------


def format_value(value) -> str:
    """A number as a learner wants to read it: 6 significant digits, nan and inf by name."""
    value = np.asarray(value).item()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _at(index: tuple) -> str:
    """``" at [2, 0]"`` for an element of an array; nothing for a 0-d array."""
    return f" at [{', '.join(str(int(i)) for i in index)}]" if index else ""


def broadcast_note(shapes: Iterable[tuple]) -> str:
    """``"inputs (4, 3) and (3,) were broadcast"`` when the shapes differ, else ``""``.

    Examples:
        >>> broadcast_note([(4, 3), (3,)])
        'inputs (4, 3) and (3,) were broadcast'
        >>> broadcast_note([(2, 2), (2, 2)])
        ''
    """
    shapes = [tuple(s) for s in shapes]
    if len(set(shapes)) < 2:
        return ""
    return "inputs " + ", ".join(map(str, shapes[:-1])) + f" and {shapes[-1]} were broadcast"


def _as_array(value, what: str) -> np.ndarray:
    """A Tensor, array or number as an array; anything else is a Mismatch naming ``what``."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return np.asarray(value)
    if value is None:
        raise Mismatch(f"{what} is None, where an array was expected")
    raise Mismatch(f"{what} is a {type(value).__name__}, where an array (or Tensor) was expected")


def _close(yours: np.ndarray, reference: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Element-wise agreement: exact for integers and booleans; for floats within
    ``atol + rtol * |reference|``, with nan matching nan and an infinity its own sign."""
    if yours.dtype.kind in "biu" and reference.dtype.kind in "biu":
        return yours == reference
    return np.isclose(yours.astype(np.float64), reference.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)


def describe_difference(yours, reference, what: str = "output", rtol: float = 1e-5, atol: float = 1e-6, *,
                        against: str = "reference", note: str = "", check_dtype: bool = True) -> str | None:
    """The diagnosis of how ``yours`` differs from ``reference``, or None when they agree.

    Shapes are compared first, then dtypes (``check_dtype``), then the values: the first
    element that differs, both values and how many elements differ; a nan or infinity where
    the reference is finite is named as such ("gives nan at [0, 1] where the reference gives
    0.245"). ``note`` is appended in parentheses (e.g. :func:`broadcast_note`).
    """
    y, r = _as_array(yours, what), _as_array(reference, f"the {against}")
    tail = f" ({note})" if note else ""
    if y.shape != r.shape:
        return f"{what} has shape {y.shape}, the {against} {r.shape}{tail}"
    if check_dtype and y.dtype != r.dtype:
        return f"{what} is {y.dtype}, the {against} {r.dtype}{tail}"
    bad = ~_close(y, r, rtol, atol)
    if not bad.any():
        return None
    first = tuple(np.argwhere(bad)[0])
    mine, theirs = y[first], r[first]
    count = f"{int(bad.sum())} of {bad.size} elements differ" if bad.size > 1 else ""
    details = "; ".join(filter(None, [count, _proportion(y, r, against), note]))
    details = f" ({details})" if details else ""
    if y.dtype.kind == "f" and not np.isfinite(mine) and np.isfinite(theirs):
        return (f"{what} gives {format_value(mine)}{_at(first)} where the {against} gives "
                f"{format_value(theirs)}{details}")
    return f"{what} differs{_at(first)}: yours {format_value(mine)}, {against} {format_value(theirs)}{details}"


def _proportion(yours: np.ndarray, reference: np.ndarray, against: str) -> str:
    """``"yours is -1 times the reference everywhere: a flipped sign?"`` when ``yours`` is one
    constant multiple (not 1) of ``reference``, the signature of a sign or scale error."""
    if yours.dtype.kind != "f" or yours.size < 2 or not (np.isfinite(yours).all() and np.isfinite(reference).all()):
        return ""
    y, r = yours.astype(np.float64), reference.astype(np.float64)
    nonzero = np.abs(r) > 1e-12 * np.abs(r).max(initial=0)
    if nonzero.sum() < 2 or np.abs(y[~nonzero]).max(initial=0) > 1e-9:
        return ""
    ratios = y[nonzero] / r[nonzero]
    factor = float(np.median(ratios))
    if abs(factor - 1) < 1e-3 or not np.allclose(ratios, factor, rtol=1e-3, atol=1e-9):
        return ""
    hint = ": a flipped sign?" if abs(factor + 1) < 1e-3 else ""
    return f"yours is {factor:.3g} times the {against} everywhere{hint}"


def central_differences(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, ``(f(x + eps) - f(x - eps)) / 2 eps`` per element.

    ``x`` is perturbed in place, one element at a time, and restored; ``f`` reads it.
    In float64 the estimate is accurate to about eps² + rounding / eps (~1e-10).
    """
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f()
        x[index] = original - eps
        minus = f()
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


# ----------------------------------------------------------------------------------------
# The grader
# ----------------------------------------------------------------------------------------


def _where_raised(tb) -> str:
    """``" (at layers.py:12 in forward)"``: the deepest frame outside NumPy and the checkers
    (modules named ``grading*.py``), where a learner looks first."""
    frames = [f for f in traceback.extract_tb(tb)
              if "numpy" not in Path(f.filename).parts and not Path(f.filename).name.startswith("grading")]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _outcome(error: BaseException) -> tuple[str, str]:
    """The status and detail of a case that raised ``error``."""
    if isinstance(error, Mismatch):
        return FAILED, str(error)
    if isinstance(error, Skip):
        return SKIPPED, str(error)
    where = _where_raised(error.__traceback__)
    if isinstance(error, NotImplementedError):
        return NOT_IMPLEMENTED, f"raises NotImplementedError{': ' + str(error) if str(error) else ''}{where}"
    return FAILED, f"raised {type(error).__name__}: {error}{where}"


class _CaseBlock:
    """``with grader.case(name) as case:`` records one Case; what the block raises decides
    its status (see the module docstring). NumPy's floating-point warnings are silenced
    inside: an overflow is judged by the values it produces."""

    def __init__(self, grader: Grader, name: str) -> None:
        self.case = Case(name, PASSED)
        grader.cases.append(self.case)

    def __enter__(self) -> Case:
        self._errstate = np.errstate(all="ignore")
        self._errstate.__enter__()
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)
        return self.case

    def __exit__(self, kind, error, tb) -> bool:
        self._warnings.__exit__(None, None, None)
        self._errstate.__exit__(None, None, None)
        if error is None or not isinstance(error, Exception):
            return False  # passed, or KeyboardInterrupt and friends: let them through
        self.case.status, self.case.detail = _outcome(error)
        return True


class Grader:
    """What a checker is handed: fresh random inputs, and the cases it records.

    Attributes:
        seed: the run's seed (``tt-milestones check --seed N`` repeats a run).
        rng: a NumPy generator seeded from ``seed`` and the component's kind and name, so a
            component gets the same inputs whatever else is graded in the same run.
        registry: the component registry (to find examples, the autograd engine, ...).
        kind, name, dist: the component being graded and the distribution providing it.
        reference: the distribution of what the component is compared with (the built-in
            provider of the same kind and name, or None). A checker that finds its reference
            elsewhere (the rule inside a built-in Op, for a ``grad_rule``) sets it.
        cases: the cases recorded so far.
        speed_ratio: your time / the reference's, set by the first :meth:`time`.
    """

    def __init__(self, registry, seed: int, kind: str = "", name: str = "", dist: str = "") -> None:
        self.registry, self.seed, self.kind, self.name, self.dist = registry, seed, kind, name, dist
        self.reference: str | None = None
        self.rng = np.random.default_rng([seed, zlib.crc32(f"{kind}:{name}".encode())])
        self.cases: list[Case] = []
        self.speed_ratio: float | None = None

    def case(self, name: str) -> _CaseBlock:
        """A context manager recording one case named ``name`` (exceptions inside mark it)."""
        return _CaseBlock(self, name)

    def skip(self, name: str, reason: str) -> Case:
        """Record a case that cannot be checked, saying why."""
        case = Case(name, SKIPPED, reason)
        self.cases.append(case)
        return case

    def compare(self, yours, reference, what: str = "output", rtol: float = 1e-5, atol: float = 1e-6, *,
                against: str = "reference", note: str = "", check_dtype: bool = True) -> None:
        """Raise :class:`Mismatch` unless ``yours`` equals ``reference`` (shape, dtype, values).

        Args:
            yours, reference: Tensors, arrays or numbers.
            what: what is compared, as the diagnosis should name it ("gradient of input 1").
            rtol, atol: an element agrees when ``|yours - reference| <= atol + rtol * |reference|``.
            against: what the second value is called ("reference", "central differences").
            note: context appended to the diagnosis (e.g. which shapes were broadcast).
            check_dtype: require the same dtype (a float64 result for float32 inputs fails).

        Raises:
            Mismatch: with the diagnosis of :func:`describe_difference`.
        """
        problem = describe_difference(yours, reference, what, rtol, atol, against=against, note=note,
                                      check_dtype=check_dtype)
        if problem is not None:
            raise Mismatch(problem)

    def example(self, kind: str, name: str) -> Example | None:
        """The registered example of ``kind:name`` built from :attr:`rng`, or None."""
        key = f"{kind}:{name}"
        if not self.registry.has("example", key):
            return None
        example = self.registry.get("example", key)(self.rng)
        if not isinstance(example, Example):
            raise TinyTorchError(f"example {key} returned a {type(example).__name__}, not an Example")
        return example

    @property
    def autograd(self):
        """The registered autograd engine (``engine.backward(tensor, gradient)``), or None."""
        if self.registry.has("autograd", "engine"):
            return self.registry.get("autograd", "engine")
        return None

    def time(self, yours: Callable[[], Any], reference: Callable[[], Any], repeat: int = 5) -> float | None:
        """Time both calls (best of ``repeat``, taking turns) and keep the first ratio measured
        as :attr:`speed_ratio`. Returns the ratio, or None when a call fails or there is
        nothing to time. Never part of the grade."""
        if self.speed_ratio is not None:
            return self.speed_ratio
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loops = _loops_for(lambda: (reference(), yours()))
                best_yours = best_reference = math.inf
                for _ in range(repeat):
                    best_reference = min(best_reference, _timed(reference, loops))
                    best_yours = min(best_yours, _timed(yours, loops))
        except Exception:  # a failing call is already a failed case; its speed is no news
            return None
        if best_reference > 0:
            self.speed_ratio = best_yours / best_reference
        return self.speed_ratio


def _timed(fn: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def _loops_for(fn: Callable[[], Any], budget: float = 2e-3) -> int:
    """How many calls of ``fn`` take about ``budget`` seconds (at least 1, at most 1000)."""
    once = _timed(fn, 1)
    return int(min(1000, max(1, budget / max(once, 1e-7))))


# ----------------------------------------------------------------------------------------
# grade
# ----------------------------------------------------------------------------------------


def _status(cases: list[Case], has_reference: bool) -> str:
    statuses = {case.status for case in cases}
    if ERROR in statuses or statuses == {SKIPPED}:  # (nothing could be checked: no verdict)
        return ERROR
    if FAILED in statuses:
        return FAILED
    if NOT_IMPLEMENTED in statuses:
        return NOT_IMPLEMENTED
    return PASSED if has_reference else NO_REFERENCE


def grade(component, registry, seed: int) -> Grade:
    """Grade one component against the built-in provider of the same kind and name.

    Args:
        component: a :class:`tt_core.plugins.Component` (kind, name, obj, dist, ...).
        registry: the registry holding the checkers, examples and references.
        seed: the run's seed; the same seed gives the same inputs.

    Returns:
        A :class:`Grade`. NOT_IMPLEMENTED without running the checker when the component
        still raises NotImplementedError; one FAILED case "no checker for kind X" when no
        checker grades its kind; ERROR (with the exception text) when the checker itself
        raised outside a case. The global random generator is seeded for the checks (layers
        draw their initial weights from it) and restored afterwards.
    """
    kind, name = component.kind, component.name
    reference = registry.reference(kind, name)
    result = Grade(kind, name, component.dist, component.version, PASSED, [],
                   None if reference is None else reference.dist)
    if not component.implemented:
        result.status = NOT_IMPLEMENTED
        result.cases.append(Case("implemented", NOT_IMPLEMENTED,
                                 "it still raises NotImplementedError; the built-in one is used meanwhile"))
        return result
    if not registry.has("checker", kind):
        result.status = FAILED
        result.cases.append(Case("checker", FAILED, f"no checker for kind {kind} (a plugin adding a kind "
                                                    "registers its grader as component checker:<kind>)"))
        return result
    checker = registry.get("checker", kind)
    grader = Grader(registry, seed, kind, name, component.dist)
    grader.reference = result.reference
    rng_state = get_rng_state()
    manual_seed(int(grader.rng.integers(2**32)))
    try:
        checker(grader, component.obj, None if reference is None else reference.obj, name)
        if not grader.cases:
            grader.cases.append(Case(f"the {kind} checker", ERROR, "the checker recorded no case: nothing was checked"))
    except NotImplementedError as error:
        grader.cases.append(Case("implemented", NOT_IMPLEMENTED, _outcome(error)[1]))
    except Exception as error:  # the checker's own bug: say so, never show a traceback
        grader.cases.append(Case(f"the {kind} checker", ERROR,
                                 f"the checker itself raised {type(error).__name__}: {error}"))
    finally:
        set_rng_state(rng_state)
    result.cases, result.speed_ratio, result.reference = grader.cases, grader.speed_ratio, grader.reference
    result.status = _status(grader.cases, result.reference is not None)
    return result


def grade_all(components: Iterable, registry, seed: int) -> list[Grade]:
    """:func:`grade` each component, in order, with the same seed."""
    return [grade(component, registry, seed) for component in components]


# ----------------------------------------------------------------------------------------
# Checker of layers and activations
# ----------------------------------------------------------------------------------------

INIT_SAMPLES = 4000  # values per parameter drawn to compare initialisations (at most 200 constructions)
LARGE = 1000.0  # "large magnitude": exp(1000) overflows any float


def call_text(name: str, example: Example, first: str = "") -> str:
    """``"Linear(5, 3)"``: how the checker builds the component, for case names (``first``:
    an argument written before the example's, e.g. ``"optimizer"``)."""
    parts = [first] * bool(first) + [repr(a) for a in example.args] + [f"{k}={v!r}" for k, v in example.kwargs.items()]
    return f"{name}({', '.join(parts)})"


def as_tensors(arrays: Iterable, requires_grad: bool = False, dtype=None) -> list[Tensor]:
    """Fresh Tensors holding copies of ``arrays``; floating ones are cast to ``dtype`` (if
    given) and require grad with ``requires_grad``."""
    tensors = []
    for array in arrays:
        array = np.array(array)
        floating = array.dtype.kind == "f"
        if floating and dtype is not None:
            array = array.astype(dtype)
        tensors.append(Tensor(array, dtype=array.dtype, requires_grad=requires_grad and floating))
    return tensors


def _build(cls, example: Example) -> Module:
    module = cls(*example.args, **example.kwargs)
    if not isinstance(module, Module):
        raise Mismatch(f"building it gave a {type(module).__name__}, not a tt_core Module")
    return module


def _forward(module: Module, inputs: Iterable, training: bool, seed: int | None = None, **tensor_options):
    """The module's output on fresh Tensors of ``inputs``, in training or eval mode, with the
    global generator seeded first when ``seed`` is given (so two modules drawing their
    randomness the same way draw the same numbers)."""
    module.train(training)
    if seed is not None:
        manual_seed(seed)
    tensors = as_tensors(inputs, **tensor_options)
    return module(*tensors), tensors


def _is_random(reference: Module, inputs: tuple) -> bool:
    """Whether the reference's training-mode output depends on the random generator (Dropout)."""
    first, _ = _forward(reference, inputs, True, seed=1)
    second, _ = _forward(reference, inputs, True, seed=2)
    return not np.array_equal(first.data, second.data)


def _check_parameters(grader: Grader, mine: Module, ref: Module) -> None:
    with grader.case("parameter and buffer names and shapes equal the reference's"):
        yours = {k: v.shape for k, v in mine.state_dict().items()}
        theirs = {k: v.shape for k, v in ref.state_dict().items()}
        problems = []
        if missing := [k for k in theirs if k not in yours]:
            problems.append("missing: " + ", ".join(missing))
        if unexpected := [k for k in yours if k not in theirs]:
            problems.append("unexpected: " + ", ".join(unexpected))
        problems += [f"{k} has shape {yours[k]}, the reference {theirs[k]}"
                     for k in theirs if k in yours and yours[k] != theirs[k]]
        kinds = {k: isinstance(v, Parameter) for k, v in mine.named_tensors().items()}
        problems += [f"{k} is a learned Parameter in the reference, a plain buffer in yours"
                     for k, v in ref.named_tensors().items() if isinstance(v, Parameter) and kinds.get(k) is False]
        if problems:
            raise Mismatch("; ".join(problems))


def _check_initialisation(grader: Grader, yours, reference, example: Example, call: str) -> None:
    """Mean and spread of each parameter's initial values over many fresh constructions.

    The tolerances are ~8 standard errors of the sampled statistics: a correct
    initialisation never fails, and one whose scale is off by 1.4x (sqrt 2) or more always does.
    """
    ref = _build(reference, example)
    sizes = [v.size for v in ref.state_dict().values() if v.size]
    if not sizes:
        return
    draws = int(min(200, max(2, math.ceil(INIT_SAMPLES / min(sizes)))))
    with grader.case(f"initialisation: mean and spread of the values over {draws} fresh {call}"):
        samples: dict[str, tuple[list, list]] = {k: ([], []) for k in ref.state_dict()}
        for _ in range(draws):
            mine_state, ref_state = _build(yours, example).state_dict(), _build(reference, example).state_dict()
            for key, (mine_values, ref_values) in samples.items():
                if key in mine_state and mine_state[key].shape == ref_state[key].shape:
                    mine_values.append(mine_state[key].ravel())
                    ref_values.append(ref_state[key].ravel())
        for key, (mine_values, ref_values) in samples.items():
            if mine_values:  # (a missing or misshapen parameter is the case above)
                _compare_statistics(key, np.concatenate(mine_values), np.concatenate(ref_values))


def _compare_statistics(key: str, mine: np.ndarray, ref: np.ndarray) -> None:
    mine, ref = mine.astype(np.float64), ref.astype(np.float64)
    mean, ref_mean, std, ref_std = mine.mean(), ref.mean(), mine.std(), ref.std()
    scale = max(1.0, abs(ref_mean))
    if ref_std <= 1e-12 * scale:  # a constant initialisation (zeros, ones)
        if std > 1e-6 * scale or abs(mean - ref_mean) > 1e-6 * scale:
            raise Mismatch(f"{key} starts at the constant {format_value(ref_mean)} in the reference; yours has mean "
                           f"{format_value(mean)} and spread (std) {format_value(std)}")
        return
    ratio = std / ref_std
    spread_tolerance = 8 * math.sqrt(1 / (2 * mine.size) + 1 / (2 * ref.size)) + 0.02
    if abs(ratio - 1) > spread_tolerance:
        raise Mismatch(f"{key}: spread (std) of the initial values is {format_value(std)}, the reference's "
                       f"{format_value(ref_std)} ({ratio:.2f}x): check the initialisation scale")
    mean_tolerance = 8 * ref_std * math.sqrt(1 / mine.size + 1 / ref.size)
    if abs(mean - ref_mean) > mean_tolerance:
        raise Mismatch(f"{key}: mean of the initial values is {format_value(mean)}, the reference's "
                       f"{format_value(ref_mean)} (spread {format_value(ref_std)}): check the initialisation's centre")


def _check_forward(grader: Grader, mine: Module, ref: Module, example: Example, random: bool) -> None:
    """Forward equal to the reference's after loading its state dict: in eval mode, and in
    training mode (or, for a random layer, with the same statistics)."""
    with grader.case("forward in eval mode equals the reference's (after loading its state dict)") as loaded:
        mine.load_state_dict(ref.state_dict())
        out, _ = _forward(mine, example.inputs, False)
        expected, _ = _forward(ref, example.inputs, False)
        grader.compare(out, expected, what="output in eval mode")
    if not loaded.passed:
        return
    if not random:
        with grader.case("forward in training mode equals the reference's"):
            out, _ = _forward(mine, example.inputs, True, seed=3)
            expected, _ = _forward(ref, example.inputs, True, seed=3)
            grader.compare(out, expected, what="output in training mode")
        return
    draws = int(min(500, max(50, math.ceil(20000 / max(1, _forward(ref, example.inputs, True)[0].size)))))
    with grader.case(f"training mode: random like the reference's (statistics over {draws} draws)"):
        out = _as_array(_forward(mine, example.inputs, True)[0], "the output in training mode")
        expected = _forward(ref, example.inputs, True)[0].data
        if (out.shape, out.dtype) != (expected.shape, expected.dtype):
            raise Mismatch(f"the output in training mode is {out.dtype} of shape {out.shape}, the reference's "
                           f"{expected.dtype} of shape {expected.shape}")
        _compare_random_outputs(
            np.stack([_forward(mine, example.inputs, True)[0].data for _ in range(draws)]).astype(np.float64),
            np.stack([_forward(ref, example.inputs, True)[0].data for _ in range(draws)]).astype(np.float64),
        )


def _compare_random_outputs(mine: np.ndarray, ref: np.ndarray) -> None:
    """Training-mode outputs of a random layer over many draws: the share of zeros, the mean
    and the spread must match the reference's within ~8 standard errors."""
    n = mine.size
    zeros, ref_zeros = (mine == 0).mean(), (ref == 0).mean()
    zero_tolerance = 8 * math.sqrt(max(ref_zeros * (1 - ref_zeros), 1 / n) * 2 / n) + 0.005
    if abs(zeros - ref_zeros) > zero_tolerance:
        raise Mismatch(f"in training mode {zeros:.1%} of the outputs are zero, the reference's {ref_zeros:.1%}")
    ref_std = ref.std()
    mean_tolerance = 8 * ref_std * math.sqrt(2 / n) + 1e-6
    if abs(mine.mean() - ref.mean()) > mean_tolerance:
        raise Mismatch(f"in training mode the mean output is {format_value(mine.mean())}, the reference's "
                       f"{format_value(ref.mean())} (are the kept values scaled like the reference's?)")
    if abs(mine.std() - ref_std) > 0.05 * ref_std + 1e-6:
        raise Mismatch(f"in training mode the spread (std) of the outputs is {format_value(mine.std())}, "
                       f"the reference's {format_value(ref_std)}")


def _check_large_inputs(grader: Grader, mine: Module, ref: Module, example: Example, name: str) -> None:
    """An activation on inputs near ±1000, where exp overflows: the naive formulas give nan."""
    large = tuple(np.where(x >= 0, x + LARGE, x - LARGE).astype(x.dtype) if np.asarray(x).dtype.kind == "f" else x
                  for x in map(np.asarray, example.inputs))
    with grader.case(f"inputs near ±{LARGE:g} (exp overflows there)"):
        out, _ = _forward(mine, large, False)
        expected, _ = _forward(ref, large, False)
        grader.compare(out, expected, what=f"{name} of inputs near ±{LARGE:g}", rtol=1e-4, atol=1e-3)


def _gradients(engine, module: Module, inputs: tuple, weights: np.ndarray, training: bool, dtype=None) -> dict:
    """``{"input 0": grad, "weight": grad, ...}`` of ``sum(module(*inputs) * weights)``."""
    module.zero_grad()
    out, tensors = _forward(module, inputs, training, seed=4, requires_grad=True, dtype=dtype)
    if not isinstance(out, Tensor) or not out.requires_grad:
        raise Mismatch("the output does not require grad: the graph was cut (an operation on .data or a "
                       "NumPy array instead of on Tensors?)")
    engine.backward(out, weights.astype(out.dtype))
    grads = {f"input {i}": t.grad for i, t in enumerate(tensors) if t.requires_grad}
    grads.update({key: p.grad for key, p in module.named_parameters()})
    return grads


def _check_backward(grader: Grader, mine: Module, ref: Module | None, example: Example, random: bool) -> None:
    engine = grader.autograd
    what = "backward: input and parameter gradients"
    if engine is None:
        grader.skip(what, "no autograd engine is installed (it comes with tt-learn)")
        return
    if not any(np.asarray(x).dtype.kind == "f" for x in example.inputs) and not list(mine.parameters()):
        grader.skip(what, "nothing to differentiate: no floating-point input and no parameter")
        return
    training = not random  # a random layer is differentiated in eval mode, where it is deterministic
    if ref is not None:
        with grader.case(f"{what} equal the reference's"):
            weights = grader.rng.standard_normal(_forward(ref, example.inputs, training, seed=4)[0].shape)
            expected = _gradients(engine, ref, example.inputs, weights, training)
            got = _gradients(engine, mine, example.inputs, weights, training)
            for key, value in expected.items():
                if value is not None:
                    grader.compare(got.get(key), value, what=f"gradient of {key}", rtol=1e-4, atol=1e-5,
                                   check_dtype=False)
        return
    with grader.case(f"{what} equal central differences (float64)"):
        for p in mine.parameters():
            p.data = p.data.astype(np.float64)
        weights = grader.rng.standard_normal(_forward(mine, example.inputs, training, seed=4)[0].shape)
        got = _gradients(engine, mine, example.inputs, weights, training, dtype=np.float64)
        tensors = as_tensors(example.inputs, dtype=np.float64)
        targets = {f"input {i}": t.data for i, t in enumerate(tensors) if t.dtype.kind == "f"}
        targets.update({key: p.data for key, p in mine.named_parameters()})

        def loss() -> float:
            mine.train(training)
            manual_seed(4)
            return float(np.sum(np.asarray(mine(*tensors).data, dtype=np.float64) * weights))

        for key, array in targets.items():
            grader.compare(got.get(key), central_differences(loss, array), what=f"gradient of {key}",
                           against="central differences", rtol=1e-4, atol=1e-6, check_dtype=False)


def check_module(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kinds ``layer`` and ``activation``: what a correct Module does.

    With the component's example (``example:<kind>:<Name>``) it checks, in order: that it
    builds; parameter and buffer names and shapes; initialisation statistics over many fresh
    constructions; forward equal to the reference's after loading the reference's state dict,
    in eval and training mode (a random layer such as Dropout: the share of zeros, mean and
    spread over many draws); for activations, inputs near ±1000; backward (every input's and
    parameter's gradient) equal to the reference's when an autograd engine is installed.
    Without a reference: it builds, forward gives finite values, and backward agrees with
    central differences. The speed ratio is the forward pass's.
    """
    example = grader.example(grader.kind, name)
    if example is None:
        grader.skip("build, forward and backward",
                    f"no example is registered as example:{grader.kind}:{name}, so the checker does not know how "
                    "to build it or what to feed it")
        return
    call = call_text(name, example)
    with grader.case(f"builds as {call}") as built:
        mine = _build(yours, example)
    if not built.passed:
        return
    if reference is None:
        with grader.case("forward gives finite values of the inputs' dtype"):
            out = _as_array(_forward(mine, example.inputs, False)[0], "the output")
            dtypes = {np.asarray(x).dtype for x in example.inputs if np.asarray(x).dtype.kind == "f"}
            if out.dtype.kind == "f" and dtypes and out.dtype not in dtypes:
                raise Mismatch(f"{dtypes.pop()} in, {out.dtype} out: keep the inputs' dtype")
            if out.dtype.kind == "f" and not np.isfinite(out).all():
                raise Mismatch(f"the output holds {format_value(out[~np.isfinite(out)][0])}")
        _check_backward(grader, mine, None, example, random=False)
        return
    ref = _build(reference, example)
    random = _is_random(ref, example.inputs)
    _check_parameters(grader, mine, ref)
    _check_initialisation(grader, yours, reference, example, call)
    _check_forward(grader, mine, ref, example, random)
    if grader.kind == "activation":
        _check_large_inputs(grader, mine, ref, example, name)
    _check_backward(grader, mine, ref, example, random)
    mine.eval(), ref.eval()
    mine_inputs, ref_inputs = as_tensors(example.inputs), as_tensors(example.inputs)
    grader.time(lambda: mine(*mine_inputs), lambda: ref(*ref_inputs))


# ----------------------------------------------------------------------------------------
# Checker of ops (and the sample calls that tt-learn's grad_rule checker shares)
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Arg:
    """One input of a sample call: its shape and what values it holds.

    ``values``: "normal" (standard normal), "positive" (in [0.5, 2), for log, sqrt and pow's
    base), "nonzero" (at least 0.2 away from 0: kinks of relu and abs, the pole of 1/x),
    "small" (normal / 2, pow's exponent), "distinct" (well-separated values: no ties for
    max/min), "ties" (a few repeated values) or "mask" (booleans); or ``given``, an array
    (from an op's registered example).
    """

    shape: tuple
    values: str = "normal"
    given: np.ndarray | None = None

    def draw(self, rng: np.random.Generator, dtype) -> np.ndarray:
        shape = self.shape
        if self.given is not None:
            return np.array(self.given, dtype=dtype if self.given.dtype.kind == "f" else self.given.dtype)
        if self.values == "mask":
            return rng.random(shape) < 0.5
        if self.values == "positive":
            x = rng.uniform(0.5, 2.0, shape)
        elif self.values == "nonzero":
            x = rng.standard_normal(shape)
            x = np.sign(x) * (0.2 + np.abs(x))
        elif self.values == "small":
            x = 0.5 * rng.standard_normal(shape)
        elif self.values == "distinct":
            x = rng.permutation(int(np.prod(shape, dtype=int))).reshape(shape) * 0.5 - 1.0
        elif self.values == "ties":
            x = rng.integers(0, 3, shape).astype(np.float64)
        else:
            x = rng.standard_normal(shape)
        return np.asarray(x, dtype=dtype)


@dataclass(frozen=True)
class Sample:
    """One call of an op: its inputs, its attributes, and whether central differences apply
    (not at ties of max/min, where the function has a kink and any one-sided choice is right)."""

    inputs: tuple[Arg, ...]
    attrs: dict = field(default_factory=dict)
    smooth: bool = True
    label: str = ""

    def describe(self) -> str:
        """``"shapes (4, 3) and (3,), axis=1"``: the sample as case names show it."""
        if self.label:
            return self.label
        shapes = [str(a.shape) for a in self.inputs]
        text = f"shape {shapes[0]}" if len(shapes) == 1 else "shapes " + ", ".join(shapes[:-1]) + f" and {shapes[-1]}"
        attrs = ", ".join(f"{k}={_attr_text(v)}" for k, v in self.attrs.items())
        return f"{text}, {attrs}" if attrs else text

    def arrays(self, rng: np.random.Generator, dtype=np.float32) -> list[np.ndarray]:
        return [arg.draw(rng, dtype) for arg in self.inputs]


def _attr_text(value) -> str:
    """An attribute as Python source would show it: ``[1:3, ::2]`` for an index of slices."""
    if isinstance(value, slice):
        text = ":".join("" if v is None else str(v) for v in (value.start, value.stop, value.step))
        return text[:-1] if text.endswith(":") and value.step is None else text
    if isinstance(value, tuple) and any(isinstance(v, (slice, np.ndarray)) for v in value):
        return "[" + ", ".join(_attr_text(v) for v in value) + "]"
    if isinstance(value, np.ndarray):
        return str(value.tolist())
    if isinstance(value, np.dtype):
        return str(value)
    return repr(value)


def _sample(*inputs, smooth: bool = True, label: str = "", **attrs) -> Sample:
    """``_sample((4, 3), Arg((3,), "positive"), axis=1)``: bare shapes are normal inputs."""
    return Sample(tuple(a if isinstance(a, Arg) else Arg(a) for a in inputs), attrs, smooth, label)


def _binary(second: str = "normal", first: str = "normal") -> list[Sample]:
    """Same shapes, the two ways of broadcasting, and 0-d operands."""
    return [_sample(Arg(a, first), Arg(b, second)) for a, b in [((3, 4), (3, 4)), ((4, 3), (3,)),
                                                                  ((4, 1), (1, 3)), ((), ())]]


def _unary(values: str = "normal") -> list[Sample]:
    return [_sample(Arg((3, 4), values)), _sample(Arg((2, 3, 2), values)), _sample(Arg((), values))]


def _reductions(values: str = "normal") -> list[Sample]:
    return [_sample(Arg((3, 4), values)), _sample(Arg((3, 4), values), axis=1),
            _sample(Arg((2, 3, 4), values), axis=(0, 2), keepdims=True),
            _sample(Arg((2, 3, 4), values), axis=-1, keepdims=True)]


def _softmaxes() -> list[Sample]:
    return [_sample((3, 4)), _sample((2, 3, 4), axis=1), _sample((5,), axis=0)]


REPEATED = np.array([0, 2, 0])  # an index that picks row 0 twice: its gradients must add up

SAMPLES: dict[str, list[Sample]] = {
    "add": _binary(), "sub": _binary(), "mul": _binary(),
    "div": _binary(second="nonzero"),
    "pow": _binary(first="positive", second="small"),
    "neg": _unary(),
    "matmul": [_sample((3, 4), (4, 5)), _sample((2, 3, 4), (4, 5)), _sample((4,), (4, 3)), _sample((3, 4), (4,))],
    "sum": _reductions(), "mean": _reductions(),
    "max": _reductions("distinct") + [_sample(Arg((3, 4), "ties"), axis=1, smooth=False, label="ties, axis=1")],
    "min": _reductions("distinct") + [_sample(Arg((3, 4), "ties"), axis=0, smooth=False, label="ties, axis=0")],
    "getitem": [_sample((3, 4), index=1), _sample((4, 3), index=(slice(1, 3), slice(None, None, 2))),
                _sample((3, 2), index=REPEATED), _sample((2, 3), index=(slice(None), REPEATED))],
    "reshape": [_sample((3, 4), shape=(4, 3)), _sample((2, 3, 2), shape=(-1,))],
    "transpose": [_sample((3, 4), axes=(1, 0)), _sample((2, 3, 4), axes=(2, 0, 1))],
    "concatenate": [_sample((2, 3), (4, 3), axis=0), _sample((2, 1), (2, 3), (2, 2), axis=1)],
    "stack": [_sample((2, 3), (2, 3), axis=0), _sample((3,), (3,), (3,), axis=-1)],
    "where": [_sample(Arg((3, 4), "mask"), (3, 4), (3, 4)), _sample(Arg((3, 4), "mask"), (4,), (3, 1))],
    "cast": [_sample((3, 4), dtype=np.dtype(np.float64))],
    "exp": _unary(), "log": _unary("positive"), "sqrt": _unary("positive"), "abs": _unary("nonzero"),
    "clip": [_sample((3, 4), low=-0.5, high=0.5), _sample((3, 4), low=0.0), _sample((3, 4), high=0.3)],
    "relu": _unary("nonzero"), "sigmoid": _unary(), "tanh": _unary(), "gelu": _unary(),
    "softmax": _softmaxes(), "log_softmax": _softmaxes(),
}
"""Sample calls of tt-core's primitives. Another op is described by an example
(``example:op:<name>``: inputs and attributes as ``Example.kwargs``), or probed."""

BROADCASTING = frozenset({"add", "sub", "mul", "div", "pow", "where"})
"""Ops whose operands broadcast: their gradient diagnoses say which shapes were broadcast."""

OVERFLOWING = frozenset({"sigmoid", "tanh", "gelu", "softmax", "log_softmax"})
"""Ops whose naive formula overflows at large magnitudes (exp of 1000 is inf): checked at ±1000."""


def _probe(forward: Callable, rng: np.random.Generator) -> list[Sample]:
    """The sample call of an op nothing describes, if it is element-wise-like: one input of
    shape (3, 4) and no attributes, when the kernel returns an array for it. (Several inputs
    are not guessed: which shapes they take is the op's business.)"""
    sample = _sample(Arg((3, 4), "positive"), label="shape (3, 4) (a guessed call: register example:op:<name> "
                                                    "to say how the op is called)")
    try:
        with np.errstate(all="ignore"):
            out = forward(Context(), *sample.arrays(rng, np.float64))
    except Exception:  # it needs other inputs or attributes: nothing to guess from
        return []
    return [sample] if isinstance(out, np.ndarray) else []


def op_samples(grader: Grader, name: str, forward: Callable) -> list[Sample]:
    """The sample calls of op ``name``: its example (``example:op:<name>``: ``inputs`` are the
    arrays, ``kwargs`` the attributes), else the table :data:`SAMPLES`, else a probe of
    ``forward`` with one input. Empty when nothing works."""
    example = grader.example("op", name)
    if example is not None:
        inputs = tuple(Arg(np.shape(x), given=np.asarray(x)) for x in example.inputs)
        return [Sample(inputs, dict(example.kwargs))]
    return SAMPLES.get(name) or _probe(forward, grader.rng)


def run_kernel(forward: Callable, arrays: list[np.ndarray], attrs: dict) -> tuple[Context, np.ndarray]:
    """Run a kernel as dispatch does, and fill the context as dispatch does when recording
    (every floating input needs a gradient). Returns the context and the output array."""
    ctx = Context()
    out = np.asarray(forward(ctx, *arrays, **attrs))
    ctx.inputs, ctx.out, ctx.attrs = list(arrays), out, attrs
    ctx.needs = tuple(a.dtype.kind == "f" for a in arrays)
    return ctx, out


def _dtype_problem(arrays: list[np.ndarray], out: np.ndarray, expected: np.ndarray | None) -> str | None:
    """``"float32 in, float64 out"`` when the kernel changed the dtype (and the reference did not)."""
    dtypes = sorted({str(a.dtype) for a in arrays if a.dtype.kind == "f"})
    wanted = expected.dtype if expected is not None else (np.dtype(dtypes[0]) if len(dtypes) == 1 else None)
    if wanted is None or out.dtype == wanted:
        return None
    if expected is None:
        return f"{', '.join(dtypes)} in, {out.dtype} out: keep the inputs' dtype"
    return f"{', '.join(dtypes) or 'non-float'} in, {out.dtype} out (the reference gives {wanted})"


def _views(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The same values as non-contiguous views: transposed (2-D and more) or strided (1-D)."""
    views = []
    for a in arrays:
        if a.ndim >= 2:
            view = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
        elif a.ndim == 1:
            view = np.repeat(a, 2)[::2]
        else:
            view = a
        views.append(view)
    return views


def _check_values(grader: Grader, yours, reference, name: str, sample: Sample, arrays: list[np.ndarray],
                  what: str, **tolerances) -> None:
    """One forward call of ``yours`` against ``reference`` (or on its own) on ``arrays``."""
    originals = [a.copy() for a in arrays]
    _, out = run_kernel(yours.forward, arrays, sample.attrs)
    for i, (a, original) in enumerate(zip(arrays, originals)):
        if not np.array_equal(a, original, equal_nan=a.dtype.kind == "f"):
            raise Mismatch(f"the kernel changed input {i} in place: a kernel must leave its inputs as they are")
    expected = None if reference is None else run_kernel(reference.forward, originals, sample.attrs)[1]
    if (problem := _dtype_problem(originals, out, expected)) is not None:
        raise Mismatch(problem)
    if expected is not None:
        grader.compare(out, expected, what=what, **tolerances)
    elif out.dtype.kind == "f" and not np.isfinite(out).all():
        raise Mismatch(f"{what} holds {format_value(out[~np.isfinite(out)][0])}")


def check_rule(grader: Grader, backward: Callable, forward: Callable, name: str, sample: Sample,
               reference_rule: Callable | None, dtype=np.float64) -> None:
    """Raise Mismatch unless rule ``backward`` gives every input's gradient correctly on ``sample``.

    The kernel ``forward`` runs in ``dtype``; the rule's gradients (of ``sum(out * g)`` for a
    random ``g``) are checked for their number and shapes, against ``reference_rule`` when
    given, and against central differences in float64 (when the sample is smooth).
    """
    arrays = sample.arrays(grader.rng, dtype)
    ctx, out = run_kernel(forward, arrays, sample.attrs)
    grad = grader.rng.standard_normal(out.shape).astype(out.dtype)
    expected = None
    if reference_rule is not None:
        ref_ctx, _ = run_kernel(forward, [a.copy() for a in arrays], sample.attrs)
        expected = reference_rule(ref_ctx, grad.copy())
    grads = backward(ctx, grad.copy())
    if not isinstance(grads, (tuple, list)):
        raise Mismatch(f"the rule returned a {type(grads).__name__}; it must return a tuple with one gradient "
                       f"per input ({len(arrays)})")
    if len(grads) != len(arrays):
        raise Mismatch(f"the rule returned {len(grads)} gradient{'s' * (len(grads) != 1)} for {len(arrays)} "
                       f"input{'s' * (len(arrays) != 1)}")
    note = broadcast_note(a.shape for a in arrays) if name in BROADCASTING else ""
    for i, (x, g) in enumerate(zip(arrays, grads)):
        if not ctx.needs[i]:
            continue
        what = f"gradient of input {i}"
        if g is None:
            raise Mismatch(f"{what} is None, but input {i} needs one (ctx.needs[{i}] is True)")
        g = _as_array(g, what)
        if g.shape != x.shape:
            hint = f" ({note}: sum the gradient over the broadcast axes)" if note else ""
            raise Mismatch(f"{what} has shape {g.shape}, but input {i} has shape {x.shape}{hint}")
        if dtype != np.float64:
            if g.dtype != x.dtype:
                raise Mismatch(f"{x.dtype} in, {what} {g.dtype}: keep the input's dtype")
            continue
        if expected is not None and expected[i] is not None:
            grader.compare(g, expected[i], what=what, rtol=1e-6, atol=1e-9, note=note, check_dtype=False)
        if sample.smooth:
            def loss() -> float:
                return float(np.sum(np.asarray(forward(Context(), *arrays, **sample.attrs), dtype=np.float64) * grad))

            grader.compare(g, central_differences(loss, x), what=what, rtol=1e-4, atol=1e-6, note=note,
                           against="central differences", check_dtype=False)


def rule_cases(grader: Grader, backward: Callable, forward: Callable, name: str, samples: list[Sample],
               reference_rule: Callable | None) -> None:
    """The gradient cases of a rule: each sample in float64, and the dtype kept in float32."""
    against = "the reference and central differences" if reference_rule is not None else "central differences"
    for sample in samples:
        if not any(arg.draw(grader.rng, np.float64).dtype.kind == "f" for arg in sample.inputs):
            continue
        with grader.case(f"gradients on {sample.describe()} vs {against}"):
            check_rule(grader, backward, forward, name, sample, reference_rule)
    if samples:
        with grader.case("gradient dtype: float32 in, float32 out"):
            check_rule(grader, backward, forward, name, samples[0], None, dtype=np.float32)


def reference_rule_of(registry, name: str) -> tuple[Callable | None, str | None]:
    """The built-in gradient rule of op ``name`` and its distribution: the built-in Op's own
    backward, else the built-in grad_rule; ``(None, None)`` when there is none."""
    op = registry.reference("op", name)
    if op is not None and getattr(op.obj, "backward", None) is not None:
        return op.obj.backward, op.dist
    rule = registry.reference("grad_rule", name)
    return (rule.obj.backward, rule.dist) if rule is not None else (None, None)


def check_op(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``op``: what a correct kernel (and, if it has one, rule) does.

    On each sample call (:func:`op_samples`) in float32: the values equal the reference
    kernel's, the dtype is kept (float32 in, float32 out) and the inputs are left unchanged;
    then the inputs as non-contiguous views (transposed or strided), and for ops whose naive
    formula overflows, inputs near ±1000. When the Op carries its own backward, its gradients
    are checked against central differences in float64 and against the reference rule
    (:func:`check_rule`). Without a reference: finite values of the inputs' dtype, and the
    rule against central differences. The speed ratio is the forward pass's on the first sample.
    """
    samples = op_samples(grader, name, yours.forward)
    if not samples:
        grader.skip("values and gradients", f"no sample call of op {name!r} is known and it does not run on one "
                                            f"array alone: register example:op:{name} to say how it is called")
        return
    for sample in samples:
        with grader.case(f"values on {sample.describe()}"):
            _check_values(grader, yours, reference, name, sample, sample.arrays(grader.rng), f"{name} output")
    with grader.case(f"values on non-contiguous views (transposed or strided) of {samples[0].describe()}"):
        arrays = _views(samples[0].arrays(grader.rng))
        _check_values(grader, yours, reference, name, samples[0], arrays, f"{name} of non-contiguous inputs")
    if name in OVERFLOWING and reference is not None:
        with grader.case(f"values on inputs near ±{LARGE:g} (exp overflows there)"):
            arrays = [np.where(x >= 0, x + LARGE, x - LARGE).astype(x.dtype) for x in samples[0].arrays(grader.rng)]
            _check_values(grader, yours, reference, name, samples[0], arrays, f"{name} of inputs near ±{LARGE:g}",
                          rtol=1e-4, atol=1e-3)
    if yours.backward is not None:
        rule, _ = reference_rule_of(grader.registry, name)
        rule_cases(grader, yours.backward, yours.forward, name, samples, rule)
    if reference is not None:
        arrays, attrs = _timing_arrays(reference.forward, samples[0], grader.rng), samples[0].attrs
        grader.time(lambda: yours.forward(Context(), *arrays, **attrs),
                    lambda: reference.forward(Context(), *arrays, **attrs))


def _timing_arrays(forward: Callable, sample: Sample, rng: np.random.Generator) -> list[np.ndarray]:
    """The sample's inputs made 16 times longer along their first and last axes (so the
    arithmetic, not the call, is timed), or as they are when the op does not take that."""
    arrays = sample.arrays(rng)
    longer = [np.repeat(np.repeat(a, 16, axis=0), 16, axis=-1) if a.ndim >= 2 else a for a in arrays]
    try:
        with np.errstate(all="ignore"):
            forward(Context(), *longer, **sample.attrs)
    except Exception:  # the shapes no longer fit each other (a convolution's weight, a reshape)
        return arrays
    return longer


# ----------------------------------------------------------------------------------------
# Helpers for checkers of any kind, and the checker of functions
# ----------------------------------------------------------------------------------------


def expect(condition: bool, diagnosis: str) -> None:
    """Raise :class:`Mismatch` with ``diagnosis`` unless ``condition`` holds."""
    if not condition:
        raise Mismatch(diagnosis)


def raises(call: Callable[[], Any]) -> bool:
    """Whether ``call()`` raises an Exception (of any class: which error a component raises
    for bad input is its own business; that it raises is the contract)."""
    try:
        call()
    except Exception:  # noqa: BLE001
        return True
    return False


def compare_values(grader: Grader, yours, reference, what: str = "the result", rtol: float = 1e-5,
                   atol: float = 1e-6, *, check_dtype: bool = True) -> None:
    """Raise :class:`Mismatch` unless ``yours`` has the structure and values of ``reference``.

    Arrays, Tensors and numbers are compared by :meth:`Grader.compare` (with the tolerances
    and ``check_dtype``); tuples and lists element by element, dicts key by key (every key
    of the reference must be there), None must be None, anything else by ``==``. The
    diagnosis names the element: ``"the result[1]['loss'] differs: ..."``.
    """
    if isinstance(reference, dict):
        if not isinstance(yours, dict):
            raise Mismatch(f"{what} is a {type(yours).__name__}, the reference's a dict")
        if missing := [key for key in reference if key not in yours]:
            raise Mismatch(f"{what} has no {', '.join(map(repr, missing))} (the reference's keys: "
                           f"{', '.join(map(repr, reference))})")
        for key, value in reference.items():
            compare_values(grader, yours[key], value, f"{what}[{key!r}]", rtol, atol, check_dtype=check_dtype)
    elif isinstance(reference, (tuple, list)):
        if not isinstance(yours, (tuple, list)) or len(yours) != len(reference):
            got = f"a {type(yours).__name__}" + (f" of {len(yours)}" if isinstance(yours, (tuple, list)) else "")
            raise Mismatch(f"{what} is {got}, the reference's a {type(reference).__name__} of {len(reference)}")
        for index, (mine, theirs) in enumerate(zip(yours, reference)):
            compare_values(grader, mine, theirs, f"{what}[{index}]", rtol, atol, check_dtype=check_dtype)
    elif isinstance(reference, (Tensor, np.ndarray, np.generic, int, float)):  # (bool is an int)
        grader.compare(yours, reference, what, rtol, atol, check_dtype=check_dtype)
    elif reference is None:
        if yours is not None:
            raise Mismatch(f"{what} is a {type(yours).__name__}, the reference gives None")
    elif yours != reference:
        raise Mismatch(f"{what} is {yours!r}, the reference's {reference!r}")


def signature_parameters(obj) -> dict[str, inspect.Parameter] | None:
    """The parameters of ``obj``'s call signature by name, or None when it cannot be read."""
    try:
        return dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return None


def check_arguments(grader: Grader, yours, reference, name: str) -> bool:
    """A case: ``yours`` accepts every argument ``reference`` takes, by the same names.

    Returns False (and records nothing) when there is no reference or either signature
    cannot be read; True when the case was recorded.
    """
    theirs, mine = signature_parameters(reference), signature_parameters(yours)
    if reference is None or theirs is None or mine is None:
        return False
    with grader.case("takes the reference's arguments"):
        if any(p.kind is p.VAR_KEYWORD for p in mine.values()):
            return True
        named = [n for n, p in theirs.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self"]
        if missing := [n for n in named if n not in mine]:
            raise Mismatch(f"{name} lacks the argument(s) {', '.join(missing)}: the reference's signature is "
                           f"{name}{inspect.signature(reference)}")
    return True


def check_function(grader: Grader, yours, reference, name: str) -> None:
    """The checker of kind ``function``: the check of the function's own contract.

    Functions share no contract beyond being called, so each one's check is its own
    component, ``checker:function:<name>`` (a checker with the usual signature, registered
    by the package that owns the reference function), to which this checker hands over.
    A function without such a check gets: that it takes the reference's arguments (without
    a reference, or an unreadable signature: that it can be called); then, when
    ``example:function:<name>`` is registered, one call on the example's arguments,
    ``fn(*example.args, *example.inputs, **example.kwargs)`` (fresh copies for each call),
    whose result must equal the reference's (:func:`compare_values`); else a skipped case
    saying that no check is known. Without a reference the grade is "no reference".
    """
    specific = f"function:{name}"
    if grader.registry.has("checker", specific):
        grader.registry.get("checker", specific)(grader, yours, reference, name)
        return
    if not check_arguments(grader, yours, reference, name):
        with grader.case("can be called"):
            if not callable(yours):
                raise Mismatch(f"function:{name} is a {type(yours).__name__}, which cannot be called")
    example = grader.example("function", name)
    if example is None:
        grader.skip("results", f"no check of function {name!r} is known (nothing is registered as checker:{specific}) "
                               f"and no example:{specific} says how to call it: its results are not checked")
        return
    arguments = (*example.args, *example.inputs)
    title = "the reference's result" if reference is not None else "a result"
    with grader.case(f"{name} called on its example's arguments gives {title}"):
        mine = yours(*copy.deepcopy(arguments), **copy.deepcopy(example.kwargs))
        if reference is not None:
            expected = reference(*copy.deepcopy(arguments), **copy.deepcopy(example.kwargs))
            compare_values(grader, mine, expected, f"the result of {name}")


# ----------------------------------------------------------------------------------------
# Examples of tt-core's layers and activations
# ----------------------------------------------------------------------------------------


def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _activation_example(rng: np.random.Generator) -> Example:
    return Example(inputs=(_normal(rng, 4, 6, scale=2.0),))


def _softmax_example(rng: np.random.Generator) -> Example:
    return Example(kwargs={"axis": 1}, inputs=(_normal(rng, 2, 5, 3, scale=2.0),))


EXAMPLES: dict[str, Callable[[np.random.Generator], Example]] = {
    "layer:Linear": lambda rng: Example(args=(5, 3), inputs=(_normal(rng, 4, 5),)),
    # positive inputs: dropping and rescaling both show in the mean of the outputs
    "layer:Dropout": lambda rng: Example(args=(0.3,), inputs=(rng.uniform(0.5, 1.5, (8, 16)).astype(np.float32),)),
    **{f"activation:{name}": _activation_example for name in ("ReLU", "Sigmoid", "Tanh", "GELU")},
    "activation:Softmax": _softmax_example,
    "activation:LogSoftmax": _softmax_example,
}


def epoch_arrays(loader, what: str = "the loader") -> list[tuple[np.ndarray, np.ndarray]]:
    """One pass over ``loader`` as ``(x, y)`` arrays; a Mismatch names the first batch that is
    not a pair of Tensors."""
    epoch = []
    for number, batch in enumerate(loader):
        expect(isinstance(batch, (tuple, list)) and len(batch) == 2,
               f"{what}: batch {number} is a {type(batch).__name__}, not a pair (inputs, labels)")
        expect(all(isinstance(part, Tensor) for part in batch),
               f"{what}: batch {number} holds {', '.join(type(p).__name__ for p in batch)}: each must be a Tensor")
        epoch.append((batch[0].data, batch[1].data))
    return epoch


def register_graders(registry, checkers: dict[str, Callable], examples: dict[str, Callable] | None = None,
                     functions: dict[str, Callable] | None = None) -> None:
    """Register a package's graders with its plugin's registrar: ``checkers`` by the kind they
    grade (``checker:<kind>``), ``functions`` by the function they check
    (``checker:function:<name>``, which the ``function`` checker hands that function to) and
    ``examples`` by ``<kind>:<Name>`` (``example:<kind>:<Name>``)."""
    for kind, checker in checkers.items():
        registry.register("checker", kind, checker)
    for name, check in (functions or {}).items():
        registry.register("checker", f"function:{name}", check)
    for key, make in (examples or {}).items():
        registry.register("example", key, make)

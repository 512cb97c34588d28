"""The milestones reach the later Acts only through the registry, never by import.

A module under ``tt_milestones/history/`` that imported ``tt_perf`` (or any Act after tt-core)
would run the built-in code whatever provider the user chose, and would fail to import when
that Act is not installed while ``list`` shows the milestone runnable. This test reads every
history module with ``ast`` and fails on any such import: ``import X``, ``from X import ...``,
and ``importlib.import_module("X")`` / ``__import__("X")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HISTORY = Path(__file__).resolve().parents[1] / "src" / "tt_milestones" / "history"
LATER_ACTS = frozenset({"tt_learn", "tt_data", "tt_language", "tt_perf"})
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import in ``tree``, static or by a literal name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def later_act_imports(source: str) -> list[str]:
    """``"line N: module"`` for every import of a later Act in ``source``."""
    return [f"line {line}: {module}" for line, module in imported_modules(ast.parse(source))
            if module.split(".", 1)[0] in LATER_ACTS]


MODULES = sorted(HISTORY.glob("*.py"))


def test_the_history_modules_are_found():
    assert {"m01_perceptron.py", "m06_olympics.py"} <= {path.name for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_history_module_imports_no_later_act(path):
    offending = later_act_imports(path.read_text())
    assert not offending, (
        f"{path.name} imports a later Act ({'; '.join(offending)}): get the component with "
        "ctx.component(kind, name) and declare it in the milestone's spec"
    )


@pytest.mark.parametrize("source", [
    "import tt_perf",
    "import numpy, tt_data.loader as loader",
    "from tt_language.model import GPT",
    "def run(ctx):\n    from tt_learn import optim\n",
    "import importlib\nimportlib.import_module('tt_perf.compress')",
    "__import__('tt_learn')",
])
def test_the_check_catches_every_form_of_import(source):
    assert later_act_imports(source)


@pytest.mark.parametrize("source", [
    "import numpy as np\nfrom tt_core import Tensor\nfrom tt_core.errors import TinyTorchError",
    "from ..api import RunContext\nfrom . import m03_mlp",
    "import matplotlib.pyplot as plt\nimport rich\nfrom tt_milestones.api import RunContext",
    "x = 'tt_perf is reached through ctx.component'",
])
def test_the_check_allows_core_stdlib_and_relative_imports(source):
    assert later_act_imports(source) == []

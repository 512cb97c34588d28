"""``run --use DIST``, and runs that say whose code ran (header, ``report.json``, ``info``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tt_core
from tt_milestones.api import Requirement, RunContext
from tt_milestones.cli import main
from tt_milestones.runner import not_builtin

from tt_core.plugins import ComponentRegistry

# A learner's package: its own Linear and relu gradient rule, and a kernel for neg that is
# still a stub (so the built-in one must run). Its milestone u1 uses all three.
MINE = """
import numpy as np
import tt_core
from tt_core import GradRule, Linear, Op, hookimpl


class MyLinear(Linear):
    def forward(self, x):
        return x @ self.weight.T + self.bias


def relu_grad(ctx, grad):
    return (grad * (ctx.out > 0),)


def neg_kernel(ctx, a):
    \"\"\"Not written yet.\"\"\"
    raise NotImplementedError


def run(ctx):
    layer = ctx.component("layer", "Linear")(2, 1)
    x = tt_core.tensor([[1.0, -2.0]])
    y = tt_core.apply("neg", layer(x).relu())
    ctx.check("shape_ok", float(y.shape == (1, 1)), ">=", 1.0)


@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Linear", MyLinear)
    registry.register("grad_rule", "relu", GradRule(relu_grad))
    registry.register("op", "neg", Op(neg_kernel))


@hookimpl
def tt_register_milestones(registry):
    from tt_milestones.api import MilestoneSpec, Requirement
    requires = (Requirement("layer", "Linear", "tt-core"), Requirement("op", "relu", "tt-core"),
                Requirement("op", "neg", "tt-core"))
    registry.register(MilestoneSpec("u1", "mine", 2024, "Mine", "One. Two.", requires, "a shape", f"{__name__}:run"))
"""

# a second package, for a repeated --use: only a matmul gradient rule
OTHER = """
from tt_core import GradRule, hookimpl


def matmul_grad(ctx, grad):
    a, b = ctx.inputs
    return grad @ b.T, a.T @ grad


@hookimpl
def tt_register_components(registry):
    registry.register("grad_rule", "matmul", GradRule(matmul_grad))
"""


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture
def mine(only_core, fake_plugin):
    fake_plugin("my-tinytorch", "my_tinytorch_mod", MINE)


def test_run_use_runs_my_components_and_reports_them(mine, capsys, tmp_path):
    code, out, _ = run_main(capsys, "run", "u1", "--use", "my-tinytorch", "--out", str(tmp_path))
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("your code:"))
    assert header == "your code: layer:Linear (my-tinytorch 0.1), grad_rule:relu (my-tinytorch 0.1)"
    assert "ran on your code: layer:Linear (my-tinytorch 0.1), grad_rule:relu (my-tinytorch 0.1)" in out
    providers = report_of(tmp_path)["providers"]
    assert providers["layer:Linear"] == {"dist": "my-tinytorch", "version": "0.1", "builtin": False}
    assert providers["op:relu"]["dist"] == "tt-core" and providers["op:relu"]["builtin"] is True
    assert providers["op:relu"]["rule"] == {"dist": "my-tinytorch", "version": "0.1", "builtin": False}
    # the stub kernel of neg is never used: the built-in op ran
    assert providers["op:neg"]["dist"] == "tt-core" and providers["op:neg"]["version"] == tt_core.__version__
    assert {"op:matmul", "op:add"} <= set(providers)  # what MyLinear's forward ran
    assert "op:sub" not in providers  # only what the run used


def test_without_use_the_builtin_ones_run(mine, capsys, tmp_path):
    code, out, _ = run_main(capsys, "run", "u1", "--out", str(tmp_path))
    assert code == 0
    # tt-core alone has no gradient rules: mine is the only relu rule, so it is used anyway
    assert "your code: grad_rule:relu (my-tinytorch 0.1)\n" in out
    assert "ran on your code: grad_rule:relu (my-tinytorch 0.1)\n" in out
    providers = report_of(tmp_path)["providers"]
    assert providers["layer:Linear"]["dist"] == "tt-core"
    assert not_builtin(providers) == ["grad_rule:relu (my-tinytorch 0.1)"]


def test_a_run_on_builtin_code_says_so(only_core, capsys, tmp_path):
    code, out, _ = run_main(capsys, "run", "01", "--quick", "--out", str(tmp_path))
    assert code == 0 and "all components built-in" in out and "your code" not in out
    assert not_builtin(report_of(tmp_path)["providers"]) == []


def test_use_is_repeatable_and_takes_any_spelling(mine, fake_plugin, capsys, tmp_path):
    fake_plugin("other-rules", "other_rules_mod", OTHER)
    args = ("run", "u1", "--use", "My_TinyTorch", "--use", "other.rules", "--out", str(tmp_path))
    code, out, _ = run_main(capsys, *args)
    assert code == 0
    assert "grad_rule:matmul (other-rules 0.1)" in out and "layer:Linear (my-tinytorch 0.1)" in out
    assert report_of(tmp_path)["providers"]["op:matmul"]["rule"]["dist"] == "other-rules"


@pytest.mark.parametrize("dist", ["nobody", "my-tinytorc"])
def test_unknown_use_is_a_usage_error_naming_the_installed_ones(mine, capsys, dist):
    code, out, err = run_main(capsys, "run", "u1", "--use", dist)
    assert code == 2 and "Traceback" not in out + err
    assert f"--use {dist}: no installed TinyTorch plugin is called {dist!r}" in err
    assert "installed: my-tinytorch, tt-core, tt-milestones" in err


def test_use_of_a_plugin_that_failed_to_load(only_core, fake_plugin, capsys):
    fake_plugin("broken-import", "broken_import_mod", "raise RuntimeError('broken on purpose')\n")
    code, _, err = run_main(capsys, "run", "01", "--use", "broken-import")
    assert code == 2 and "broken-import failed to load, so it provides nothing" in err


def test_perceptron_runs_on_my_linear(mine, capsys, tmp_path):
    code, out, _ = run_main(capsys, "run", "01", "--quick", "--use", "my-tinytorch", "--out", str(tmp_path))
    report = report_of(tmp_path)
    assert code == 0 and report["reached"] is True
    assert "your code: layer:Linear (my-tinytorch 0.1)" in out
    assert report["providers"]["layer:Linear"]["dist"] == "my-tinytorch"
    assert report["providers"]["op:matmul"]["dist"] == "tt-core"


def test_info_shows_the_chosen_provider(mine, capsys, monkeypatch):
    code, out, _ = run_main(capsys, "info", "u1")
    assert code == 0
    line = next(line for line in out.splitlines() if "layer:Linear" in line)
    assert line.endswith(f"from tt-core {tt_core.__version__}")
    monkeypatch.setenv("TT_PROVIDERS", "my-tinytorch")
    tt_core.reset_plugins()
    code, out, _ = run_main(capsys, "info", "u1")
    lines = {line.split("]")[1].split()[0]: line for line in out.splitlines() if line.startswith("  [")}
    assert lines["layer:Linear"].endswith("from my-tinytorch 0.1 (yours; built-in: tt-core)")
    assert lines["op:neg"].endswith(f"from tt-core {tt_core.__version__}")  # a stub is never chosen


def test_run_context_records_what_it_hands_out():
    registry = ComponentRegistry()
    for dist, version in (("tt-core", "0.1.0"), ("mine", "2.0")):
        registrar = registry.registrar(dist, version)
        registrar.register("layer", "Linear", type(f"Linear_{dist}", (), {}))
        registrar.commit()
    registry.use = ("mine",)
    ctx = RunContext(registry=registry, out=Path("."), declared=(Requirement("layer", "Linear", "tt-core"),))
    layer = ctx.component("layer", "Linear")
    assert layer.__name__ == "Linear_mine"
    (component,) = ctx.used.values()
    assert list(ctx.used) == [("layer", "Linear")] and component.dist == "mine" and component.version == "2.0"


def test_not_builtin_names_kernels_and_separate_rules():
    providers = {
        "layer:Linear": {"dist": "mine", "version": "1.0", "builtin": False},
        "op:cube": {"dist": "mine", "version": "1.0", "builtin": False,
                    "rule": {"dist": "mine", "version": "1.0", "builtin": False}},
        "op:relu": {"dist": "tt-core", "version": "0.1.0", "builtin": True,
                    "rule": {"dist": "mine", "version": None, "builtin": False}},
        "op:add": {"dist": "tt-core", "version": "0.1.0", "builtin": True,
                   "rule": {"dist": "tt-learn", "version": "0.1.0", "builtin": True}},
    }
    assert not_builtin(providers) == ["layer:Linear (mine 1.0)", "op:cube (mine 1.0)", "grad_rule:relu (mine)"]

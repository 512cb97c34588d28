"""``tt-milestones new DIR --act ACT``: a learner's package of stubs, that installs and runs."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import scaffold_reference as ref
import tt_core
from tt_core import GradRule, Module, Op
from tt_core.kinds import KINDS
from tt_core.plugins import ComponentRegistry, is_implemented
from tt_milestones.cli import main
from tt_milestones.scaffold import (
    ACTS,
    ScaffoldError,
    act_components,
    plan_package,
    snake_case,
    write_package,
)


@pytest.fixture
def load_generated(monkeypatch):
    """``load(folder, import_name) -> registry``: import a generated package from its source
    folder and run its hook on a fresh registry (the modules are forgotten afterwards)."""
    loaded: list[str] = []

    def load(folder: Path, import_name: str) -> ComponentRegistry:
        monkeypatch.syspath_prepend(str(folder / "src"))
        loaded.append(import_name)
        plugin = importlib.import_module(f"{import_name}._plugin")
        registry = ComponentRegistry()
        registrar = registry.registrar(import_name.replace("_", "-"), "0.1.0")
        plugin.tt_register_components(registry=registrar)
        registrar.commit()
        return registry

    yield load
    for name in list(sys.modules):
        if name.split(".")[0] in loaded:
            del sys.modules[name]


def reference_registry() -> ComponentRegistry:
    registry = ComponentRegistry()
    registrar = registry.registrar("tt-core", "0.1.0")
    for kind, name, obj in ref.COMPONENTS:
        registrar.register(kind, name, obj)
    registrar.commit()
    return registry


def parameters(func) -> list[tuple]:
    """Names, kinds and defaults: the signature without its annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.fixture
def generated(tmp_path, load_generated):
    scaffold = plan_package(reference_registry(), "core", "my-shapes")
    write_package(scaffold, tmp_path / "pkg")
    return scaffold, load_generated(tmp_path / "pkg", "my_shapes")


def test_every_component_gets_a_stub_that_is_not_implemented(generated):
    scaffold, registry = generated
    expected = {(k, n) for k, n, _ in ref.COMPONENTS if k not in ("checker", "kind")}
    assert {(c.kind, c.name) for c in registry} == expected
    assert {(k, n) for k, n, _, _ in scaffold.components} == expected
    assert not any(is_implemented(c.obj) for c in registry)
    assert not any(c.implemented for c in registry)


def test_ops_keep_the_reference_saves_and_rules_are_grad_rules(generated):
    _, registry = generated
    cube, twice = registry.get("op", "cube"), registry.get("op", "twice")
    assert isinstance(cube, Op) and cube.saves == ("square",) and cube.backward is not None
    assert isinstance(twice, Op) and twice.saves == () and twice.backward is None
    assert parameters(cube.forward) == parameters(ref.cube) and parameters(twice.forward) == parameters(ref.twice)
    assert "``ctx.square``" in cube.forward.__doc__
    rule = registry.get("grad_rule", "twice")
    assert isinstance(rule, GradRule) and parameters(rule.backward) == parameters(ref.twice_grad)
    assert "d(2x)/dx = 2." in rule.backward.__doc__
    with pytest.raises(NotImplementedError, match=r"write cube_forward \(op:cube\)"):
        cube.forward(None, 1.0)


def test_classes_derive_from_the_public_base_with_a_stub_per_method(generated):
    _, registry = generated
    scale, triple = registry.get("layer", "Scale"), registry.get("layer", "Triple")
    assert scale.__bases__ == (Module,) and triple.__bases__ == (Module,)  # never the reference itself
    own = {name for name in vars(scale) if not name.startswith("__") or name == "__init__"}
    assert own == {"__init__", "forward", "factor", "unit", "describe", "kind"}  # no _helper, no extra_repr
    assert scale.kind == "scale"
    assert isinstance(vars(scale)["factor"], property)
    assert isinstance(vars(scale)["unit"], classmethod) and isinstance(vars(scale)["describe"], staticmethod)
    assert parameters(scale.__init__) == parameters(ref.Scale.__init__)
    assert parameters(scale.describe) == parameters(ref.Scale.describe)
    assert {"__init__", "forward"} <= set(vars(triple))
    assert parameters(triple.__init__) == parameters(ref.Triple.__init__)
    with pytest.raises(NotImplementedError, match=r"write Scale.__init__ \(layer:Scale\)"):
        scale()


def test_docstrings_hold_the_kind_contract_and_the_reference_doc(generated):
    _, registry = generated
    doc = " ".join(registry.get("layer", "Scale").__doc__.split())
    assert " ".join(KINDS["layer"].split()) in doc
    assert "Multiplies its input by ``scale``." in doc and "Args: scale: the factor." in doc
    assert ">>>" not in doc and "Examples" not in doc  # the examples would give the answer away
    assert registry.get("layer", "Scale").forward.__doc__ == "``scale * x``."


def test_objects_become_functions_or_classes_of_static_methods(generated):
    _, registry = generated
    entry = registry.get("dataset", "entry")
    assert inspect.isfunction(entry) and parameters(entry) == parameters(ref.Entry())
    assert "The split as a data set." in entry.__doc__
    engine = registry.get("autograd", "engine")
    assert inspect.isclass(engine) and isinstance(vars(engine)["backward"], staticmethod)
    assert parameters(engine.backward) == parameters(ref._Engine().backward)
    score = registry.get("metric", "score")
    assert parameters(score) == parameters(ref.score)


def test_the_package_files(generated):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scaffold, _ = generated
    pyproject = tomllib.loads(scaffold.files["pyproject.toml"])
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    assert pyproject["project"]["name"] == "my-shapes"
    assert pyproject["project"]["dependencies"] == ["tt-core>=0.1,<0.2"]
    assert pyproject["project"]["entry-points"]["tinytorch"] == {"my-shapes": "my_shapes._plugin"}
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/my_shapes"]
    modules = {Path(path).name for path in scaffold.files if path.startswith("src/")}
    # one module per component; ops and rules together, by the module they come from
    assert modules == {"__init__.py", "_plugin.py", "scaffold_reference.py", "scale.py", "triple.py", "entry.py",
                       "engine.py", "score.py"}


@pytest.mark.parametrize("name, expected", [
    ("Linear", "linear"), ("ReLU", "relu"), ("GELU", "gelu"), ("BCEWithLogitsLoss", "bce_with_logits_loss"),
    ("MSELoss", "mse_loss"), ("RMSprop", "rmsprop"), ("AdamW", "adamw"), ("StepLR", "step_lr"),
    ("CosineAnnealingLR", "cosine_annealing_lr"), ("Conv2d", "conv2d"), ("MaxPool2d", "max_pool2d"),
    ("BPETokenizer", "bpe_tokenizer"), ("clip_grad_norm_", "clip_grad_norm"), ("GPT", "gpt"),
])
def test_snake_case(name, expected):
    assert snake_case(name) == expected


@pytest.mark.parametrize("act", list(ACTS))
def test_every_installed_act_gives_a_package_of_stubs(act, tmp_path, load_generated):
    registry = tt_core.get_registry()
    if not registry.from_dist(ACTS[act]):
        pytest.skip(f"{ACTS[act]} is not installed")
    scaffold = plan_package(registry, act)
    write_package(scaffold, tmp_path / act)
    mine = load_generated(tmp_path / act, scaffold.import_name)
    references = {(c.kind, c.name): c.obj for c in act_components(registry, ACTS[act])}
    assert {(c.kind, c.name) for c in mine} == set(references)
    for component in mine:
        assert not is_implemented(component.obj), f"{component.kind}:{component.name}"
        reference = references[(component.kind, component.name)]
        if isinstance(reference, Op):
            assert component.obj.saves == reference.saves
            assert parameters(component.obj.forward) == parameters(reference.forward)
        elif inspect.isclass(reference):
            assert reference not in component.obj.__mro__
            assert parameters(component.obj) == parameters(reference), f"{component.kind}:{component.name}"
        elif inspect.isfunction(reference):
            assert parameters(component.obj) == parameters(reference)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_new_writes_the_package_and_says_what_next(only_core, capsys, tmp_path):
    code, out, _ = run_main(capsys, "new", str(tmp_path / "mine"), "--act", "core")
    assert code == 0
    components = len(act_components(tt_core.get_registry(), "tt-core"))
    assert out.startswith(f"wrote my-tt-core in {tmp_path / 'mine'}/: {components} components of tt-core as stubs")
    assert "tt-milestones run 01 --use my-tt-core" in out
    package = tmp_path / "mine" / "src" / "my_tt_core"
    assert {"linear.py", "ops.py", "relu.py", "_plugin.py"} <= {p.name for p in package.iterdir()}
    for path in package.glob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_new_accepts_an_empty_folder_and_refuses_anything_else(only_core, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_main(capsys, "new", str(tmp_path / "empty"), "--act", "core")[0] == 0
    code, _, err = run_main(capsys, "new", str(tmp_path / "empty"), "--act", "core", "--name", "again")
    assert code == 2 and "is not empty" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run_main(capsys, "new", str(tmp_path / "file"), "--act", "core")
    assert code == 2 and "is a file" in err and (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("name, message", [
    ("tt-learn", "'tt-learn' is a built-in TinyTorch distribution"),
    ("bad name!", "is not a distribution name"),
    ("9lives", "gives the import name '9lives', which Python cannot import"),
])
def test_new_refuses_bad_names(only_core, capsys, tmp_path, name, message):
    code, _, err = run_main(capsys, "new", str(tmp_path / "x"), "--act", "core", "--name", name)
    assert code == 2 and message in err and not (tmp_path / "x").exists()


def test_new_for_an_act_that_is_not_installed(only_core, capsys, tmp_path):
    code, _, err = run_main(capsys, "new", str(tmp_path / "x"), "--act", "learn")
    assert code == 2 and "tt-learn is not installed" in err and "pip install tt-learn" in err
    assert not (tmp_path / "x").exists()


def test_an_unknown_act_is_refused_by_the_parser(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["new", str(tmp_path / "x"), "--act", "vision"])
    assert exit_.value.code == 2 and "invalid choice: 'vision'" in capsys.readouterr().err


def test_plan_refuses_an_unknown_act():
    with pytest.raises(ScaffoldError, match="unknown Act 'vision'"):
        plan_package(reference_registry(), "vision")


@pytest.mark.slow
def test_the_package_installs_with_pip_and_milestone_01_still_runs(only_core, capsys, tmp_path, monkeypatch):
    pytest.importorskip("hatchling")
    assert run_main(capsys, "new", str(tmp_path / "pkg"), "--act", "core")[0] == 0
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(tmp_path / "pkg")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    tt_core.reset_plugins()
    try:
        assert main(["plugins", "--json"]) == 0
        plugins = {p["distribution"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
        assert plugins["my-tt-core"]["error"] is None and plugins["my-tt-core"]["version"] == "0.1.0"
        mine = tt_core.get_registry().from_dist("my-tt-core")
        assert len(mine) == len(act_components(tt_core.get_registry(), "tt-core"))
        assert not any(c.implemented for c in mine)
        code, out, _ = run_main(capsys, "run", "01", "--quick", "--use", "my-tt-core", "--out", str(tmp_path / "r"))
        assert code == 0 and "all components built-in" in out
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "my_tt_core"]:
            del sys.modules[name]


def test_reference_doc_drops_examples_and_keeps_the_sections_after_them():
    from tt_milestones.scaffold import reference_doc

    def documented():
        """Adds one.

        Examples:
            >>> documented(1)
            2

        Raises:
            ValueError: never.

        And a doctest in the text:

        >>> documented(2)
        3

        The end.
        """

    kept = "Adds one.\n\nRaises:\n    ValueError: never.\n\nAnd a doctest in the text:\n\nThe end."
    assert reference_doc(documented) == kept

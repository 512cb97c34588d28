"""The plugin machinery: registry, provider choice, broken plugins, blocking, markers."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tt_core as tt
from tt_core import Linear, TinyTorchError, plugins
from tt_core.plugins import (
    Component,
    ComponentRegistry,
    ProviderChoiceError,
    UnknownComponentError,
    parse_provider_choices,
)

MY_LINEAR = """
from tt_core import hookimpl, Linear

class MyLinear(Linear):
    pass

@hookimpl
def tt_register_components(registry):
    registry.register("layer", "Linear", MyLinear)
    registry.register("op", "relu", lambda ctx, x: x * 0 + 42)
    registry.register("op", "triple", lambda ctx, x: 3 * x)
"""


def _block(*names: str) -> str:
    """TT_DISABLE_PLUGINS that keeps the session's blocks and adds ``names``."""
    return ",".join([os.environ.get("TT_DISABLE_PLUGINS", ""), *names])


def _info(dist: str):
    return next(p for p in tt.get_plugin_system().plugins if p.dist == dist)


# -- the registry -----------------------------------------------------------------------


def test_core_registers_its_components_with_its_distribution():
    registry = tt.get_registry()
    assert {"op", "layer", "activation"} <= set(registry.kinds())
    assert registry.has("op", "matmul") and not registry.has("op", "nope")
    component = registry.chosen("op", "matmul")
    assert component == Component("op", "matmul", tt.ops.CORE_OPS["matmul"], "tt-core")
    assert component.obj.forward is tt.ops.matmul and component.version == tt.__version__
    assert registry.providers("layer", "Linear") == [Component("layer", "Linear", Linear, "tt-core")]
    assert registry.items("layer") == {"Dropout": tt.Dropout, "Linear": Linear}
    assert all(c.dist == "tt-core" for c in registry)
    info = _info("tt-core")
    assert info.error is None and info.version == tt.__version__
    assert info.components == {"op": len(tt.ops.CORE_OPS), "layer": 2, "activation": 6, "checker": 4, "example": 8}


def test_unknown_component_lists_the_known_ones():
    registry = tt.get_registry()
    with pytest.raises(UnknownComponentError) as info:
        registry.get("layer", "Conv2d")
    assert str(info.value) == "no installed plugin provides layer 'Conv2d' (known layers: Dropout, Linear)"
    assert isinstance(info.value, KeyError) and isinstance(info.value, TinyTorchError)
    with pytest.raises(UnknownComponentError, match=r"known optimizers: none"):
        registry.get("optimizer", "SGD")


def test_plugin_system_is_cached_until_reset(fresh_plugins):
    first = tt.get_plugin_system()
    assert tt.get_plugin_system() is first and tt.get_registry() is first.registry
    tt.reset_plugins()
    assert tt.get_plugin_system() is not first


def test_markers_and_hookspecs():
    assert tt.hookimpl.project_name == tt.hookspec.project_name == "tinytorch"
    manager = tt.get_plugin_system().manager
    assert manager.project_name == "tinytorch"
    assert {"tt_register_components", "tt_register_milestones"} <= set(vars(manager.hook))


# -- TT_PROVIDERS -----------------------------------------------------------------------


def test_parse_provider_choices():
    assert parse_provider_choices("") == ({}, ())
    assert parse_provider_choices(" layer:Linear=my-linear , op:conv2d = Fast_Conv ,") == ({
        ("layer", "Linear"): "my-linear",
        ("op", "conv2d"): "fast-conv",  # distribution names are normalised
    }, ())
    assert parse_provider_choices("My_TinyTorch, op:relu=x, my-tinytorch") == ({("op", "relu"): "x"}, ("my-tinytorch",))


@pytest.mark.parametrize(
    "text", ["layer:Linear", "Linear=x", "layer:=x", ":Linear=x", "layer:Linear=", "layer: =x", "a=b:c"]
)
def test_bad_provider_choices_say_the_expected_form(text):
    with pytest.raises(TinyTorchError, match="'kind:name=distribution'") as info:
        parse_provider_choices(text)
    assert repr(text.strip()) in str(info.value) or text.strip() in str(info.value)


def test_bad_tt_providers_fails_loudly(fresh_plugins, monkeypatch):
    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear")
    with pytest.raises(TinyTorchError, match="TT_PROVIDERS entry 'layer:Linear'"):
        tt.get_registry()
    monkeypatch.setenv("TT_PROVIDERS", "tt-cor")  # a bare distribution nobody installed
    with pytest.raises(ProviderChoiceError, match=r"tt-cor: no installed distribution.*did you mean tt-core\?"):
        tt.get_registry()


def test_a_misspelt_component_choice_is_an_error_with_close_names(fake_dist, monkeypatch):
    fake_dist("my-linear", MY_LINEAR)
    monkeypatch.setenv("TT_PROVIDERS", "layer:Linaer=my-linear")
    with pytest.raises(ProviderChoiceError) as info:
        tt.get_registry()
    assert "no installed plugin provides layer:Linaer (did you mean layer:Linear?)" in str(info.value)


def test_choice_between_providers():
    registry = ComponentRegistry()
    for dist in ("someone", "tt-learn", "other"):
        registry.add(Component("optimizer", "SGD", dist.upper(), dist))
    registry.add(Component("optimizer", "Lion", "LION", "someone"))
    assert registry.get("optimizer", "SGD") == "TT-LEARN"  # the built-in one
    assert registry.get("optimizer", "Lion") == "LION"  # the only one
    assert registry.overridden() == [("optimizer", "SGD", ["someone", "tt-learn", "other"], "tt-learn")]
    registry.choices[("optimizer", "SGD")] = "other"
    assert registry.get("optimizer", "SGD") == "OTHER"
    registry.choices[("optimizer", "SGD")] = "missing"
    with pytest.raises(UnknownComponentError, match="picks 'missing' for optimizer:SGD.*someone, tt-learn, other"):
        registry.get("optimizer", "SGD")


def test_only_tinytorchs_own_packages_count_as_built_in():
    registry = ComponentRegistry()
    registry.add(Component("layer", "Linear", "MINE", "tt-learn-mine"))
    registry.add(Component("layer", "Linear", "CORE", "tt-core"))
    assert registry.get("layer", "Linear") == "CORE"


# -- third-party plugins (fake distributions) ----------------------------------------------


def test_a_third_party_provider_of_an_existing_component(fake_dist, monkeypatch):
    module = fake_dist("my-linear", MY_LINEAR)
    registry = tt.get_registry()
    assert [c.dist for c in registry.providers("layer", "Linear")] == ["tt-core", "my-linear"]
    assert registry.get("layer", "Linear") is Linear  # the built-in one, unless chosen
    np.testing.assert_array_equal(tt.ones(2).relu().data, [1, 1])
    np.testing.assert_array_equal(tt.apply("triple", tt.ones(2)).data, [3, 3])  # a new op
    assert ("layer", "Linear", ["tt-core", "my-linear"], "tt-core") in registry.overridden()
    assert _info("my-linear").components == {"layer": 1, "op": 2} and _info("my-linear").version == "0.1"

    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear=my-linear,op:relu=My_Linear")
    tt.reset_plugins()
    chosen = tt.get_registry().get("layer", "Linear")
    assert chosen.__name__ == "MyLinear" and chosen.__module__ == module
    np.testing.assert_array_equal(tt.ones(2).relu().data, [42, 42])  # the op table honours the choice


def test_choosing_a_provider_that_does_not_exist(fake_dist, monkeypatch):
    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear=not-installed")
    with pytest.raises(ProviderChoiceError, match="not-installed does not provide it.*providers: tt-core"):
        tt.get_registry()


def test_a_plugin_that_fails_to_import_is_recorded(fake_dist):
    fake_dist("broken-import", "import a_module_that_does_not_exist\n")
    info = _info("broken-import")
    assert "ModuleNotFoundError" in info.error and "a_module_that_does_not_exist" in info.error
    assert info.module is None and info.components == {}
    assert _info("tt-core").error is None
    np.testing.assert_array_equal((tt.ones(2) + 1).data, [2, 2])  # tt-core still works


def test_a_plugin_whose_hook_raises_contributes_nothing(fake_dist):
    fake_dist(
        "half-done",
        """
        from tt_core import hookimpl

        @hookimpl
        def tt_register_components(registry):
            registry.register("layer", "Half", object)
            registry.register("op", "half_op", lambda ctx, x: x)
            raise RuntimeError("oops in the middle")
        """,
    )
    fake_dist("fine", MY_LINEAR)
    registry = tt.get_registry()
    info = _info("half-done")
    assert "RuntimeError: oops in the middle" in info.error
    assert info.components == {}
    assert not registry.has("layer", "Half") and not registry.has("op", "half_op")
    assert all(c.dist != "half-done" for c in registry)
    assert _info("fine").error is None and registry.has("op", "triple")
    assert registry.get("layer", "Linear") is Linear


@pytest.mark.parametrize(
    "body, message",
    [
        ('registry.register("layer", "", object)', "two non-empty strings"),
        ('registry.register("layer", "X", 1); registry.register("layer", "X", 2)', "registers layer:X twice"),
        ("import tt_core; tt_core.ones(2) + 1", "plugins are still loading"),
    ],
)
def test_plugin_mistakes_are_recorded_with_a_clear_error(fake_dist, body, message):
    fake_dist(
        "clumsy",
        f"""
        from tt_core import hookimpl

        @hookimpl
        def tt_register_components(registry):
            {body}
        """,
    )
    assert message in _info("clumsy").error
    assert not tt.get_registry().has("layer", "X")
    np.testing.assert_array_equal((tt.ones(2) * 2).data, [2, 2])


def test_a_plugin_running_ops_at_import_is_recorded(fake_dist):
    fake_dist("eager", "import tt_core\nTABLE = tt_core.ones(3).exp()\n")
    assert "plugins are still loading" in _info("eager").error
    assert tt.ones(1).exp().item() == pytest.approx(np.e)


def test_tt_disable_plugins_blocks_a_plugin_but_never_tt_core(fake_dist, monkeypatch):
    fake_dist("my-linear", MY_LINEAR)
    fake_dist("Other_Plugin", MY_LINEAR.replace("triple", "quadruple"), entry_point="other")
    session_blocks = os.environ["TT_DISABLE_PLUGINS"]
    monkeypatch.setenv("TT_DISABLE_PLUGINS", _block("my-linear", "other-plugin", "tt-core"))
    registry = tt.get_registry()
    dists = [p.dist for p in tt.get_plugin_system().plugins]
    assert "my-linear" not in dists and "other-plugin" not in dists and "tt-core" in dists
    assert [c.dist for c in registry.providers("layer", "Linear")] == ["tt-core"]
    assert registry.has("op", "matmul")

    monkeypatch.setenv("TT_DISABLE_PLUGINS", session_blocks + ",other")  # by entry-point name
    tt.reset_plugins()
    dists = [p.dist for p in tt.get_plugin_system().plugins]
    assert "my-linear" in dists and "other-plugin" not in dists


def test_a_second_entry_point_of_one_distribution_is_reported(fake_dist, tmp_path):
    fake_dist("double", MY_LINEAR)
    entry_points = tmp_path / "double-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text(entry_points.read_text() + "zzz = somewhere_else\n")
    info = _info("double")
    assert "second tinytorch entry point 'zzz'" in info.error
    assert info.components == {"layer": 1, "op": 2}


def test_plugin_module_without_hooks_is_harmless(fake_dist):
    fake_dist("empty", "VALUE = 1\n")
    info = _info("empty")
    assert info.error is None and info.components == {} and info.module.VALUE == 1


def test_get_registry_is_not_called_per_op(fresh_plugins, monkeypatch):
    (tt.ones(2, 2) @ tt.ones(2, 2)).softmax()  # the first call of each op looks it up
    calls = []
    monkeypatch.setattr(plugins, "get_plugin_system", lambda: calls.append(1))
    for _ in range(20):
        (tt.ones(2, 2) @ tt.ones(2, 2)).softmax()
    assert calls == []

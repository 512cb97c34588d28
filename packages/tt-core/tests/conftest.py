"""Shared fixtures of tt-core's tests.

tt-core must pass its tests with only tt-core installed, but in a development checkout the
later Acts are usually installed too. So the whole session runs with every other TinyTorch
plugin blocked (``TT_DISABLE_PLUGINS``): the tests see what a tt-core-only install sees.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import tt_core
from tt_core.plugins import CORE_DISTRIBUTION, ENTRY_POINT_GROUP


def _other_plugin_names() -> list[str]:
    """Every installed entry point of the ``tinytorch`` group that is not tt-core's."""
    names = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.name
        if dist != CORE_DISTRIBUTION:
            names.update({ep.name, dist})
    return sorted(names)


OTHER_PLUGINS = ",".join(_other_plugin_names())


@pytest.fixture(autouse=True, scope="session")
def core_plugins_only():
    """Block every plugin but tt-core's for the whole session."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TT_DISABLE_PLUGINS", OTHER_PLUGINS)
    patch.delenv("TT_PROVIDERS", raising=False)
    tt_core.reset_plugins()
    yield
    patch.undo()
    tt_core.reset_plugins()


@pytest.fixture
def fresh_plugins():
    """Forget the loaded plugins before and after the test (which may change the environment)."""
    tt_core.reset_plugins()
    yield
    tt_core.reset_plugins()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded NumPy generator for test inputs (independent of tt_core's global one)."""
    return np.random.default_rng(0)


_module_ids = itertools.count()


@pytest.fixture
def fake_dist(tmp_path, monkeypatch, fresh_plugins):
    """Make fake installed distributions with a ``tinytorch`` entry point.

    ``fake_dist("my-linear", source)`` writes ``my_linear-0.1.dist-info/`` (METADATA and
    entry_points.txt) and a module holding ``source`` into ``tmp_path``, puts ``tmp_path``
    on ``sys.path``, and returns the module's name. Plugins are reset before and after.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(dist: str, source: str, entry_point: str | None = None) -> str:
        module = f"tt_fake_plugin_{next(_module_ids)}"
        info = Path(tmp_path, f"{dist.replace('-', '_')}-0.1.dist-info")
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_point or dist} = {module}\n")
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        created.append(module)
        return module

    yield make
    for module in created:
        sys.modules.pop(module, None)

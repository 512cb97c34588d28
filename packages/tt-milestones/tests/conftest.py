"""Shared fixtures of tt-milestones' tests.

tt-milestones must pass its tests with only tt-core installed, but in a development checkout
the later Acts (and the example plugin) are usually installed too. Tests that depend on what
is installed use ``only_core``: every plugin except tt-core and tt-milestones is blocked, so
they see what a tt-core + tt-milestones install sees.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
import tt_core
from tt_core.plugins import ENTRY_POINT_GROUP

KEEP = {"tt-core", "tt-milestones"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds or installs a package (deselect with -m 'not slow')")


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Every test starts and ends with freshly loaded plugins."""
    tt_core.reset_plugins()
    yield
    tt_core.reset_plugins()


@pytest.fixture
def only_core(monkeypatch):
    """Block every installed TinyTorch plugin except tt-core and tt-milestones."""
    others = {
        name
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if (ep.dist.name if ep.dist is not None else ep.name) not in KEEP
        for name in (ep.name, ep.dist.name if ep.dist is not None else ep.name)
    }
    monkeypatch.setenv("TT_DISABLE_PLUGINS", ",".join(sorted(others)))
    tt_core.reset_plugins()


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch):
    """Install a plugin distribution for the test only: ``fake_plugin(dist, module, source)``.

    Writes ``<module>.py`` and a ``<dist>-0.1.dist-info`` with the ``tinytorch`` entry point into
    a folder put first on ``sys.path`` (and on ``PYTHONPATH``, for CLI subprocesses), where
    ``importlib.metadata`` finds it like any installed distribution.
    """
    added: list[str] = []

    def install(dist: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{dist} = {module}\n")
        added.append(module)
        importlib.invalidate_caches()
        tt_core.reset_plugins()

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    yield install
    for module in added:
        sys.modules.pop(module, None)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m tt_milestones ARGS`` in a fresh process (so nothing is imported yet)."""
    return subprocess.run([sys.executable, "-m", "tt_milestones", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def cli_json():
    def run_json(*args: str):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return run_json

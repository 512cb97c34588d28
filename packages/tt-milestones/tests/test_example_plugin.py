"""The example third-party plugin (examples/tt-plugin-example), when it is installed.

The tox environment ``example`` installs it next to tt-core and tt-milestones; elsewhere these
tests skip. They call the CLI as a user would, in a fresh process.
"""

from __future__ import annotations

import json
from importlib import metadata

import pytest

try:
    metadata.distribution("tt-plugin-example")
except metadata.PackageNotFoundError:
    pytest.skip("tt-plugin-example is not installed (tox -e example installs it)", allow_module_level=True)


def test_plugins_shows_the_example_with_its_layer_and_milestone(cli_json):
    plugins = {p["distribution"]: p for p in cli_json("plugins", "--json")["plugins"]}
    example = plugins["tt-plugin-example"]
    assert example["version"] == metadata.version("tt-plugin-example")
    assert example["components"] == {"layer": 1} and example["milestones"] == ["x1"]
    assert example["error"] is None


def test_list_shows_the_example_milestone_runnable(cli_json):
    rows = {row["id"]: row for row in cli_json("list", "--json")}
    assert rows["x1"]["status"] == "runnable" and rows["x1"]["slug"] == "swish"
    assert rows["x1"]["provider"] == "tt-plugin-example"
    assert rows["01"]["status"] == "runnable"  # the built-in milestones are still there


def test_example_milestone_runs_and_reaches_its_target(cli, tmp_path):
    result = cli("run", "x1", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["reached"] and report["versions"]["tt-plugin-example"]
    assert (tmp_path / "swish.png").exists()

"""The repository README: its Python examples run, and its milestone table matches the specs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tt_milestones.specs import MILESTONES

README = Path(__file__).resolve().parents[3] / "README.md"
if not README.exists():
    pytest.skip("not running from a checkout of the repository", allow_module_level=True)

TEXT = README.read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", TEXT, flags=re.DOTALL | re.MULTILINE)


def test_python_examples_run(only_core, tmp_path, monkeypatch):
    """Every ```python block, in order, in one namespace (later blocks use earlier ones)."""
    blocks = code_blocks("python")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md python block {number}", "exec"), namespace)


def test_milestone_table_matches_the_specs():
    rows = re.findall(r"^\| (\d\d) \| (\w+) \| (\d{4}) \| ([^|]+) \| (tt-[\w-]+) \|", TEXT, flags=re.MULTILINE)
    assert [(i, slug, int(year), title.strip()) for i, slug, year, title, _ in rows] == [
        (s.id, s.slug, s.year, s.title) for s in MILESTONES
    ]
    for (_, _, _, _, package), spec in zip(rows, MILESTONES):
        assert package in {r.package for r in spec.requires}


def test_the_two_commands_are_there():
    commands = code_blocks("bash")
    assert any("pip install ./packages/tt-core" in c and "tt-milestones run 01" in c for c in commands)
    assert any("python3 -m tox -p 2" in c for c in commands)


def test_ci_runs_the_readme_test_command():
    ci = README.parent / ".ci" / "run"
    assert "python3 -m pip install tox && python3 -m tox -p 2" in ci.read_text()


def test_the_exit_codes_are_documented():
    from tt_milestones.cli import EXIT_CODES

    section = TEXT[TEXT.index("## The milestones"):TEXT.index("## Write a plugin")]
    paragraph = " ".join(section[section.index("Exit codes:"):].split())
    for code, words in zip(sorted(EXIT_CODES), ("the target was reached", "it ran but missed", "a usage error",
                                                 "an unexpected internal error", "interrupted")):
        assert f"{code} {words}" in paragraph

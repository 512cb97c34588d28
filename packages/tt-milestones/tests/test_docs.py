"""The pages under docs/: every ```python block runs.

Each block runs on its own, as a script written to an empty working directory, with freshly
loaded plugins, so a reader can copy any one of them (and ``inspect.getsource`` sees its
functions, as it does a learner's). A block whose first line is
``# needs: tt-learn, tt-data`` (distributions or modules) is skipped when one of them is not
installed, as in the tox environment of tt-milestones, which has tt-core only. Shell blocks
are not run.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import tt_core

DOCS = Path(__file__).resolve().parents[3] / "docs"
if not DOCS.is_dir():
    pytest.skip("not running from a checkout of the repository", allow_module_level=True)

BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)
NEEDS = re.compile(r"\A# needs: (.+)\n")


def python_blocks() -> list[tuple[str, int, str]]:
    """``(page, number, code)`` for every python block of every page, numbered from 1."""
    return [
        (page.name, number, code)
        for page in sorted(DOCS.glob("*.md"))
        for number, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")), 1)
    ]


def missing(code: str) -> list[str]:
    """What the block's ``# needs:`` line names that cannot be imported."""
    match = NEEDS.match(code)
    if match is None:
        return []
    wanted = [name.strip() for name in match.group(1).split(",") if name.strip()]
    return [name for name in wanted if not _importable(name.replace("-", "_"))]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


BLOCKS = python_blocks()


def test_the_pages_have_python_blocks():
    pages = {page for page, _, _ in BLOCKS}
    assert {"how-it-works.md", "learners-guide.md", "components.md"} <= pages


@pytest.mark.parametrize("page, number, code", BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_python_block_runs(page, number, code, tmp_path, monkeypatch):
    absent = missing(code)
    if absent:
        pytest.skip(f"needs {', '.join(absent)}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TT_PROVIDERS", raising=False)
    tt_core.reset_plugins()
    tt_core.manual_seed(0)
    script = tmp_path / f"{page.removesuffix('.md').replace('-', '_')}_block_{number}.py"
    script.write_text(code, encoding="utf-8")
    namespace: dict = {"__name__": script.stem, "__file__": str(script)}
    exec(compile(code, str(script), "exec"), namespace)  # noqa: S102 - our own docs


def test_needs_lines_name_what_the_test_can_check():
    assert missing("# needs: tt-core, tt_core.dispatch\nx = 1\n") == []
    assert missing("# needs: surely-not-installed\n") == ["surely-not-installed"]
    assert missing("# needs: tt_core.surely_not_a_module\n") == ["tt_core.surely_not_a_module"]

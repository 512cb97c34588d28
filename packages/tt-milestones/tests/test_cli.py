"""The tt-milestones command, called in-process (``main([...])``) and as a fresh process."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from tt_milestones.cli import main
from tt_milestones.specs import MILESTONES


def unlock(package: str) -> str:
    """What unlocks a package under ``only_core``: installing it, or, when it is installed (and
    so blocked by ``only_core``'s TT_DISABLE_PLUGINS), unblocking it."""
    try:
        metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return f"install {package}"
    return f"{package} is installed but blocked by TT_DISABLE_PLUGINS"


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_with_only_tt_core(only_core, capsys):
    code, out, _ = run_main(capsys, "list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert code == 0
    assert list(rows) == [s.id for s in MILESTONES]
    assert rows["01"]["status"] == "runnable" and rows["01"]["missing"] == [] and rows["01"]["install"] == []
    for key in ("02", "03", "04", "05", "06"):
        assert rows[key]["status"] == "locked" and rows[key]["missing"]
    assert rows["02"]["install"] == ["tt-learn"]
    assert rows["03"]["install"] == ["tt-data", "tt-learn"]
    assert rows["06"]["install"] == ["tt-data", "tt-language", "tt-learn", "tt-perf"]
    assert {"id", "slug", "year", "title", "status", "missing", "install"} <= set(rows["01"])


def test_list_text_names_the_package_to_install(only_core, capsys):
    code, out, _ = run_main(capsys, "list")
    lines = {line[:2]: line for line in out.splitlines()}
    assert code == 0
    assert "runnable" in lines["01"] and "Perceptron" in lines["01"]
    assert f"locked - {unlock('tt-learn')} (missing autograd:engine" in lines["02"]


def test_info_tells_history_requirements_and_how_to_run(only_core, capsys):
    code, out, _ = run_main(capsys, "info", "perceptron")
    assert code == 0
    assert "Rosenblatt" in out and "op:matmul" in out and "tt-milestones run 01" in out
    code, out, _ = run_main(capsys, "info", "xor")
    line = next(line for line in out.splitlines() if "[missing] autograd:engine" in line)
    assert line.endswith(f"  {unlock('tt-learn')}")
    assert f"status: locked - {unlock('tt-learn')}" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "alexnet"), "unknown milestone 'alexnet'; valid ids: 01 (perceptron), 02 (xor)"),
        (("info", "99"), "unknown milestone '99'"),
        (("run", "02"), "milestone 02 (xor) is locked: it needs"),
        (("run", "01", "--chat"), "milestone 01 (perceptron) has no option --chat"),
    ],
)
def test_user_mistakes_exit_2_with_the_reason(only_core, capsys, args, message):
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err + out


def test_locked_run_names_the_package(only_core, capsys):
    _, _, err = run_main(capsys, "run", "xor")
    assert err.rstrip().endswith(f"optimizer:SGD - {unlock('tt-learn')}")


@pytest.mark.parametrize("seed", ["-3", "abc", "1.5"])
def test_bad_seed_is_a_usage_error(capsys, seed):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "01", "--seed", seed])
    assert exit_.value.code == 2
    assert f"must be a non-negative integer, got {seed!r}" in capsys.readouterr().err


def test_bad_provider_choice_is_reported_without_traceback(monkeypatch, capsys):
    monkeypatch.setenv("TT_PROVIDERS", "layer:Linear")
    code, _, err = run_main(capsys, "list")
    assert code == 2 and "kind:name=distribution" in err
    monkeypatch.setenv("TT_PROVIDERS", "layer:Linaer=tt-core")
    code, _, err = run_main(capsys, "list")
    assert code == 2 and "no installed plugin provides layer:Linaer (did you mean layer:Linear" in err
    assert "Traceback" not in err


def test_plugins_json_lists_components_and_milestones(only_core, capsys):
    code, out, _ = run_main(capsys, "plugins", "--json")
    report = json.loads(out)
    plugins = {p["distribution"]: p for p in report["plugins"]}
    assert code == 0
    assert set(plugins) == {"tt-core", "tt-milestones"}
    assert plugins["tt-core"]["components"]["op"] >= 20 and plugins["tt-core"]["components"]["layer"] >= 2
    assert plugins["tt-milestones"]["milestones"] == [s.id for s in MILESTONES]
    assert all(p["error"] is None and p["version"] for p in plugins.values())
    assert report["choices"] == []


def test_plugins_text(only_core, capsys):
    code, out, _ = run_main(capsys, "plugins")
    assert code == 0
    assert out.splitlines()[0].startswith("tt-core ")  # Acts first, in order
    assert "milestones: 01, 02, 03, 04, 05, 06" in out


def test_list_imports_nothing_heavy(cli):
    """``list`` must answer at once: no matplotlib, no rich, no milestone code."""
    probe = (
        "import sys; from tt_milestones.cli import main; main(['list']); main(['info', '01']); main(['plugins']); "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'rich', 'PIL')"
        " or m.startswith('tt_milestones.history')]; print('HEAVY', heavy)"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_console_script_is_declared():
    from importlib import metadata

    scripts = metadata.distribution("tt-milestones").entry_points.select(group="console_scripts")
    assert {ep.name: ep.value for ep in scripts} == {"tt-milestones": "tt_milestones.__main__:entry"}


def test_version_and_missing_command(cli):
    assert cli("--version").stdout.startswith("tt-milestones ")
    result = cli()
    assert result.returncode == 2 and "COMMAND" in result.stderr

"""A run never loses finished work: ``--out`` is checked and locked before anything trains,
``report.json`` is rewritten as each phase completes and says how the run ended, and every
ending has its exit code (0 reached, 1 missed, 2 usage, 3 internal, 130 interrupted)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tt_core.errors import TinyTorchError
from tt_core.plugins import get_plugin_system
from tt_milestones import cli
from tt_milestones.api import MilestoneSpec
from tt_milestones.files import ERROR_LOG, LOCK_NAME, RunLock
from tt_milestones.registry import collect_milestones

SPEC = MilestoneSpec("t1", "fake", 2024, "Fake", "One. Two.", (), "all is well", f"{__name__}:fake_run")


def fake_run(ctx):  # replaced by each test (``milestone`` fixture)
    raise AssertionError("the test did not set the run function")


@pytest.fixture
def milestone(monkeypatch):
    """``milestone(run)``: the fake milestone ``t1`` runs ``run(ctx)``; returns the list of the
    contexts it ran in (empty when it never ran)."""
    calls = []

    def install(run):
        def recorded(ctx):
            calls.append(ctx)
            run(ctx)

        catalogue = collect_milestones(get_plugin_system())
        catalogue.add("fake-tests", [SPEC])
        monkeypatch.setattr(cli, "get_catalogue", lambda: catalogue)
        monkeypatch.setattr(sys.modules[__name__], "fake_run", recorded)
        return calls

    return install


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def two_phases(second):
    """A run whose first phase reaches its check and whose second runs ``second(ctx)``."""
    def run(ctx):
        with ctx.phase("first"):
            ctx.check("first_accuracy", 0.9, ">=", 0.5)
        with ctx.phase("second"):
            second(ctx)
            ctx.check("second_accuracy", 0.8, ">=", 0.5)

    return run


def fine(ctx):
    ctx.check("accuracy", 1.0, ">=", 1.0)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- --out is checked before anything runs ----------------------------------------------


def test_out_that_is_a_file_is_refused_before_the_run(milestone, capsys, tmp_path):
    calls = milestone(fine)
    target = tmp_path / "results"
    target.write_text("my notes")
    code, _, err = run_main(capsys, "run", "t1", "--out", str(target))
    assert code == 2 and calls == []
    assert f"--out {target} is a file, not a folder" in one_error_line(err)
    assert target.read_text() == "my notes"


def test_out_under_a_file_cannot_be_created(milestone, capsys, tmp_path):
    calls = milestone(fine)
    (tmp_path / "notes").write_text("x")
    code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path / "notes" / "run"))
    assert code == 2 and calls == []
    assert f"cannot be created: {tmp_path / 'notes'} is a file, not a folder" in one_error_line(err)


@pytest.mark.parametrize("text", ["", "  "])
def test_empty_out_is_an_error_not_the_default_folder(milestone, capsys, tmp_path, monkeypatch, text):
    calls = milestone(fine)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "run", "t1", "--out", text)
    assert code == 2 and calls == []
    assert "--out is empty: name a folder, or drop --out to write into runs/t1-fake/" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def read_only(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anyway: chmod proves nothing
        folder.chmod(0o700)
        pytest.skip("this user can write into read-only folders (root)")
    return folder


def test_read_only_out_is_refused_before_the_run(milestone, capsys, tmp_path):
    calls = milestone(fine)
    folder = read_only(tmp_path / "locked")
    try:
        code, _, err = run_main(capsys, "run", "t1", "--out", str(folder))
        new_code, _, new_err = run_main(capsys, "run", "t1", "--out", str(folder / "new"))
    finally:
        folder.chmod(0o700)
    assert code == 2 and calls == []
    assert f"--out {folder} cannot be written (Permission denied" in one_error_line(err)
    assert new_code == 2 and f"--out {folder / 'new'} cannot be created (Permission denied" in one_error_line(new_err)


def test_a_new_out_folder_is_created_with_its_parents(milestone, capsys, tmp_path):
    milestone(fine)
    out = tmp_path / "a" / "b" / "c"
    code, _, _ = run_main(capsys, "run", "t1", "--out", str(out))
    assert code == 0 and report_of(out)["status"] == "completed"
    assert not (out / LOCK_NAME).exists()  # released at the end


# -- report.json as each phase completes -------------------------------------------------


def test_report_is_rewritten_as_each_phase_completes(milestone, capsys, tmp_path):
    seen = []
    milestone(two_phases(lambda ctx: seen.append(report_of(ctx.out))))
    code, _, _ = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    during = seen[0]
    assert during["status"] == "running" and during["finished"] is None and during["reached"] is False
    assert [(p["name"], p["status"]) for p in during["phases"]] == [("first", "completed")]
    assert [c["name"] for c in during["checks"]] == ["first_accuracy"]
    final = report_of(tmp_path)
    assert code == 0 and final["status"] == "completed" and final["error"] is None and final["reached"] is True
    assert [(p["name"], p["status"]) for p in final["phases"]] == [("first", "completed"), ("second", "completed")]
    assert all(p["seconds"] >= 0 for p in final["phases"]) and final["finished"]
    assert not list(tmp_path.glob(".report.json.*"))  # no temporary files left


def crash(ctx):
    raise ZeroDivisionError("a bug in the milestone")


def test_a_crash_exits_3_with_one_line_a_log_and_the_report_so_far(milestone, capsys, tmp_path):
    milestone(two_phases(crash))
    code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    line = one_error_line(err)
    assert code == 3
    assert line.startswith("tt-milestones: internal error: ZeroDivisionError: a bug in the milestone")
    assert f"the traceback is in {tmp_path / ERROR_LOG}" in line and str(tmp_path / "report.json") in line
    log = (tmp_path / ERROR_LOG).read_text()
    assert "Traceback (most recent call last)" in log and "in crash" in log
    report = report_of(tmp_path)
    assert report["status"] == "failed" and report["error"] == "ZeroDivisionError: a bug in the milestone"
    assert report["reached"] is False and [c["name"] for c in report["checks"]] == ["first_accuracy"]
    assert [(p["name"], p["status"]) for p in report["phases"]] == [("first", "completed"), ("second", "failed")]
    assert report["phases"][1]["error"] == "ZeroDivisionError: a bug in the milestone"
    assert not (tmp_path / LOCK_NAME).exists()


def interrupt(ctx):
    raise KeyboardInterrupt


def test_ctrl_c_exits_130_and_marks_the_report_interrupted(milestone, capsys, tmp_path):
    milestone(two_phases(interrupt))
    code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    assert code == 130
    assert one_error_line(err) == (
        f"tt-milestones: interrupted; the report of what was measured so far: {tmp_path / 'report.json'}"
    )
    report = report_of(tmp_path)
    assert report["status"] == "interrupted" and report["error"] == "interrupted (Ctrl-C)"
    assert [(p["name"], p["status"]) for p in report["phases"]] == [("first", "completed"), ("second", "interrupted")]
    assert report["metrics"]["first_accuracy"] == 0.9


def missing_data(ctx):
    raise TinyTorchError("mnist: train-images-idx3-ubyte.gz is missing; put it in TT_DATA_DIR")


def test_missing_data_exits_2_and_keeps_the_report(milestone, capsys, tmp_path):
    milestone(two_phases(missing_data))
    code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    assert code == 2
    assert one_error_line(err) == (
        "tt-milestones: error: mnist: train-images-idx3-ubyte.gz is missing; put it in TT_DATA_DIR; "
        f"the report of what was measured so far: {tmp_path / 'report.json'}"
    )
    assert report_of(tmp_path)["status"] == "failed" and not (tmp_path / ERROR_LOG).exists()


def unreadable_file(ctx):
    (ctx.out / "nowhere" / "weights.npz").read_bytes()


def test_a_file_that_cannot_be_read_exits_2_naming_it(milestone, capsys, tmp_path):
    milestone(two_phases(unreadable_file))
    code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    assert code == 2
    assert one_error_line(err).startswith(f"tt-milestones: error: No such file or directory: {tmp_path / 'nowhere'}")


def two_plots(ctx):
    for name in ("broken.png", "fine.png"):
        fig, ax = ctx.figure()
        ax.plot([0, 1], [1, 0])
        ctx.save_figure(fig, name)
    ctx.check("accuracy", 1.0, ">=", 1.0)


def test_a_plot_that_cannot_be_saved_is_reported_not_fatal(milestone, capsys, tmp_path):
    milestone(two_plots)
    (tmp_path / "broken.png").mkdir()  # nothing can be written there
    code, out, _ = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    report = report_of(tmp_path)
    assert code == 0 and report["status"] == "completed" and report["reached"] is True
    assert report["plots"] == ["fine.png"] and (tmp_path / "fine.png").stat().st_size > 0
    [problem] = report["plot_errors"]
    assert problem["plot"] == "broken.png" and problem["error"].startswith("IsADirectoryError")
    assert "could not save broken.png" in out and "1 plot(s) could not be saved" in out


def test_a_full_disk_mid_run_keeps_the_last_report_and_exits_2(milestone, capsys, tmp_path, monkeypatch):
    from tt_milestones import runner

    writes = []
    real_write = runner.write_atomic

    def disk_fills_up(path, text):
        writes.append(json.loads(text)["status"])
        if len(writes) > 2:  # the start and the first phase are written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, text)

    monkeypatch.setattr(runner, "write_atomic", disk_fills_up)
    milestone(two_phases(lambda ctx: None))
    code, out, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    assert code == 2 and writes == ["running", "running", "running", "completed"]
    assert f"could not update the report (No space left on device: {tmp_path / 'report.json'}); the run goes on" in out
    assert "the run finished, but" in one_error_line(err) and "No space left on device" in err
    kept = report_of(tmp_path)
    assert kept["status"] == "running" and [p["name"] for p in kept["phases"]] == ["first"]


# -- one run per folder ------------------------------------------------------------------


def test_a_second_run_into_a_locked_out_is_refused(milestone, capsys, tmp_path):
    calls = milestone(fine)
    with RunLock(tmp_path):  # another run is writing there
        code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert code == 2 and calls == []
    assert one_error_line(err) == (
        f"tt-milestones: error: another tt-milestones run (process {os.getpid()}) is writing into {tmp_path}: "
        "wait for it to finish, or choose another --out"
    )
    assert not (tmp_path / "report.json").exists()


HOLDER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from tt_milestones.files import RunLock
    RunLock(Path(sys.argv[1])).acquire()
    print("locked", flush=True)
    sys.stdin.read()
    os._exit(0)  # dies holding the lock: the lock file stays behind
""")


def test_a_lock_held_by_another_process_then_left_by_it_dead(milestone, capsys, tmp_path):
    calls = milestone(fine)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run_main(capsys, "run", "t1", "--out", str(tmp_path))
        assert code == 2 and f"another tt-milestones run (process {holder.pid})" in err and calls == []
    finally:
        holder.communicate("", timeout=60)
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)  # stale: its process is gone
    code, _, _ = run_main(capsys, "run", "t1", "--out", str(tmp_path))
    assert code == 0 and len(calls) == 1 and not (tmp_path / LOCK_NAME).exists()


# -- exit codes ---------------------------------------------------------------------------


def test_reached_0_and_missed_1(milestone, capsys, tmp_path):
    milestone(fine)
    assert run_main(capsys, "run", "t1", "--out", str(tmp_path / "a"))[0] == 0
    milestone(lambda ctx: ctx.check("accuracy", 0.1, ">=", 1.0))
    assert run_main(capsys, "run", "t1", "--out", str(tmp_path / "b"))[0] == 1
    assert report_of(tmp_path / "b")["status"] == "completed" and report_of(tmp_path / "b")["reached"] is False


def test_an_internal_error_outside_a_run_logs_to_the_cache_dir(capsys, tmp_path, monkeypatch):
    def broken(args, catalogue):
        raise RuntimeError("something unexpected\nwith a second line")

    monkeypatch.setattr(cli, "cmd_list", broken)
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_main(capsys, "list")
    log = tmp_path / "cache" / ERROR_LOG
    assert code == 3 and one_error_line(err) == (
        f"tt-milestones: internal error: RuntimeError: something unexpected (the traceback is in {log})"
    )
    assert "RuntimeError: something unexpected\nwith a second line" in log.read_text()


def test_an_internal_error_with_nowhere_to_log_prints_the_traceback(capsys, tmp_path, monkeypatch):
    def broken(args, catalogue):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(cli, "cmd_list", broken)
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "file"))  # a file: no log can go there
    code, _, err = run_main(capsys, "list")
    assert code == 3 and "Traceback" in err and err.strip().splitlines()[-1] == (
        "tt-milestones: internal error: RuntimeError: unexpected (the traceback is above)"
    )


def test_help_lists_the_exit_codes(capsys):
    for args in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(args)
        text = capsys.readouterr().out
        assert exit_.value.code == 0 and "exit codes:" in text
        for code in ("0", "1", "2", "3", "130"):
            assert f"\n  {code:<4} " in text


def test_ctrl_c_while_importing_prints_no_traceback(capsys, monkeypatch):
    from tt_milestones.__main__ import entry

    class Interrupting:
        def find_spec(self, name, path=None, target=None):
            if name == "tt_milestones.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "tt_milestones.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert entry(["list"]) == 130
    assert capsys.readouterr().err == "tt-milestones: interrupted\n"


def test_the_package_imports_nothing_until_asked():
    probe = ("import sys, tt_milestones; print(sorted(m for m in sys.modules if m.split('.')[0] == 'tt_core'));"
             "print(tt_milestones.RunContext.__module__)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert result.stdout.splitlines() == ["[]", "tt_milestones.api"], result.stderr


def test_threads_default_to_every_core_and_are_recorded(tmp_path, capsys):
    from tt_milestones.runner import default_threads

    code = cli.main(["run", "01", "--quick", "--out", str(tmp_path / "a")])
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert code == 0 and report["threads"] == default_threads() >= 1
    code = cli.main(["run", "01", "--quick", "--threads", "1", "--out", str(tmp_path / "b")])
    assert code == 0 and json.loads((tmp_path / "b" / "report.json").read_text())["threads"] == 1
    assert "BLAS threads: 1" in capsys.readouterr().out


def test_blas_threads_limits_blas_inside_the_block():
    from threadpoolctl import threadpool_info
    from tt_milestones.runner import blas_threads

    def blas() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas()
    with blas_threads(1):
        assert set(blas()) <= {1}
    assert blas() == before


@pytest.mark.parametrize("text", ["0", "-1", "two"])
def test_threads_must_be_a_positive_whole_number(text, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "01", "--threads", text])
    assert info.value.code == 2 and "whole number >= 1" in capsys.readouterr().err

"""Bad-input and fault probes: what a new user typing the wrong thing meets, across the CLI,
checkpoints, tensors, data, language and perf.

Each probe does one thing a user might do wrong (a bad id or flag, an ``--out`` that is a
file, a corrupted data file, a checkpoint that does not fit, a NaN temperature, ...) and a
classifier puts what happened in one of six classes:

- ``clear``: a TinyTorch error (or, for the CLI, exit code 2 and one line) naming what was wrong;
- ``correct``: the input is fine after all, or the fault is handled, and the result is right;
- ``traceback``: a traceback on the terminal, a raw exception (not a ``TinyTorchError``), or the
  CLI's exit code 3 (an unexpected internal error);
- ``silent``: a wrong result, or bad input taken without a word;
- ``misleading``: an error that names the wrong thing, or the wrong exit code;
- ``half-loaded``: a refused load that changed something anyway.

Only the first two are good: the script prints a table and the count of each class, and exits
1 when any of the other four is not zero.

Usage::

    python tools/probes.py              # every probe
    python tools/probes.py -k cli -v    # probes whose name or item contains "cli", with details

Everything is written in a temporary folder: the cache (``TT_CACHE_DIR``), the state of
``check`` (``TT_STATE_DIR``), the XDG and matplotlib folders, and the run folders. Real data is
read from ``TT_DATA_DIR`` (default ``/work/shared/data``); a probe that corrupts a file corrupts
a copy. Downloads go through a proxy address that refuses connections, so nothing is fetched.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLEAR, CORRECT, RAW, SILENT, MISLEADING, HALF = (
    "clear", "correct", "traceback", "silent", "misleading", "half-loaded")
CLASSES = (CLEAR, CORRECT, RAW, SILENT, MISLEADING, HALF)
GOOD = (CLEAR, CORRECT)
OFFLINE_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, every download fails at once


# -- probes and outcomes ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one probe's action did: its return value or exception, the warnings it gave,
    a finished command (``proc``), and whatever else the action recorded in ``info``."""

    value: Any = None
    error: BaseException | None = None
    warnings: list = field(default_factory=list)
    proc: subprocess.CompletedProcess | None = None
    timed_out: bool = False
    info: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return "" if self.error is None else str(self.error)


@dataclass
class Probe:
    name: str
    item: str
    action: Callable[[Outcome, Path], Any]
    classify: Callable[[Outcome], tuple[str, str]]


PROBES: list[Probe] = []


def probe(name: str, item: str, classify: Callable[[Outcome], tuple[str, str]]):
    """Register the decorated ``action(outcome, tmp)`` as a probe."""
    def register(action):
        PROBES.append(Probe(name, item, action, classify))
        return action

    return register


def short(value: Any, limit: int = 110) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- classifiers ----------------------------------------------------------------------------------


def _tinytorch_error() -> type:
    from tt_core.errors import TinyTorchError

    return TinyTorchError


def _missing_words(text: str, words) -> list[str]:
    low = text.lower()
    return [w for w in words if w.lower() not in low]


def raises(*words: str, types: tuple = (), check: Callable[[Outcome], tuple[str, str] | None] | None = None):
    """Clear when the action raised a TinyTorchError (or one of ``types``) whose message holds
    every one of ``words``; the refused load must not have changed anything (``info["changed"]``)."""
    def classify(o: Outcome) -> tuple[str, str]:
        if o.info.get("changed"):
            return HALF, f"refused but changed: {o.info.get('changed_what', '')} ({short(o.error)})"
        if check is not None:
            verdict = check(o)
            if verdict is not None:
                return verdict
        if o.error is None:
            extra = f"; warned: {short(o.warnings[0].message)}" if o.warnings else ""
            return SILENT, f"no error, returned {short(repr(o.value), 70)}{extra}"
        accepted = (_tinytorch_error(), *types)
        kind = type(o.error).__name__
        if not isinstance(o.error, accepted):
            return RAW, f"{kind}: {short(o.error)}"
        missing = _missing_words(o.message, words)
        if missing:
            return MISLEADING, f"message lacks {missing}: {kind}: {short(o.error)}"
        return CLEAR, f"{kind}: {short(o.error)}"

    return classify


def warns(*words: str, category: type | None = None):
    """Correct when the action returned normally and warned with every one of ``words``."""
    def classify(o: Outcome) -> tuple[str, str]:
        if o.error is not None:
            return raises(*words)(o)
        found = [w for w in o.warnings if category is None or issubclass(w.category, category)]
        if not found:
            return SILENT, f"no warning, returned {short(repr(o.value), 70)}"
        text = str(found[0].message)
        missing = _missing_words(text, words)
        if missing:
            return MISLEADING, f"warning lacks {missing}: {short(text)}"
        return CORRECT, f"warned: {short(text)}"

    return classify


def returns(check: Callable[[Any, Outcome], str | None], note: str = ""):
    """Correct when the action returned and ``check(value, outcome)`` finds nothing wrong (it
    returns the problem, or None)."""
    def classify(o: Outcome) -> tuple[str, str]:
        if o.info.get("changed"):
            return HALF, f"changed: {o.info.get('changed_what', '')}"
        if o.error is not None:
            if isinstance(o.error, _tinytorch_error()):
                return MISLEADING, f"refused good input: {type(o.error).__name__}: {short(o.error)}"
            return RAW, f"{type(o.error).__name__}: {short(o.error)}"
        problem = check(o.value, o)
        if problem:
            return SILENT, problem
        return CORRECT, note or short(repr(o.value), 80)

    return classify


def cli_text(o: Outcome) -> str:
    return (o.proc.stdout or "") + (o.proc.stderr or "") if o.proc is not None else ""


def exits(code: int, *words: str, check: Callable[[Outcome], tuple[str, str] | None] | None = None,
          stream: str = "stderr"):
    """For a command: the expected exit ``code``, no traceback, and ``words`` in ``stream``
    (stderr for errors). An unexpected exit 3 is an internal error (a raw exception); a
    command still running at its timeout did not refuse what it was given."""
    def classify(o: Outcome) -> tuple[str, str]:
        if o.timed_out:
            return SILENT, f"still running after {o.info.get('timeout')} s: the bad input was not refused"
        proc = o.proc
        text = cli_text(o)
        last = short((proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or [""], 100)
        if "Traceback (most recent call last)" in text:
            return RAW, f"traceback on the terminal (exit {proc.returncode}): {last}"
        if proc.returncode == 3 and code != 3:
            return RAW, f"exit 3, internal error: {short(proc.stderr, 100)}"
        if check is not None:
            verdict = check(o)
            if verdict is not None:
                return verdict
        if proc.returncode != code:
            if code >= 2 and proc.returncode in (0, 1):
                return SILENT, f"exit {proc.returncode}: accepted; {last}"
            return MISLEADING, f"exit {proc.returncode}, expected {code}: {last}"
        missing = _missing_words(getattr(proc, stream) or "", words)
        if missing:
            return MISLEADING, f"exit {code} but {stream} lacks {missing}: {short(getattr(proc, stream), 100)}"
        first = (proc.stderr or "").strip().splitlines()
        return (CORRECT if code in (0, 1) else CLEAR), f"exit {code}: {short(first[0] if first else last, 100)}"

    return classify


# -- the environment ---------------------------------------------------------------------------------


class Env:
    """The temporary folders and the environment every probe runs in."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root, self.data = root, data
        self.cache = root / "cache"
        self.cwd = root / "cwd"
        for folder in (self.cache, self.cwd, root / "state", root / "xdg-cache", root / "xdg-data",
                       root / "xdg-config", root / "mpl"):
            folder.mkdir(parents=True, exist_ok=True)
        self.vars = {
            "TT_DATA_DIR": str(data), "TT_CACHE_DIR": str(self.cache), "TT_STATE_DIR": str(root / "state"),
            "XDG_CACHE_HOME": str(root / "xdg-cache"), "XDG_DATA_HOME": str(root / "xdg-data"),
            "XDG_CONFIG_HOME": str(root / "xdg-config"), "MPLCONFIGDIR": str(root / "mpl"), "MPLBACKEND": "Agg",
            "http_proxy": OFFLINE_PROXY, "https_proxy": OFFLINE_PROXY, "HTTP_PROXY": OFFLINE_PROXY,
            "HTTPS_PROXY": OFFLINE_PROXY, "no_proxy": "", "NO_PROXY": "", "COLUMNS": "200",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.counter = 0

    def apply(self) -> None:
        """Make this process use the temporary folders too (the in-process probes)."""
        for name in [n for n in os.environ if n.startswith("TT_")]:
            del os.environ[name]
        os.environ.update(self.vars)

    def fresh(self) -> Path:
        """A new empty folder for one probe (named by number only, so that no word a
        classifier looks for in a message comes from the folder's name)."""
        self.counter += 1
        folder = self.root / "p" / f"{self.counter:03d}"
        folder.mkdir(parents=True)
        return folder

    def env(self, **changes: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TT_")}
        env.update(self.vars)
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env


ENV: Env  # set in main()


@contextlib.contextmanager
def environ(**changes: str | None):
    """Set (or with None remove) environment variables for the duration of one in-process probe."""
    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def command() -> list[str]:
    """How a user starts the CLI: the ``tt-milestones`` script beside this Python, else ``-m``."""
    script = Path(sys.executable).with_name("tt-milestones")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tt_milestones"]


def cli(o: Outcome, *args: str, timeout: float = 60, env: dict | None = None, cwd: Path | None = None,
        stdin: str = "", preexec=None) -> subprocess.CompletedProcess | None:
    """Run ``tt-milestones ARGS`` and record it in ``o`` (killed after ``timeout`` seconds)."""
    o.info["timeout"] = timeout
    process = subprocess.Popen(
        [*command(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env or ENV.env(), cwd=cwd or ENV.cwd, preexec_fn=preexec,  # noqa: PLW1509 - no threads here
        start_new_session=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        o.timed_out = True
    o.proc = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return o.proc


def read_report(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def trained_before_refusing(folder: Path) -> tuple[str, str] | None:
    """SILENT when the run folder's report shows a phase that finished: the run trained
    before it refused its input."""
    report = read_report(folder)
    done = [p["name"] for p in (report or {}).get("phases", []) if p.get("status") == "completed"]
    if done:
        return SILENT, f"refused only after training {', '.join(done)}"
    return None


# ===================================================================================================
# The CLI
# ===================================================================================================

ITEM_EXIT = "exit codes"
ITEM_OUT = "--out checked first"
ITEM_REPORT = "report.json by phase"
ITEM_LOCK = "one run per --out"
ITEM_CTRL_C = "Ctrl-C"
ITEM_PROVIDERS = "TT_PROVIDERS / TT_DISABLE_PLUGINS"
ITEM_OUT_EMPTY = "--out ''"


@probe("cli: info of an unknown id", ITEM_EXIT, exits(2, "99"))
def _(o, tmp):
    cli(o, "info", "99")


@probe("cli: run an unknown id", ITEM_EXIT, exits(2, "99"))
def _(o, tmp):
    cli(o, "run", "99", "--quick", "--out", str(tmp / "out"))


@probe("cli: run a misspelt slug", ITEM_EXIT, exits(2, "perceptronn"))
def _(o, tmp):
    cli(o, "run", "perceptronn", "--quick", "--out", str(tmp / "out"))


@probe("cli: run with an unknown flag", ITEM_EXIT, exits(2, "--bogus"))
def _(o, tmp):
    cli(o, "run", "01", "--bogus")


@probe("cli: run --seed -1", ITEM_EXIT, exits(2, "seed"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--seed", "-1", "--out", str(tmp / "out"))


@probe("cli: run --threads 0", ITEM_EXIT, exits(2, "threads"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--threads", "0", "--out", str(tmp / "out"))


@probe("cli: run 01 --chat (an option of 05 only)", ITEM_EXIT, exits(2, "--chat"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--chat", "--out", str(tmp / "out"))


@probe("cli: no command at all", ITEM_EXIT, exits(2, "command"))
def _(o, tmp):
    cli(o)


@probe("cli: run 01 --quick reaches its target", ITEM_EXIT,
       exits(0, stream="stdout", check=lambda o: None if (read_report(o.info["out"]) or {}).get("status") == "completed"
             else (SILENT, f"report.json: {short(read_report(o.info['out']))}")))
def _(o, tmp):
    o.info["out"] = tmp / "out"
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"))


def _unchanged_file(o):
    if o.info["file"].read_text() != "keep me":
        return HALF, "the file given as --out was changed"
    return None


@probe("cli: --out is an existing file", ITEM_OUT, exits(2, "is a file", check=_unchanged_file))
def _(o, tmp):
    o.info["file"] = tmp / "results.txt"
    o.info["file"].write_text("keep me")
    cli(o, "run", "01", "--quick", "--out", str(o.info["file"]))


@probe("cli: --out lies under a file", ITEM_OUT, exits(2, "is a file", check=_unchanged_file))
def _(o, tmp):
    o.info["file"] = tmp / "results.txt"
    o.info["file"].write_text("keep me")
    cli(o, "run", "01", "--quick", "--out", str(o.info["file"] / "run"))


def read_only_folder(tmp: Path) -> Path:
    """A folder this process cannot write into: a read-only one, or (as root, who may write
    anywhere on a normal file system) one of sysfs."""
    if os.geteuid() == 0 and Path("/sys/kernel").is_dir():
        return Path("/sys/kernel")
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


@probe("cli: --out is a read-only folder", ITEM_OUT, exits(2, "cannot be written"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--out", str(read_only_folder(tmp)))


@probe("cli: --out cannot be created (read-only parent)", ITEM_OUT, exits(2, "cannot be created"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--out", str(read_only_folder(tmp) / "tt-probe-run"))


@probe("cli: --out ''", ITEM_OUT_EMPTY, exits(2, "--out is empty"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--out", "", cwd=tmp)


@probe("cli: --out '   '", ITEM_OUT_EMPTY, exits(2, "--out is empty"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--out", "   ", cwd=tmp)


def _plot_error_reported(o):
    report = read_report(o.info["out"])
    if not report or report.get("status") != "completed" or not report.get("plot_errors"):
        return SILENT, f"the unsaved plot is not in report.json: {short(report)}"
    return None


@probe("cli: a plot that cannot be saved (its name is a folder)", ITEM_REPORT,
       exits(0, stream="stdout", check=_plot_error_reported))
def _(o, tmp):
    o.info["out"] = tmp / "out"
    (tmp / "out" / "convergence.png").mkdir(parents=True)
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"))


@probe("cli: report.json cannot be written (a folder of that name)", ITEM_REPORT, exits(2, "report.json"))
def _(o, tmp):
    (tmp / "out" / "report.json").mkdir(parents=True)
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"))


def _limit_file_size():  # in the child: no file may grow beyond 20 KiB (EFBIG), as on a disk that is full
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20 * 1024, 20 * 1024))


def _full_disk_check(o):
    report = read_report(o.info["out"]) or {}
    if not report.get("plot_errors"):
        return SILENT, f"the plots that could not be written are not in report.json: {short(report)}"
    return None


@probe("cli: the disk fills up during a run (files over 20 KiB fail)", ITEM_REPORT,
       exits(0, stream="stdout", check=_full_disk_check))
def _(o, tmp):
    o.info["out"] = tmp / "out"
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"), preexec=_limit_file_size)


@probe("cli: two runs into one --out at once", ITEM_LOCK,
       exits(2, "another tt-milestones run", check=lambda o: o.info.get("first_problem")))
def _(o, tmp):
    out = tmp / "out"
    first = subprocess.Popen([*command(), "run", "04", "--quick", "--out", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV.env(), cwd=ENV.cwd, start_new_session=True)
    try:
        deadline = time.time() + 30
        while not (out / ".tt-milestones.lock").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        cli(o, "run", "04", "--quick", "--out", str(out))
    finally:
        _, err = first.communicate(timeout=120)
    report = read_report(out) or {}
    if first.returncode != 0 or report.get("status") != "completed":
        problem = f"the first run was disturbed: exit {first.returncode}, status {report.get('status')}: {short(err)}"
        o.info["first_problem"] = (SILENT, problem)
    elif o.proc.returncode == 0:
        o.info["first_problem"] = (SILENT, "both runs wrote into the same folder")


@probe("cli: a lock file left by a killed run", ITEM_LOCK, exits(0, stream="stdout"))
def _(o, tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / ".tt-milestones.lock").write_text("999999\n")
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"))


def _interrupted(o):
    report = read_report(o.info["out"]) or {}
    if report.get("status") != "interrupted":
        return SILENT, f"report.json status {report.get('status')!r}, expected 'interrupted'"
    return None


@probe("cli: Ctrl-C during a run", ITEM_CTRL_C, exits(130, "interrupted", check=_interrupted))
def _(o, tmp):
    out = o.info["out"] = tmp / "out"
    process = subprocess.Popen([*command(), "run", "03", "--quick", "--out", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=ENV.env(), cwd=ENV.cwd, start_new_session=True)
    deadline = time.time() + 30
    while (read_report(out) or {}).get("status") != "running" and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    o.proc = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@probe("cli: Ctrl-C while starting up (imports)", ITEM_CTRL_C,
       lambda o: o.info["verdict"])
def _(o, tmp):
    results = []
    for delay in (0.05, 0.15, 0.3, 0.5):
        process = subprocess.Popen([*command(), "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=ENV.env(), cwd=ENV.cwd, start_new_session=True)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        results.append((delay, process.returncode, stderr))
    bad = [(d, rc, e) for d, rc, e in results if "Traceback" in e or rc not in (0, 130, -signal.SIGINT)]
    codes = ", ".join(f"{d}s: {rc}" for d, rc, _ in results)
    o.info["verdict"] = ((RAW, f"after {bad[0][0]} s: exit {bad[0][1]}: {short(bad[0][2])}") if bad
                         else (CORRECT, f"no traceback; exit codes {codes}"))


@probe("cli: TT_PROVIDERS with the wrong case (layer:linear)", ITEM_PROVIDERS, exits(2, "layer:linear", "Linear"))
def _(o, tmp):
    cli(o, "list", env=ENV.env(TT_PROVIDERS="layer:linear=tt-core"))


@probe("cli: TT_PROVIDERS picks a distribution that does not provide it", ITEM_PROVIDERS, exits(2, "nobody"))
def _(o, tmp):
    cli(o, "list", env=ENV.env(TT_PROVIDERS="layer:Linear=nobody"))


@probe("cli: TT_PROVIDERS names an unknown bare distribution", ITEM_PROVIDERS, exits(2, "my-tinytorchh"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--out", str(tmp / "out"), env=ENV.env(TT_PROVIDERS="my-tinytorchh"))


@probe("cli: TT_PROVIDERS entry without '=dist'", ITEM_PROVIDERS, exits(2, "layer:Linear"))
def _(o, tmp):
    cli(o, "list", env=ENV.env(TT_PROVIDERS="layer:Linear"))


@probe("cli: TT_DISABLE_PLUGINS naming no installed plugin", ITEM_PROVIDERS,
       exits(0, "TT_DISABLE_PLUGINS", "tt-lern"))
def _(o, tmp):
    cli(o, "list", env=ENV.env(TT_DISABLE_PLUGINS="tt-lern"))


@probe("cli: TT_DISABLE_PLUGINS naming tt-core", ITEM_PROVIDERS, exits(0, "TT_DISABLE_PLUGINS", "tt-core"))
def _(o, tmp):
    cli(o, "list", env=ENV.env(TT_DISABLE_PLUGINS="tt-core"))


@probe("cli: a milestone locked by TT_DISABLE_PLUGINS says so", ITEM_PROVIDERS,
       exits(2, "blocked by TT_DISABLE_PLUGINS",
             check=lambda o: (MISLEADING, f"says install: {short(o.proc.stderr)}")
             if "install tt-learn" in o.proc.stderr else None))
def _(o, tmp):
    cli(o, "run", "02", "--quick", "--out", str(tmp / "out"), env=ENV.env(TT_DISABLE_PLUGINS="tt-learn"))


@probe("cli: run --use an unknown distribution", ITEM_PROVIDERS, exits(2, "nobody"))
def _(o, tmp):
    cli(o, "run", "01", "--quick", "--use", "nobody", "--out", str(tmp / "out"))


@probe("cli: status --use an unknown distribution", ITEM_PROVIDERS, exits(2, "nobody"))
def _(o, tmp):
    cli(o, "status", "--use", "nobody")


@probe("cli: check a distribution that is not installed", ITEM_EXIT, exits(2, "nobody"))
def _(o, tmp):
    cli(o, "check", "nobody")


@probe("cli: check a component with the wrong case", ITEM_EXIT, exits(2, "layer:linear", "layer:Linear"))
def _(o, tmp):
    cli(o, "check", "layer:linear")


def _third_party_plugins() -> str:
    """The installed ``tinytorch`` plugins that are not TinyTorch's own (a learner's packages)."""
    from importlib import metadata

    from tt_core.plugins import BUILTIN_DISTRIBUTIONS, normalize_dist

    names = {normalize_dist(ep.dist.name) for ep in metadata.entry_points(group="tinytorch") if ep.dist is not None}
    return ",".join(sorted(names - BUILTIN_DISTRIBUTIONS))


@probe("cli: check with nothing of the learner's installed", ITEM_EXIT, exits(2, "nothing to check"))
def _(o, tmp):
    cli(o, "check", env=ENV.env(TT_DISABLE_PLUGINS=_third_party_plugins() or None))  # as on a fresh install


@probe("cli: check --seed abc", ITEM_EXIT, exits(2, "seed"))
def _(o, tmp):
    cli(o, "check", "layer:Linear", "--seed", "abc")


@probe("cli: new with an unknown act", ITEM_EXIT, exits(2, "--act"))
def _(o, tmp):
    cli(o, "new", str(tmp / "pkg"), "--act", "nosuch")


@probe("cli: new into a folder that is not empty", ITEM_EXIT,
       exits(2, "not empty", check=lambda o: (HALF, "wrote into the folder")
             if sorted(p.name for p in (o.info["dir"]).iterdir()) != ["notes.txt"] else None))
def _(o, tmp):
    o.info["dir"] = tmp / "pkg"
    o.info["dir"].mkdir()
    (o.info["dir"] / "notes.txt").write_text("mine")
    cli(o, "new", str(o.info["dir"]), "--act", "core")


@probe("cli: new over a file", ITEM_EXIT, exits(2, "is a file"))
def _(o, tmp):
    (tmp / "pkg").write_text("mine")
    cli(o, "new", str(tmp / "pkg"), "--act", "core")


@probe("cli: new with a distribution name that is not one", ITEM_EXIT, exits(2, "name"))
def _(o, tmp):
    cli(o, "new", str(tmp / "pkg"), "--act", "core", "--name", "my tiny torch!")


# -- data through the CLI ------------------------------------------------------------------------------

ITEM_SHA = "data verified by sha256"
ITEM_UPFRONT = "all data checked before training"
ITEM_DERIVED = "derived caches validated"
ITEM_LOADS = "loads all-or-nothing"
ITEM_SILENT = "silently wrong input"
ITEM_SECURITY = "security"
ITEM_DEEP = "deep trees, temp files"


def data_copy(tmp: Path, files: list[str], flip: dict[str, int] | None = None) -> Path:
    """A data folder holding copies of ``files`` (paths under TT_DATA_DIR); ``flip`` maps a file
    to the offset of a byte to invert (negative: from the end)."""
    root = tmp / "data"
    for relative in files:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ENV.data / relative, target)
        if flip and relative in flip:
            raw = bytearray(target.read_bytes())
            raw[flip[relative]] ^= 0xFF
            target.write_bytes(bytes(raw))
    return root


MNIST_FILES = [f"mnist/{name}" for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]


@probe("cli: run 03 with a flipped byte in a copy of MNIST", ITEM_SHA,
       exits(2, "train-images-idx3-ubyte.gz", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    data = data_copy(tmp, MNIST_FILES, flip={MNIST_FILES[0]: 5_000_000})
    o.info["out"] = tmp / "out"
    cli(o, "run", "03", "--out", str(tmp / "out"), env=ENV.env(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "c")),
        timeout=45)


@probe("cli: run 03 with two MNIST files missing, offline", ITEM_UPFRONT,
       exits(2, "t10k-images", "t10k-labels", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    data = data_copy(tmp, MNIST_FILES[:2])
    o.info["out"] = tmp / "out"
    cli(o, "run", "03", "--out", str(tmp / "out"), env=ENV.env(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "c")),
        timeout=45)


@probe("cli: run 04 without CIFAR-10, offline", ITEM_UPFRONT,
       exits(2, "cifar", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    (tmp / "data").mkdir()
    o.info["out"] = tmp / "out"
    cli(o, "run", "04", "--out", str(tmp / "out"), env=ENV.env(TT_DATA_DIR=str(tmp / "data"),
                                                               TT_CACHE_DIR=str(tmp / "c")), timeout=30)


@probe("cli: run 05 --quick without TinyTalks, offline", ITEM_UPFRONT,
       exits(2, "tinytalks", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    (tmp / "data").mkdir()
    o.info["out"] = tmp / "out"
    cli(o, "run", "05", "--quick", "--out", str(tmp / "out"),
        env=ENV.env(TT_DATA_DIR=str(tmp / "data"), TT_CACHE_DIR=str(tmp / "c")), timeout=30)


@probe("cli: run 05 without Tiny Shakespeare, offline", ITEM_UPFRONT,
       exits(2, "tinyshakespeare", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    data = data_copy(tmp, [f"tinytalks/splits/{s}.txt" for s in ("train", "val", "test")])
    o.info["out"] = tmp / "out"
    cli(o, "run", "05", "--out", str(tmp / "out"), env=ENV.env(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "c")),
        timeout=30)


@probe("cli: run 06 without MNIST and CIFAR-10, offline", ITEM_UPFRONT,
       exits(2, "mnist", "cifar", check=lambda o: trained_before_refusing(o.info["out"])))
def _(o, tmp):
    (tmp / "data").mkdir()
    o.info["out"] = tmp / "out"
    cli(o, "run", "06", "--out", str(tmp / "out"), env=ENV.env(TT_DATA_DIR=str(tmp / "data"),
                                                               TT_CACHE_DIR=str(tmp / "c")), timeout=30)


def save_chat_checkpoint(folder: Path, **entries) -> None:
    import tt_core

    folder.mkdir(parents=True, exist_ok=True)
    tt_core.save(entries, folder / "tinytalks_gpt.npz")


@probe("cli: run 05 --chat with a checkpoint without config", ITEM_LOADS, exits(2, "config"))
def _(o, tmp):
    save_chat_checkpoint(tmp / "out", state={}, tokenizer={"type": "char", "chars": "ab", "special_tokens": []})
    cli(o, "run", "05", "--chat", "--out", str(tmp / "out"))


@probe("cli: run 05 --chat with a config the GPT refuses", ITEM_LOADS, exits(2, "config"))
def _(o, tmp):
    config = {"vocab_size": 10, "block_size": 8, "num_layers": 1, "num_heads": 4, "embed_dim": 15}
    save_chat_checkpoint(tmp / "out", config=config, state={},
                         tokenizer={"type": "char", "chars": "ab", "special_tokens": []})
    cli(o, "run", "05", "--chat", "--out", str(tmp / "out"))


@probe("cli: run 05 --chat with weights that do not fit", ITEM_LOADS, exits(2, "tinytalks_gpt.npz"))
def _(o, tmp):
    config = {"vocab_size": 10, "block_size": 8, "num_layers": 1, "num_heads": 2, "embed_dim": 16}
    save_chat_checkpoint(tmp / "out", config=config, state={"tok_emb.weight": np.zeros((3, 3), np.float32)},
                         tokenizer={"type": "char", "chars": "abcdefghij", "special_tokens": []})
    cli(o, "run", "05", "--chat", "--out", str(tmp / "out"))


@probe("cli: run 05 --chat with a corrupt checkpoint file", ITEM_LOADS, exits(2, "tinytalks_gpt.npz"))
def _(o, tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "tinytalks_gpt.npz").write_bytes(b"PK\x03\x04" + os.urandom(300))
    cli(o, "run", "05", "--chat", "--out", str(tmp / "out"))


# ===================================================================================================
# Checkpoints
# ===================================================================================================


def small_model():
    import tt_core

    tt_core.manual_seed(0)
    return tt_core.Sequential(tt_core.Linear(4, 8), tt_core.ReLU(), tt_core.Linear(8, 3))


def snapshot(model) -> dict:
    return {k: v.copy() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@contextlib.contextmanager
def watch(o: Outcome, model, what: str = "the model's weights"):
    """Record in ``o`` whether ``model``'s state changed inside the block."""
    before = snapshot(model)
    try:
        yield
    finally:
        if not same(before, snapshot(model)):
            o.info["changed"], o.info["changed_what"] = True, what


def good_checkpoint(tmp: Path) -> Path:
    import tt_core

    return tt_core.save({"model": small_model().state_dict(), "epoch": 3}, tmp / "ckpt.npz")


def _load(path):
    import tt_core

    return tt_core.load(path)


@probe("load: a file that does not exist", ITEM_LOADS, raises("no checkpoint"))
def _(o, tmp):
    _load(tmp / "missing.npz")


@probe("load: a folder", ITEM_LOADS, raises("no checkpoint"))
def _(o, tmp):
    _load(tmp)


@probe("load: an empty file", ITEM_LOADS, raises("empty.npz"))
def _(o, tmp):
    (tmp / "empty.npz").write_bytes(b"")
    _load(tmp / "empty.npz")


@probe("load: a truncated checkpoint", ITEM_LOADS, raises("ckpt.npz"))
def _(o, tmp):
    path = good_checkpoint(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _load(path)


def _same_tree(a, b) -> bool:
    """Whether two loaded trees hold the same values."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _mutations(o, tmp):
    """200 copies of a checkpoint, each with random bytes changed (every 4th also cut short):
    each must load with the original values, or raise CheckpointError; anything else is
    recorded (another exception in ``other``, different values in ``different``)."""
    from tt_core.errors import CheckpointError

    path = good_checkpoint(tmp)
    raw = path.read_bytes()
    original = _load(path)
    rng = np.random.default_rng(12)
    outcomes = {"loaded": 0, "refused": 0}
    for trial in range(200):
        data = bytearray(raw)
        for offset in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            data[offset] = int(rng.integers(0, 256))
        if trial % 4 == 0:
            data = data[: int(rng.integers(0, len(data)))]
        path.write_bytes(bytes(data))
        try:
            loaded = _load(path)
        except CheckpointError:
            outcomes["refused"] += 1
            continue
        except Exception as error:  # noqa: BLE001 - any other exception is what this probe looks for
            o.info.setdefault("other", []).append(f"{type(error).__name__}: {error}")
            continue
        outcomes["loaded"] += 1
        if not _same_tree(original, loaded):
            o.info.setdefault("different", []).append(f"trial {trial}")
    return outcomes


def _mutations_verdict(o):
    if o.info.get("other"):
        return RAW, f"{len(o.info['other'])} raised other errors, e.g. {short(o.info['other'][0])}"
    if o.info.get("different"):
        return SILENT, f"{len(o.info['different'])} loaded with different values ({o.value})"
    return CORRECT, f"each refused with CheckpointError or loaded unchanged: {o.value}"


@probe("load: 200 randomly mutated or truncated checkpoints", ITEM_LOADS, _mutations_verdict)
def _(o, tmp):
    return _mutations(o, tmp)


@probe("load: a pickle file", ITEM_SECURITY, raises("pickle"))
def _(o, tmp):
    (tmp / "ckpt.npz").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    _load(tmp / "ckpt.npz")


@probe("load: an .npz holding a pickled object array", ITEM_SECURITY, raises("pickle"))
def _(o, tmp):
    np.savez(tmp / "ckpt.npz", __tree__=np.frombuffer(b'{"format": "tinytorch-npz-1", "root": {"$array": 0}}',
                                                        dtype=np.uint8), arr_0=np.array([{"a": 1}], dtype=object))
    _load(tmp / "ckpt.npz")


@probe("load: a bare .npy", ITEM_LOADS, raises(".npy"))
def _(o, tmp):
    np.save(tmp / "weights.npy", np.ones(3))
    _load(tmp / "weights.npy")


@probe("load: a foreign .npz (no tree)", ITEM_LOADS, raises("not a TinyTorch checkpoint"))
def _(o, tmp):
    np.savez(tmp / "other.npz", weight=np.ones(3))
    _load(tmp / "other.npz")


@probe("load: a text file", ITEM_LOADS, raises("not a .npz"))
def _(o, tmp):
    (tmp / "notes.npz").write_text("weights: 1 2 3")
    _load(tmp / "notes.npz")


def deep_tree_file(path: Path, depth: int) -> Path:
    tree = '{"$list": [' * depth + "1" + "]}" * depth
    text = '{"format": "tinytorch-npz-1", "root": ' + tree + "}"
    np.savez(path, __tree__=np.frombuffer(text.encode(), dtype=np.uint8))
    return path


@probe("load: a tree nested 100,000 deep", ITEM_DEEP, raises("deep"))
def _(o, tmp):
    _load(deep_tree_file(tmp / "deep.npz", 100_000))


@probe("load: a tree nested 500 deep", ITEM_DEEP, raises("deep"))
def _(o, tmp):
    _load(deep_tree_file(tmp / "deep.npz", 500))


@probe("save: a tree nested 5,000 deep", ITEM_DEEP, raises("deep"))
def _(o, tmp):
    import tt_core

    tree: list = []
    for _ in range(5000):
        tree = [tree]
    tt_core.save(tree, tmp / "deep.npz")


@probe("save: a dict with a non-string key", ITEM_LOADS, raises("keys"))
def _(o, tmp):
    import tt_core

    tt_core.save({1: np.ones(2)}, tmp / "ckpt.npz")


@probe("save: a temp file left by a killed save is removed", ITEM_DEEP,
       returns(lambda value, o: None if not o.info["stale"].exists() else "the stale temp file is still there"))
def _(o, tmp):
    import tt_core

    stale = o.info["stale"] = tmp / ".ckpt.npz.999999.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    return tt_core.save({"x": 1}, tmp / "ckpt.npz")


@probe("save: over a folder", ITEM_LOADS, raises("ckpt.npz", "folder", types=(OSError,)))
def _(o, tmp):
    import tt_core

    (tmp / "ckpt.npz").mkdir()
    tt_core.save({"x": 1}, tmp / "ckpt.npz")


@probe("save: into a folder that is a file", ITEM_LOADS, raises("ckpt.npz", types=(OSError,)))
def _(o, tmp):
    import tt_core

    (tmp / "runs").write_text("a file")
    tt_core.save({"x": 1}, tmp / "runs" / "ckpt.npz")


def _state_with(**changes):
    state = small_model().state_dict()
    state.update(changes)
    return state


def _load_into_fresh(o, state, strict=True):
    import tt_core

    tt_core.manual_seed(1)
    model = tt_core.Sequential(tt_core.Linear(4, 8), tt_core.ReLU(), tt_core.Linear(8, 3))
    with watch(o, model):
        return model.load_state_dict(state, strict=strict)


@probe("load_state_dict: a string array among good ones", ITEM_LOADS, raises("2.weight", "text"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"2.weight": np.full((3, 8), "x")}))


@probe("load_state_dict: a wrong shape", ITEM_LOADS, raises("0.weight", "(8, 5)"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"0.weight": np.zeros((8, 5), np.float32)}))


@probe("load_state_dict: a missing key", ITEM_LOADS, raises("missing", "2.bias"))
def _(o, tmp):
    state = small_model().state_dict()
    del state["2.bias"]
    _load_into_fresh(o, state)


@probe("load_state_dict: an unexpected key", ITEM_LOADS, raises("unexpected", "3.weight"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"3.weight": np.zeros(2)}))


@probe("load_state_dict: booleans into float weights", ITEM_LOADS, raises("0.bias", "bool"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"0.bias": np.ones(8, dtype=bool)}))


@probe("load_state_dict: complex numbers into float weights", ITEM_LOADS, raises("0.bias", "complex"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"0.bias": np.ones(8, dtype=np.complex64)}))


@probe("load_state_dict: a nested list holding a string", ITEM_LOADS, raises("0.bias"))
def _(o, tmp):
    _load_into_fresh(o, _state_with(**{"0.bias": [0.0] * 7 + ["x"]}))


@probe("load_state_dict: a list instead of a dict", ITEM_LOADS, raises("dict"))
def _(o, tmp):
    _load_into_fresh(o, list(small_model().state_dict().values()))


@probe("load_state_dict: strict=False with a key missing", ITEM_LOADS,
       returns(lambda value, o: None if value == {"missing": ["2.bias"], "unexpected": []} else f"report {value}"))
def _(o, tmp):
    state = small_model().state_dict()
    del state["2.bias"]
    import tt_core

    model = tt_core.Sequential(tt_core.Linear(4, 8), tt_core.ReLU(), tt_core.Linear(8, 3))
    report = model.load_state_dict(state, strict=False)
    if not np.array_equal(model[0].weight.data, state["0.weight"]):
        return "the present keys were not loaded"
    return report


def adam_and_sgd():
    import tt_learn

    model = small_model()
    sgd = tt_learn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    adam = tt_learn.Adam(small_model().parameters(), lr=1e-3)
    return model, sgd, adam


def optimizer_snapshot(opt) -> str:
    """The optimizer's options and per-parameter state, as text (to see whether a load changed them)."""
    def entry(value):
        return hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest() if isinstance(value, np.ndarray) else value

    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    states = [{k: entry(v) for k, v in s.items()} for s in opt.state.values()]
    return json.dumps([groups, states], default=str, sort_keys=True)


@probe("optimizer: an SGD state dict into Adam", ITEM_LOADS, raises("SGD", "Adam"))
def _(o, tmp):
    _, sgd, adam = adam_and_sgd()
    before = optimizer_snapshot(adam)
    try:
        adam.load_state_dict(sgd.state_dict())
    finally:
        if optimizer_snapshot(adam) != before:
            o.info["changed"], o.info["changed_what"] = True, "Adam's options"


@probe("optimizer: an SGD state dict with its type removed, into Adam", ITEM_LOADS, raises("betas"))
def _(o, tmp):
    _, sgd, adam = adam_and_sgd()
    state = sgd.state_dict()
    del state["type"]
    before = optimizer_snapshot(adam)
    try:
        adam.load_state_dict(state)
    finally:
        if optimizer_snapshot(adam) != before:
            o.info["changed"], o.info["changed_what"] = True, "Adam's options"


@probe("optimizer: a learning rate that is a string", ITEM_LOADS, raises("lr"))
def _(o, tmp):
    _, sgd, _ = adam_and_sgd()
    state = sgd.state_dict()
    state["param_groups"][0]["lr"] = "0.1"
    before = optimizer_snapshot(sgd)
    try:
        sgd.load_state_dict(state)
    finally:
        if optimizer_snapshot(sgd) != before:
            o.info["changed"], o.info["changed_what"] = True, "SGD's options"


@probe("optimizer: param_groups that is not a list", ITEM_LOADS, raises("param_groups"))
def _(o, tmp):
    _, sgd, _ = adam_and_sgd()
    sgd.load_state_dict({"type": "SGD", "state": {}, "param_groups": "all"})


@probe("optimizer: a step count that is negative", ITEM_LOADS, raises("step"))
def _(o, tmp):
    import tt_core
    import tt_learn

    model = small_model()
    adam = tt_learn.Adam(model.parameters(), lr=1e-3)
    model(tt_core.randn(2, 4)).sum().backward()
    adam.step()
    state = adam.state_dict()
    state["state"]["0"]["step"] = -3
    adam.load_state_dict(state)


@probe("scheduler: load_state_dict({})", ITEM_LOADS, raises("missing"))
def _(o, tmp):
    import tt_learn

    _, sgd, _ = adam_and_sgd()
    tt_learn.StepLR(sgd, step_size=2).load_state_dict({})


@probe("scheduler: a state dict of another schedule", ITEM_LOADS, raises("StepLR"))
def _(o, tmp):
    import tt_learn

    _, sgd, _ = adam_and_sgd()
    cosine = tt_learn.CosineAnnealingLR(sgd, T_max=10)
    tt_learn.StepLR(sgd, step_size=2).load_state_dict(cosine.state_dict())


def trainer_pair(tmp: Path, saved_optimizer: str = "Adam", scheduler: bool = True):
    """A checkpoint of a trainer with ``saved_optimizer``, and a fresh Adam trainer to resume it."""
    import tt_core
    import tt_learn

    def build(kind: str, seed: int):
        tt_core.manual_seed(seed)
        model = tt_core.Sequential(tt_core.Linear(4, 8), tt_core.ReLU(), tt_core.Linear(8, 3))
        opt = tt_learn.Adam(model.parameters(), lr=1e-3) if kind == "Adam" else tt_learn.SGD(model.parameters(), lr=0.1)
        sched = tt_learn.StepLR(opt, step_size=1) if scheduler else None
        return tt_learn.Trainer(model, opt, tt_learn.CrossEntropyLoss(), scheduler=sched, progress=False)

    saved = build(saved_optimizer, 0)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = np.arange(16) % 3
    saved.fit(tt_learn.batches(x, y, 8), epochs=1)
    path = saved.save_checkpoint(tmp / "trainer.npz")
    return path, build("Adam", 1)


@contextlib.contextmanager
def watch_trainer(o: Outcome, trainer):
    before = (snapshot(trainer.model), optimizer_snapshot(trainer.optimizer), trainer.epoch)
    try:
        yield
    finally:
        after = (snapshot(trainer.model), optimizer_snapshot(trainer.optimizer), trainer.epoch)
        changed = [name for name, a, b in zip(("weights", "optimizer", "epoch"), before, after)
                   if not (same(a, b) if isinstance(a, dict) else a == b)]
        if changed:
            o.info["changed"], o.info["changed_what"] = True, ", ".join(changed)


@probe("Trainer.resume: an SGD checkpoint into an Adam trainer", ITEM_LOADS, raises("optimizer", "SGD"))
def _(o, tmp):
    path, trainer = trainer_pair(tmp, saved_optimizer="SGD")
    with watch_trainer(o, trainer):
        trainer.resume(path)


@probe("Trainer.resume: a checkpoint whose model part is bad", ITEM_LOADS, raises("model", "0.weight"))
def _(o, tmp):
    import tt_core

    path, trainer = trainer_pair(tmp)
    state = tt_core.load(path)
    state["model"]["0.weight"] = np.zeros((8, 9), np.float32)
    tt_core.save(state, path)
    with watch_trainer(o, trainer):
        trainer.resume(path)


@probe("Trainer.resume: a checkpoint without its scheduler key", ITEM_LOADS, raises("scheduler"))
def _(o, tmp):
    import tt_core

    path, trainer = trainer_pair(tmp)
    state = tt_core.load(path)
    del state["scheduler"]
    tt_core.save(state, path)
    with watch_trainer(o, trainer):
        trainer.resume(path)


@probe("Trainer.resume: a plain model state dict", ITEM_LOADS, raises("not a Trainer checkpoint"))
def _(o, tmp):
    import tt_core

    _, trainer = trainer_pair(tmp)
    path = tt_core.save(trainer.model.state_dict(), tmp / "weights.npz")
    with watch_trainer(o, trainer):
        trainer.resume(path)


@probe("Trainer.resume: a good checkpoint continues", ITEM_LOADS,
       returns(lambda value, o: None if value == 1 else f"epoch {value} after resume, expected 1"))
def _(o, tmp):
    path, trainer = trainer_pair(tmp)
    return trainer.resume(path).epoch


@probe("Trainer.fit: an empty loader", ITEM_SILENT, raises("empty"))
def _(o, tmp):
    import tt_learn

    _, trainer = trainer_pair(tmp)
    trainer.fit(tt_learn.batches(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), 8), epochs=1)


@probe("Trainer.fit: a generator used up after the first epoch", ITEM_SILENT, raises("no samples"))
def _(o, tmp):
    import tt_core

    _, trainer = trainer_pair(tmp)
    x = np.ones((8, 4), np.float32)
    once = ((tt_core.Tensor(x[i:i + 4]), np.arange(i, i + 4) % 3) for i in (0, 4))
    trainer.fit(once, epochs=2)


# ===================================================================================================
# Tensors
# ===================================================================================================

ITEM_TENSOR = "tensors: bad input"


def T(*args, **kwargs):
    import tt_core

    return tt_core.Tensor(*args, **kwargs)


@probe("tensor: from strings", ITEM_TENSOR, raises("dtype"))
def _(o, tmp):
    return T(["a", "b"])


@probe("tensor: from a ragged list", ITEM_TENSOR, raises("ragged"))
def _(o, tmp):
    return T([[1.0, 2.0], [3.0]])


@probe("tensor: from complex numbers", ITEM_TENSOR, raises("complex"))
def _(o, tmp):
    return T(np.array([1 + 2j]))


@probe("tensor: from None", ITEM_TENSOR, raises("object"))
def _(o, tmp):
    return T(None)


@probe("tensor: dtype='nonsense'", ITEM_TENSOR, raises("nonsense"))
def _(o, tmp):
    return T([1.0], dtype="nonsense")


@probe("tensor: zeros(-1)", ITEM_TENSOR, raises("-1"))
def _(o, tmp):
    import tt_core

    return tt_core.zeros(-1)


@probe("tensor: zeros(2.5)", ITEM_TENSOR, raises("2.5"))
def _(o, tmp):
    import tt_core

    return tt_core.zeros(2.5)


@probe("tensor: adding shapes that do not broadcast", ITEM_TENSOR, raises("(2, 3)", "(4, 5)"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(2, 3) + tt_core.ones(4, 5)


@probe("tensor: matmul of (2, 3) by (2, 3)", ITEM_TENSOR, raises("(2, 3)"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(2, 3) @ tt_core.ones(2, 3)


@probe("tensor: reshape 6 values to 7", ITEM_TENSOR, raises("7"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(2, 3).reshape(7)


@probe("tensor: index 5 of a tensor of 3", ITEM_TENSOR, raises("5", types=(IndexError,)))
def _(o, tmp):
    import tt_core

    return tt_core.ones(3)[5]


@probe("tensor: index with a float tensor", ITEM_TENSOR, raises("float32"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(3)[tt_core.tensor([0.0, 1.0])]


@probe("tensor: index with a string", ITEM_TENSOR, raises("only integers", types=(IndexError,)))
def _(o, tmp):
    import tt_core

    return tt_core.ones(3)["a"]


@probe("tensor: sum over axis 5 of a 2-D tensor", ITEM_TENSOR, raises("5"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(2, 3).sum(axis=5)


@probe("tensor: softmax over axis 3 of a 2-D tensor", ITEM_TENSOR, raises("3"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(2, 3).softmax(axis=3)


@probe("tensor: item() of 3 values", ITEM_TENSOR, raises("one element"))
def _(o, tmp):
    import tt_core

    return tt_core.ones(3).item()


@probe("tensor: concatenate([])", ITEM_TENSOR, raises("at least one"))
def _(o, tmp):
    import tt_core

    return tt_core.concatenate([])


@probe("tensor: stack of (2,) and (3,)", ITEM_TENSOR, raises("(2,)", "(3,)"))
def _(o, tmp):
    import tt_core

    return tt_core.stack([tt_core.ones(2), tt_core.ones(3)])


@probe("backward: of a non-scalar without a gradient", ITEM_TENSOR, raises("one element", "(3,)"))
def _(o, tmp):
    import tt_core
    import tt_learn  # noqa: F401  (the engine)

    x = tt_core.ones(3, requires_grad=True)
    (x * 2).backward()


@probe("backward: twice through a freed graph", ITEM_TENSOR, raises("retain_graph"))
def _(o, tmp):
    import tt_core
    import tt_learn  # noqa: F401

    x = tt_core.ones(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


@probe("backward: of a tensor that needs no gradient", ITEM_TENSOR, raises("requires_grad"))
def _(o, tmp):
    import tt_core
    import tt_learn  # noqa: F401

    tt_core.ones(3).sum().backward()


@probe("backward: with a gradient of the wrong shape", ITEM_TENSOR, raises("(2,)"))
def _(o, tmp):
    import tt_core
    import tt_learn  # noqa: F401

    x = tt_core.ones(3, requires_grad=True)
    (x * 2).backward(np.ones(2, np.float32))


@probe("tensor: requires_grad on an integer tensor", ITEM_TENSOR, raises("floating"))
def _(o, tmp):
    import tt_core

    return tt_core.Tensor(np.arange(3), requires_grad=True)


@probe("layer: Linear(4, 3) on an input of 5 features", ITEM_TENSOR, raises("5", "4"))
def _(o, tmp):
    import tt_core

    return tt_core.Linear(4, 3)(tt_core.ones(2, 5))


@probe("layer: Linear(2.5, 3)", ITEM_TENSOR, raises("2.5"))
def _(o, tmp):
    import tt_core

    return tt_core.Linear(2.5, 3)


@probe("layer: Dropout(p=1.5)", ITEM_TENSOR, raises("1.5"))
def _(o, tmp):
    import tt_core

    return tt_core.Dropout(1.5)


# ===================================================================================================
# Data
# ===================================================================================================

ITEM_DATA = "data: bad input"


@probe("data: MNIST missing, offline, require()", ITEM_UPFRONT,
       raises("train-images", "train-labels", "t10k-images", "t10k-labels"))
def _(o, tmp):
    import tt_data

    (tmp / "data").mkdir()
    with environ(TT_DATA_DIR=str(tmp / "data"), TT_CACHE_DIR=str(tmp / "cache")):
        tt_data.require("mnist", progress=False)


@probe("data: a flipped byte in a copy of MNIST's test images", ITEM_SHA, raises("t10k-images-idx3-ubyte.gz"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[2:], flip={MNIST_FILES[2]: 800_000})
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        return tt_data.dataset("mnist", "test", download=False, progress=False)


@probe("data: a flipped byte in a copy of MNIST's test labels", ITEM_SHA, raises("t10k-labels-idx1-ubyte.gz"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[2:], flip={MNIST_FILES[3]: 2000})
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        return tt_data.dataset("mnist", "test", download=False, progress=False)


@probe("data: a truncated copy of an MNIST file", ITEM_SHA, raises("t10k-images-idx3-ubyte.gz"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[2:])
    path = data / MNIST_FILES[2]
    path.write_bytes(path.read_bytes()[:100_000])
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        return tt_data.dataset("mnist", "test", download=False, progress=False)


@probe("data: an MNIST copy changed after it was verified", ITEM_SHA, raises("t10k-images-idx3-ubyte.gz"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[2:])
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        tt_data.dataset("mnist", "test", download=False, progress=False)
        path = data / MNIST_FILES[2]
        raw = bytearray(path.read_bytes())
        raw[900_000] ^= 0xFF
        path.write_bytes(bytes(raw))
        return tt_data.dataset("mnist", "test", download=False, progress=False)


@probe("data: a changed byte in a gzip header's timestamp (content intact)", ITEM_SHA,
       returns(lambda value, o: None if len(value) == 10_000 else f"{len(value)} samples"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[2:], flip={MNIST_FILES[3]: 5})
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        return tt_data.dataset("mnist", "test", download=False, progress=False)


@probe("data: one MNIST file corrupt and one missing: both named", ITEM_UPFRONT,
       raises("t10k-images", "t10k-labels"))
def _(o, tmp):
    import tt_data

    data = data_copy(tmp, MNIST_FILES[:3], flip={MNIST_FILES[2]: 700_000})
    with environ(TT_DATA_DIR=str(data), TT_CACHE_DIR=str(tmp / "cache")):
        tt_data.require("mnist", download=False, progress=False)


def fake_cifar_cache(cache: Path, truncate: bool = False, garble: bool = False, stale: bool = False) -> Path:
    """A decoded CIFAR-10 cache of 20 + 10 images, as the loader writes it, optionally broken."""
    from tt_data import datasets

    folder = cache / "cifar10" / "decoded-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = {}
    for split, count in (("train", 20), ("test", 10)):
        images = rng.integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.int64)
        for name, array in zip(datasets.DECODED_FILES[split], (images, labels)):
            np.save(folder / name, array, allow_pickle=False)
            entries[name] = {"shape": list(array.shape), "dtype": str(array.dtype), "bytes": (folder / name).stat().st_size}
    source = datasets.CIFAR10_SOURCES["python"][0]
    manifest = {"format": datasets.DECODED_FORMAT, "source": source.relative,
                "source_sha256": "0" * 64 if stale else source.sha256, "arrays": entries}
    (folder / datasets.MANIFEST).write_text(json.dumps(manifest))
    target = folder / "train-images.npy"
    if truncate:
        target.write_bytes(target.read_bytes()[:5000])
    if garble:
        raw = bytearray(target.read_bytes())
        raw[:10] = b"garbage!!!"
        target.write_bytes(bytes(raw))
    return folder


def _cifar_train(tmp: Path, **broken):
    import tt_data

    (tmp / "data").mkdir()
    fake_cifar_cache(tmp / "cache", **broken)
    with environ(TT_DATA_DIR=str(tmp / "data"), TT_CACHE_DIR=str(tmp / "cache")):
        return tt_data.load_arrays("cifar10", "train", download=False, progress=False)


@probe("data: an intact decoded CIFAR-10 cache is used", ITEM_DERIVED,
       returns(lambda value, o: None if value[0].shape == (20, 3, 32, 32) else f"shape {value[0].shape}"))
def _(o, tmp):
    return _cifar_train(tmp)


@probe("data: a truncated decoded CIFAR-10 cache (archive gone, offline)", ITEM_DERIVED, raises("cifar"))
def _(o, tmp):
    return _cifar_train(tmp, truncate=True)


@probe("data: a garbled decoded CIFAR-10 cache of the right size", ITEM_DERIVED, raises("cifar"))
def _(o, tmp):
    return _cifar_train(tmp, garble=True)


@probe("data: a decoded CIFAR-10 cache of another archive", ITEM_DERIVED, raises("cifar"))
def _(o, tmp):
    return _cifar_train(tmp, stale=True)


def remote(name="x.txt", folder="probe", urls=("file:///nonexistent",), sha256="0" * 64, **kw):
    from tt_data import RemoteFile

    return RemoteFile(name, folder, urls=urls, sha256=sha256, **kw)


@probe("data: RemoteFile('../../x')", ITEM_SECURITY, raises("../../x"))
def _(o, tmp):
    return remote(name="../../x")


@probe("data: RemoteFile with folder '../..'", ITEM_SECURITY, raises("../.."))
def _(o, tmp):
    return remote(folder="../..")


@probe("data: RemoteFile with an absolute name", ITEM_SECURITY, raises("/etc/passwd"))
def _(o, tmp):
    return remote(name="/etc/passwd")


@probe("data: RemoteFile with urls as one string", ITEM_DATA, raises("urls"))
def _(o, tmp):
    return remote(urls="https://example.org/x.txt")


@probe("data: RemoteFile with a short sha256", ITEM_DATA, raises("sha256"))
def _(o, tmp):
    return remote(sha256="abc")


def _served_file(tmp: Path, content: bytes = b"hello probes\n") -> tuple[str, str]:
    source = tmp / "served.txt"
    source.write_bytes(content)
    return source.as_uri(), hashlib.sha256(content).hexdigest()


@probe("data: fetch with a malformed first URL falls through to the next", ITEM_SILENT,
       returns(lambda value, o: None if value.read_bytes() == b"hello probes\n" else "wrong content"))
def _(o, tmp):
    import tt_data

    url, digest = _served_file(tmp)
    with environ(TT_CACHE_DIR=str(tmp / "cache"), TT_DATA_DIR=str(tmp / "data")):
        return tt_data.fetch(remote(urls=("htps:/broken url", "http://[::1", url), sha256=digest), progress=False)


@probe("data: fetch of a file whose sha256 differs", ITEM_SHA, raises("x.txt", "sha256"))
def _(o, tmp):
    import tt_data

    url, _ = _served_file(tmp)
    with environ(TT_CACHE_DIR=str(tmp / "cache"), TT_DATA_DIR=str(tmp / "data")):
        return tt_data.fetch(remote(urls=(url,), sha256="1" * 64), progress=False)


@probe("data: fetch with retries=0", ITEM_DATA, raises("retries"))
def _(o, tmp):
    import tt_data

    return tt_data.fetch(remote(), retries=0)


def _tar_with(tmp: Path, member: tarfile.TarInfo, content: bytes = b"") -> Path:
    path = tmp / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(content) if content else None)
    return path


def _outside_untouched(o):
    if (o.info["outside"]).exists():
        return SILENT, f"wrote {o.info['outside']}"
    return None


@probe("data: extract a tar whose member climbs out ('../')", ITEM_SECURITY,
       raises("evil.txt", check=_outside_untouched))
def _(o, tmp):
    import tt_data

    o.info["outside"] = tmp / "evil.txt"
    member = tarfile.TarInfo("../evil.txt")
    member.size = 4
    archive = _tar_with(tmp, member, b"evil")
    return tt_data.extract(archive, tmp / "target")


@probe("data: extract a tar with a link pointing outside", ITEM_SECURITY,
       raises("link", check=_outside_untouched))
def _(o, tmp):
    import tt_data

    o.info["outside"] = tmp / "target" / "passwd"
    member = tarfile.TarInfo("passwd")
    member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = _tar_with(tmp, member)
    result = tt_data.extract(archive, tmp / "target")
    o.info["outside"] = tmp / "target" / "passwd"
    return result


@probe("data: the CIFAR unpickler refuses a pickle that runs code", ITEM_SECURITY, raises("os"))
def _(o, tmp):
    from tt_data import datasets

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned > /dev/null",))

    return datasets.load_batch(pickle.dumps(Evil()))


def tiny_dataset():
    import tt_data

    return tt_data.TensorDataset(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10))


@probe("data: DataLoader(ds, True)", ITEM_SILENT, raises("batch_size", "True"))
def _(o, tmp):
    import tt_data

    return tt_data.DataLoader(tiny_dataset(), True)


@probe("data: DataLoader(ds, 0)", ITEM_DATA, raises("batch_size"))
def _(o, tmp):
    import tt_data

    return tt_data.DataLoader(tiny_dataset(), 0)


@probe("data: DataLoader(ds, 2.5)", ITEM_DATA, raises("2.5"))
def _(o, tmp):
    import tt_data

    return tt_data.DataLoader(tiny_dataset(), 2.5)


@probe("data: DataLoader(ds, 4, shuffle='yes')", ITEM_DATA, raises("shuffle"))
def _(o, tmp):
    import tt_data

    return tt_data.DataLoader(tiny_dataset(), 4, shuffle="yes")


@probe("data: a DataLoader epoch covers every sample once", ITEM_DATA,
       returns(lambda value, o: None if value == list(range(10)) else f"saw {value}"))
def _(o, tmp):
    import tt_data

    loader = tt_data.DataLoader(tiny_dataset(), 3, shuffle=True, seed=4)
    return sorted(int(v) for _, y in loader for v in y.data)


@probe("data: TensorDataset of 10 images and 9 labels", ITEM_DATA, raises("10", "9"))
def _(o, tmp):
    import tt_data

    return tt_data.TensorDataset(np.zeros((10, 2)), np.arange(9))


@probe("data: an unknown data set name", ITEM_DATA, raises("mnistt", "mnist"))
def _(o, tmp):
    import tt_data

    return tt_data.dataset("mnistt")


@probe("data: an unknown split of MNIST", ITEM_DATA, raises("validation"))
def _(o, tmp):
    import tt_data

    return tt_data.dataset("mnist", "validation", download=False, progress=False)


@probe("data: an unknown split of TinyDigits", ITEM_DATA, raises("valid"))
def _(o, tmp):
    import tt_data

    return tt_data.dataset("tinydigits", "valid")


@probe("data: an unknown split of Tiny Shakespeare", ITEM_DATA, raises("test"))
def _(o, tmp):
    from tt_language import corpora

    return corpora.tinyshakespeare("test")


@probe("data: an unknown split of TinyTalks", ITEM_DATA, raises("validation"))
def _(o, tmp):
    from tt_language import corpora

    return corpora.tinytalks("validation")


@probe("data: require() with no names", ITEM_DATA, raises("names"))
def _(o, tmp):
    import tt_data

    return tt_data.require()


# ===================================================================================================
# Language
# ===================================================================================================

ITEM_LANG = "language: bad input"


def tiny_gpt():
    import tt_core
    from tt_language import GPT

    tt_core.manual_seed(0)
    return GPT(vocab_size=12, block_size=16, num_layers=1, num_heads=2, embed_dim=16)


def _generate(prompt=(1, 2, 3), n=4, **options):
    from tt_language import generate

    return generate(tiny_gpt(), np.asarray(prompt) if not isinstance(prompt, np.ndarray) else prompt, n, **options)


@probe("generate: temperature NaN", ITEM_SILENT, raises("temperature", "nan"))
def _(o, tmp):
    return _generate(temperature=float("nan"))


@probe("generate: float token ids 1.5", ITEM_SILENT, raises("1.5"))
def _(o, tmp):
    return _generate(prompt=np.array([1.5, 2.0]))


@probe("generate: top_k=2.5", ITEM_SILENT, raises("top_k", "2.5"))
def _(o, tmp):
    return _generate(top_k=2.5)


@probe("generate: top_k=0", ITEM_LANG, raises("top_k"))
def _(o, tmp):
    return _generate(top_k=0)


@probe("generate: top_p=1.5", ITEM_LANG, raises("top_p", "1.5"))
def _(o, tmp):
    return _generate(top_p=1.5)


@probe("generate: a prompt id beyond the vocabulary", ITEM_LANG, raises("12"))
def _(o, tmp):
    return _generate(prompt=(1, 40))


@probe("generate: an empty prompt", ITEM_LANG, raises("at least one"))
def _(o, tmp):
    return _generate(prompt=np.zeros(0, np.int64))


@probe("generate: max_new_tokens=-1", ITEM_LANG, raises("max_new_tokens"))
def _(o, tmp):
    return _generate(n=-1)


@probe("generate: a prompt longer than the context slides the window", ITEM_LANG,
       returns(lambda value, o: None if value.shape == (24,) else f"shape {value.shape}"))
def _(o, tmp):
    return _generate(prompt=np.arange(20) % 12, n=4, temperature=0)


@probe("GPT: a prompt longer than block_size", ITEM_LANG, raises("16"))
def _(o, tmp):
    return tiny_gpt()(np.zeros((1, 20), np.int64))


@probe("GPT: embed_dim 15 with 2 heads", ITEM_LANG, raises("15"))
def _(o, tmp):
    from tt_language import GPT

    return GPT(vocab_size=10, block_size=8, num_layers=1, num_heads=2, embed_dim=15)


@probe("Embedding: float ids", ITEM_LANG, raises("int"))
def _(o, tmp):
    from tt_language import Embedding

    return Embedding(10, 4)(np.array([[0.5, 1.0]]))


@probe("BPETokenizer.train(vocab_size=300.5)", ITEM_SILENT, raises("vocab_size", "300.5"))
def _(o, tmp):
    from tt_language import BPETokenizer

    return BPETokenizer.train("low lower lowest " * 20, vocab_size=300.5)


@probe("BPETokenizer.train(vocab_size=100)", ITEM_LANG, raises("vocab_size", "256"))
def _(o, tmp):
    from tt_language import BPETokenizer

    return BPETokenizer.train("low lower lowest " * 20, vocab_size=100)


@probe("CharTokenizer(['ab'])", ITEM_SILENT, raises("'ab'"))
def _(o, tmp):
    from tt_language import CharTokenizer

    return CharTokenizer(["ab"])


@probe("CharTokenizer('')", ITEM_LANG, raises("at least one"))
def _(o, tmp):
    from tt_language import CharTokenizer

    return CharTokenizer("")


@probe("CharTokenizer: encoding a character it does not know", ITEM_LANG, raises("'z'"))
def _(o, tmp):
    from tt_language import CharTokenizer

    return CharTokenizer("abc").encode("abz")


@probe("CharTokenizer: decoding an id beyond the vocabulary", ITEM_LANG, raises("7"))
def _(o, tmp):
    from tt_language import CharTokenizer

    return CharTokenizer("abc").decode([0, 7])


@probe("Tokenizer.load of a file that is not a tokenizer", ITEM_LANG, raises("tok.json"))
def _(o, tmp):
    from tt_language import Tokenizer

    (tmp / "tok.json").write_text("[1, 2, 3]")
    return Tokenizer.load(tmp / "tok.json")


@probe("Tokenizer.load of a char spec with a bad alphabet", ITEM_LANG, raises("chars"))
def _(o, tmp):
    from tt_language import Tokenizer

    (tmp / "tok.json").write_text(json.dumps({"type": "char", "chars": 42, "special_tokens": []}))
    return Tokenizer.load(tmp / "tok.json")


# ===================================================================================================
# Perf
# ===================================================================================================

ITEM_PERF = "perf: bad input"


def perf_model():
    import tt_core

    tt_core.manual_seed(0)
    return tt_core.Sequential(tt_core.Linear(16, 32), tt_core.ReLU(), tt_core.Linear(32, 4))


def _quantize(calibration, **kw):
    from tt_perf import quantize_int8

    return quantize_int8(perf_model(), calibration, **kw)


@probe("quantize_int8: calibration of all zeros", ITEM_SILENT, raises("0"))
def _(o, tmp):
    return _quantize(np.zeros((64, 16), np.float32))


@probe("quantize_int8: calibration holding inf", ITEM_SILENT, raises("inf"))
def _(o, tmp):
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    x[3, 4] = np.inf
    return _quantize(x)


@probe("quantize_int8: empty calibration", ITEM_SILENT, raises("empty"))
def _(o, tmp):
    return _quantize(np.zeros((0, 16), np.float32))


@probe("quantize_int8: calibration None", ITEM_SILENT, raises("calibration"))
def _(o, tmp):
    return _quantize(None)


@probe("quantize_int8: an empty list of batches", ITEM_SILENT, raises("no batches"))
def _(o, tmp):
    return _quantize([])


@probe("quantize_int8: calibration of the wrong width", ITEM_PERF, raises("16"))
def _(o, tmp):
    return _quantize(np.ones((8, 5), np.float32))


@probe("quantize_int8: mode='int4'", ITEM_PERF, raises("mode", "int4"))
def _(o, tmp):
    return _quantize(np.ones((8, 16), np.float32), mode="int4")


@probe("quantize_int8: a layer that sees only zeros (a ReLU that never fires)", ITEM_PERF,
       warns("'2'", "only zeros", category=Warning))
def _(o, tmp):
    model = perf_model()
    model[0].bias.data[:] = -100.0  # every hidden unit is negative: the ReLU outputs zeros
    from tt_perf import quantize_int8

    return quantize_int8(model, np.random.default_rng(0).normal(size=(32, 16)).astype(np.float32))


@probe("quantize_int8: inplace=True with bad calibration leaves the model", ITEM_LOADS,
       raises("inf", check=lambda o: (HALF, "layers replaced although refused") if o.info.get("replaced") else None))
def _(o, tmp):
    from tt_perf import quantize_int8

    model = perf_model()
    try:
        quantize_int8(model, np.full((4, 16), np.inf, np.float32), inplace=True)
    finally:
        o.info["replaced"] = type(model[0]).__name__ != "Linear"


@probe("quantize_int8: good calibration agrees with the float model", ITEM_PERF,
       returns(lambda value, o: None if value >= 0.9 else f"agreement {value:.2f}"))
def _(o, tmp):
    import tt_core

    model = perf_model()
    x = np.random.default_rng(1).normal(size=(256, 16)).astype(np.float32)
    from tt_perf import quantize_int8

    q = quantize_int8(model, x[:128])
    previous = tt_core.set_grad_enabled(False)
    try:
        agree = (model(tt_core.Tensor(x[128:])).data.argmax(1) == q(tt_core.Tensor(x[128:])).data.argmax(1)).mean()
    finally:
        tt_core.set_grad_enabled(previous)
    return float(agree)


@probe("profile: clock='gpu'", ITEM_SILENT, raises("gpu"))
def _(o, tmp):
    import tt_core
    from tt_perf import profile

    return profile(perf_model(), tt_core.randn(4, 16), warmup=0, repeats=1, clock="gpu")


@probe("profile: a string as the input", ITEM_SILENT, raises("text"))
def _(o, tmp):
    from tt_perf import profile

    return profile(perf_model(), "hello", warmup=0, repeats=1)


@probe("profile: repeats=0", ITEM_PERF, raises("repeats"))
def _(o, tmp):
    import tt_core
    from tt_perf import profile

    return profile(perf_model(), tt_core.randn(4, 16), warmup=0, repeats=0)


@probe("profile: something that is not a Module", ITEM_PERF, raises("Module"))
def _(o, tmp):
    import tt_core
    from tt_perf import profile

    return profile(lambda x: x, tt_core.randn(4, 16), warmup=0, repeats=1)


@probe("prune: amount 1.5", ITEM_PERF, raises("1.5"))
def _(o, tmp):
    from tt_perf import prune

    return prune(perf_model(), 1.5)


# ===================================================================================================
# Running
# ===================================================================================================


def run_probe(p: Probe) -> tuple[str, str, float]:
    tmp = ENV.fresh()
    o = Outcome()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            o.value = p.action(o, tmp)
        except Exception as error:  # noqa: BLE001 - whatever the action raised is what the classifier judges
            o.error = error
            o.info["traceback"] = traceback.format_exc()
    o.warnings = list(caught)
    seconds = time.perf_counter() - start
    try:
        cls, note = p.classify(o)
    except Exception as error:  # noqa: BLE001 - a classifier that breaks on an outcome counts against it
        cls, note = RAW, f"the classifier failed: {type(error).__name__}: {error}"
    return cls, note, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", metavar="TEXT", help="run only probes whose name or item contains TEXT")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every probe's note in full")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("TT_DATA_DIR") or "/work/shared/data")
    if not (data / "mnist").is_dir():
        print(f"probes: no data folder at {data} (set TT_DATA_DIR to the prepared data sets)", file=sys.stderr)
        return 2
    selected = [p for p in PROBES if not args.k or args.k.lower() in (p.name + " " + p.item).lower()]
    if not selected:
        print(f"probes: no probe's name or item contains {args.k!r}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="tt-probes-"))
    global ENV
    ENV = Env(root, data)
    ENV.apply()
    counts = dict.fromkeys(CLASSES, 0)
    rows = []
    started = time.perf_counter()
    try:
        for number, p in enumerate(selected, 1):
            cls, note, seconds = run_probe(p)
            counts[cls] += 1
            rows.append((p, cls, note, seconds))
            mark = " " if cls in GOOD else "!"
            text = note if args.verbose else short(note, 100)
            print(f"{mark} {number:>3} {cls:<11} {seconds:5.1f}s  {p.name}  [{p.item}]\n{'':>24}{text}", flush=True)
    finally:
        if args.keep:
            print(f"temporary folder kept: {root}")
        else:
            for path in sorted(root.rglob("*"), reverse=True):  # undo chmod of read-only probe folders
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        path.chmod(0o755)
            shutil.rmtree(root, ignore_errors=True)
    print()
    by_item: dict[str, dict[str, int]] = {}
    for p, cls, _, _ in rows:
        by_item.setdefault(p.item, dict.fromkeys(CLASSES, 0))[cls] += 1
    width = max(len(item) for item in by_item) if by_item else 10
    print(f"{'item':<{width}}  " + "  ".join(f"{c:>11}" for c in CLASSES))
    for item, item_counts in by_item.items():
        print(f"{item:<{width}}  " + "  ".join(f"{item_counts[c]:>11}" for c in CLASSES))
    print(f"{'total':<{width}}  " + "  ".join(f"{counts[c]:>11}" for c in CLASSES))
    bad = sum(counts[c] for c in CLASSES if c not in GOOD)
    print(f"\n{len(rows)} probes in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{counts[c]} {c}" for c in CLASSES)
          + (f"; {bad} in a bad class" if bad else "; none in a bad class"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

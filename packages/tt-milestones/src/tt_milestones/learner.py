"""The learner's commands: ``check`` grades components against the built-in ones, ``status``
shows how much of each milestone runs on the learner's own code.

``check`` grades with the checkers of :mod:`tt_core.grading` on inputs drawn from a fresh seed
each run (printed; ``--seed N`` reproduces a run) and keeps every result in one JSON file, the
*state file*, in the user data directory (``platformdirs.user_data_dir("tinytorch")``, or the
folder named by ``TT_STATE_DIR``). Results are kept per distribution together with its version
and a fingerprint of its installed files (:func:`dist_identity`), so ``status`` calls them
stale as soon as the package is upgraded or one of its files changes.

Exit codes of ``check``: 0 when every implemented component passed (a component that is not
implemented, or has no built-in counterpart to compare with, does not fail it), 1 when any
failed, errored or its package failed to load, 2 for a usage error (an unknown component or
distribution, nothing to check).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib.util
import json
import os
import secrets
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from tt_core.dispatch import bind
from tt_core.grading import ERROR, FAILED, NO_REFERENCE, NOT_IMPLEMENTED, PASSED, SKIPPED, Case, Grade, grade
from tt_core.plugins import ENTRY_POINT_GROUP, Component, ComponentRegistry, PluginInfo, choose, normalize_dist

from .api import MilestoneSpec
from .cli import (
    ACTS,
    EXIT_MISSED,
    EXIT_REACHED,
    UsageError,
    add_use_option,
    check_use,
    non_negative_int,
    provider_label,
    unlock_steps,
    unlock_text,
)
from .files import write_atomic
from .registry import Catalogue

STATE_ENV = "TT_STATE_DIR"
STATE_FILE = "checks.json"
STATE_FORMAT = 1
SEED_RANGE = 100_000
META_KINDS = frozenset({"checker", "example", "kind"})  # they describe components, are not graded as one

NOT_CHECKED, STALE = "not checked", "stale"  # what ``status`` says beside a grade's own statuses
SUMMARY_ORDER = (PASSED, NO_REFERENCE, FAILED, ERROR, NOT_IMPLEMENTED)
STYLES = {PASSED: "green", NO_REFERENCE: "cyan", FAILED: "red", ERROR: "red", NOT_IMPLEMENTED: "yellow",
          STALE: "yellow", NOT_CHECKED: "dim"}


# -- the command line -------------------------------------------------------------------


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``check`` and ``status`` to the ``tt-milestones`` sub-command parser."""
    check = commands.add_parser(
        "check", help="grade your components against the built-in ones, on fresh random inputs"
    )
    check.add_argument(
        "targets", nargs="*", metavar="DIST | KIND:NAME",
        help="a distribution (every component it provides) or one component such as layer:Linear "
        "(its provider in use); default: every installed package that is not part of TinyTorch",
    )
    check.add_argument("--seed", type=non_negative_int, help="the seed of the inputs (default: a fresh one, printed)")
    add_use_option(check)
    check.add_argument("--json", action="store_true", help="print the grades as JSON")
    check.set_defaults(handler=cmd_check)

    status = commands.add_parser(
        "status", help="per Act and per milestone: whose code runs, and the last check of yours"
    )
    add_use_option(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)


def apply_use(use: list[str], catalogue: Catalogue) -> None:
    """``--use DIST``: use every component the distributions implement, as ``run`` does.

    Raises:
        UsageError: a name that is no installed plugin that loaded.
    """
    chosen = check_use(use, catalogue)
    if chosen:
        choose(use=chosen)


# -- check ------------------------------------------------------------------------------


def draw_seed() -> int:
    """A fresh seed for one ``check`` run, from the operating system's randomness."""
    return secrets.randbelow(SEED_RANGE)


def learner_dists(registry: ComponentRegistry, plugins: Iterable[PluginInfo] = ()) -> list[str]:
    """Every distribution not part of TinyTorch that provides components or is a plugin (one
    that failed to load included), sorted."""
    dists = {c.dist for c in registry} | {info.dist for info in plugins}
    return sorted(d for d in dists if not registry.is_builtin(d))


def find_component(registry: ComponentRegistry, key: str) -> Component:
    """The provider in use of component ``"kind:name"``.

    Raises:
        UsageError: ``key`` is not ``kind:name``, or no installed package provides it (the
            message lists the closest names).
    """
    kind, _, name = (part.strip() for part in key.partition(":"))
    if not (kind and name):
        raise UsageError(f"{key!r} is not KIND:NAME (for example layer:Linear) nor a distribution name")
    if not registry.has(kind, name):
        if registry.names(kind):  # a known kind: the closest names of that kind
            close = [f"{kind}:{n}" for n in difflib.get_close_matches(name, registry.names(kind), n=3, cutoff=0.6)]
        else:
            known = sorted({f"{c.kind}:{c.name}" for c in registry})
            close = difflib.get_close_matches(f"{kind}:{name}", known, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"no installed package provides {kind}:{name}{hint} (`tt-milestones plugins` lists what is installed)"
        )
    return registry.chosen(kind, name)


def dist_components(registry: ComponentRegistry, dist: str, plugins: Iterable[PluginInfo] = ()) -> list[Component]:
    """The gradable components distribution ``dist`` provides, by kind and name.

    A distribution whose plugin failed to load has none, and is not an error here (``check``
    reports its load error).

    Raises:
        UsageError: no installed distribution of that name registered anything.
    """
    wanted = normalize_dist(dist)
    found = [c for c in registry.from_dist(wanted) if c.kind not in META_KINDS]
    known = {c.dist for c in registry} | {info.dist for info in plugins}
    if found or wanted in known:
        return found
    close = difflib.get_close_matches(wanted, sorted(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(
        f"no installed distribution {dist!r} provides components{hint} "
        f"(installed: {', '.join(sorted(known)) or 'none'}; a component is named KIND:NAME, e.g. layer:Linear)"
    )


def select_components(
    registry: ComponentRegistry, targets: list[str], plugins: Iterable[PluginInfo] = ()
) -> tuple[list[Component], list[str]]:
    """What ``check TARGETS`` grades, each component once, and notes for the learner.

    Args:
        registry: the loaded components.
        targets: distribution names and ``kind:name`` components; empty means every
            distribution that is not part of TinyTorch.
        plugins: the loaded plugins (so a distribution that failed to load is known).

    Returns:
        ``(components, notes)``: the components in the order asked, and a note for each
        ``kind:name`` whose provider in use is built-in while another package provides it too.

    Raises:
        UsageError: nothing to check, or a target names nothing installed.
    """
    plugins = list(plugins)
    if not targets:
        targets = learner_dists(registry, plugins)
        if not targets:
            raise UsageError(
                "nothing to check: every installed package is part of TinyTorch. Write your own with "
                "`tt-milestones new DIR --act core`, install it (pip install -e DIR), or name a component: "
                "`tt-milestones check layer:Linear`"
            )
    components: dict[tuple[str, str, str], Component] = {}
    notes: list[str] = []
    for target in targets:
        if ":" in target:
            component = find_component(registry, target)
            notes.extend(_other_providers_note(registry, component))
            found = [component]
        else:
            found = dist_components(registry, target, plugins)
        for component in found:
            components.setdefault((component.dist, component.kind, component.name), component)
    return list(components.values()), notes


def _other_providers_note(registry: ComponentRegistry, component: Component) -> list[str]:
    """A note when ``kind:name`` is graded in its built-in provider while a learner's package
    provides it too: how to grade that one, or that it is still a stub."""
    others = [c for c in registry.providers(component.kind, component.name) if not registry.is_builtin(c.dist)]
    if not (registry.is_builtin(component.dist) and others):
        return []
    key = f"{component.kind}:{component.name}"
    ready = [c.dist for c in others if c.implemented]
    if ready:
        return [(f"{key}: grading the built-in provider {component.dist}, the one in use; {', '.join(ready)} "
                 f"provides it too: add --use {ready[0]} to grade that one")]
    return [(f"{key}: grading the built-in provider {component.dist}; {', '.join(c.dist for c in others)}'s "
             "is not implemented yet")]


def grade_components(components: Iterable[Component], registry: ComponentRegistry, seed: int) -> list[Grade]:
    """Grade each component with :func:`tt_core.grading.grade`, all on inputs from ``seed``.

    A checker that raises is reported by ``grade`` as an ERROR grade; should ``grade`` itself
    fail, the component gets an ERROR grade with the exception's message, so one broken
    component never stops the others. NumPy's warnings (overflow, invalid values) are silenced
    while grading: the checks report what they lead to.
    """
    grades = []
    for component in components:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                result = grade(component, registry, seed)
            except Exception as error:  # noqa: BLE001 - the grading itself broke: report it, go on
                case = Case("grading", ERROR, f"grading raised {type(error).__name__}: {error}")
                result = Grade(component.kind, component.name, component.dist, component.version, ERROR,
                               [case], None, None)
        grades.append(result)
    return grades


def summary(grades: Iterable[Grade]) -> str:
    """``"7 passed, 1 failed, 2 not implemented"``: how many grades of each status."""
    counts: dict[str, int] = {}
    for item in grades:
        counts[item.status] = counts.get(item.status, 0) + 1
    order = list(SUMMARY_ORDER) + sorted(set(counts) - set(SUMMARY_ORDER))
    return ", ".join(f"{counts[status]} {status}" for status in order if counts.get(status)) or "nothing checked"


def check_exit_code(grades: Iterable[Grade], broken: list[PluginInfo] = ()) -> int:
    """0 when nothing failed or errored and no package had load problems; else 1."""
    failed = bool(broken) or any(g.status in (FAILED, ERROR) for g in grades)
    return EXIT_MISSED if failed else EXIT_REACHED


def broken_plugins(plugins: Iterable[PluginInfo], registry: ComponentRegistry, targets: list[str]) -> list[PluginInfo]:
    """The non-TinyTorch plugins with load problems (an import or hook error: nothing of it
    is used; an op that cannot be paired with a rule: the built-in op is used) that ``check
    TARGETS`` is about: all of them with no targets, else those named."""
    named = {normalize_dist(t) for t in targets if ":" not in t}
    return [
        info for info in plugins
        if info.problems and not registry.is_builtin(info.dist) and (not targets or info.dist in named)
    ]


def cmd_check(args: argparse.Namespace, catalogue: Catalogue) -> int:
    registry = catalogue.registry
    apply_use(args.use, catalogue)
    components, notes = select_components(registry, args.targets, catalogue.plugins)
    broken = broken_plugins(catalogue.plugins, registry, args.targets)
    seed = draw_seed() if args.seed is None else args.seed
    if not args.json:  # before grading, so a run cut short can still be repeated
        print_check_header(seed, notes, broken)
    grades = grade_components(components, registry, seed)
    try:
        record_grades(grades, seed)
    except OSError as error:  # the results are a convenience: never fail the check over them
        print(f"tt-milestones: warning: could not save the results in {state_path()}: {error}", file=sys.stderr)
    code = check_exit_code(grades, broken)
    if args.json:
        report = {
            "seed": seed,
            "grades": [g.to_dict() for g in grades],
            "summary": summary(grades),
            "load_errors": {info.dist: info.problems for info in broken},
            "exit_code": code,
        }
        print(json.dumps(report, indent=2, default=str))
    else:
        print_check(grades, broken)
    return code


def _styled(status: str):
    from rich.text import Text

    return Text(status, style=STYLES.get(status, ""))


def _speed(ratio: float | None) -> str:
    """``"1.25x"``: your time over the reference's; ``"-"`` when it was not measured."""
    return "-" if ratio is None else f"{ratio:.2f}x"


def _console():
    from rich.console import Console

    return Console(highlight=False)


def print_check_header(seed: int, notes: list[str] = (), broken: list[PluginInfo] = ()) -> None:
    """The seed (and how to repeat the run), the notes on what is graded, and the load
    problems of the packages checked."""
    from rich.text import Text

    console = _console()
    console.print(f"seed {seed}; --seed {seed} reproduces")
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    for info in broken:
        what = "failed to load, so none of it is used" if info.error else "has components that cannot be used"
        console.print(Text(f"{info.dist} {info.version} {what}:", style="bold red"))
        console.print(Text(_indent(info.problems or "", "    ")), soft_wrap=True)


def print_check(grades: list[Grade], broken: list[PluginInfo] = ()) -> None:
    """A table of the grades, each failed case's diagnosis under its component, and a
    closing summary line."""
    from rich.table import Table
    from rich.text import Text

    console = _console()
    if grades:
        table = Table("component", "provider", "status", "time ratio", title="check against the built-in Acts")
        for item in grades:
            table.add_row(f"{item.kind}:{item.name}", provider_label(item), _styled(item.status),
                          _speed(item.speed_ratio))
        console.print(table)
    for item in grades:
        lines = list(_diagnoses(item))
        if lines:
            console.print(Text(f"{item.kind}:{item.name} ({item.dist}): {item.status}", style="bold"))
            for line in lines:
                console.print(Text(line), soft_wrap=True)
    console.print(summary(grades) + (f"; {len(broken)} with load problems" if broken else ""), style="bold")
    if any(g.status == NOT_IMPLEMENTED for g in grades):
        console.print(Text("(the built-in provider is used where yours is not implemented, so milestones still run)",
                           style="dim"), soft_wrap=True)
    if any(g.speed_ratio is not None for g in grades):
        console.print(Text("time ratio: your time over the built-in one's (shown, not graded)", style="dim"),
                      soft_wrap=True)


def _diagnoses(item: Grade) -> Iterator[str]:
    """The indented lines that say what went wrong in a grade: its failed and errored cases,
    the cases not implemented in a component that is partly implemented, and skipped cases."""
    partly = any(case.status == PASSED for case in item.cases)
    for case in item.cases:
        if case.status in (FAILED, ERROR) or (case.status == NOT_IMPLEMENTED and partly):
            yield _indent(f"x {case.name}: {case.detail}" if case.detail else f"x {case.name}", "    ")
    for case in item.cases:
        if case.status == SKIPPED:
            yield _indent(f"- skipped {case.name}" + (f": {case.detail}" if case.detail else ""), "    ")


def _indent(text: str, prefix: str) -> str:
    first, *rest = text.splitlines() or [""]
    return "\n".join([prefix + first] + [prefix + "  " + line for line in rest])


# -- the state file ---------------------------------------------------------------------


def state_path() -> Path:
    """Where ``check`` keeps its results: ``$TT_STATE_DIR/checks.json`` when the variable is
    set, else ``checks.json`` in ``platformdirs.user_data_dir("tinytorch")``."""
    root = os.environ.get(STATE_ENV)
    if not root:
        import platformdirs

        root = platformdirs.user_data_dir("tinytorch")
    return Path(root) / STATE_FILE


def empty_state() -> dict:
    """The state with no results."""
    return {"format": STATE_FORMAT, "distributions": {}}


def load_state(path: Path | None = None) -> dict:
    """The saved results, ``{"format": 1, "distributions": {dist: entry}}``, where an entry is
    ``{"version", "fingerprint", "components": {"kind:name": grade dict + "seed", "checked"}}``.

    A missing, unreadable or damaged file reads as no results (the next ``check`` rewrites it).
    """
    path = path or state_path()
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty_state()
    if not (isinstance(state, dict) and state.get("format") == STATE_FORMAT
            and isinstance(state.get("distributions"), dict)):
        return empty_state()
    return state


def save_state(state: dict, path: Path | None = None) -> Path:
    """Write the state file atomically: a temporary file in the same folder, then
    ``os.replace``, so a reader never sees half a file. Returns the path written.

    Raises:
        OSError: the folder cannot be created or written.
    """
    return write_atomic(path or state_path(), json.dumps(state, indent=2, sort_keys=True, default=str))


@dataclass(frozen=True)
class DistIdentity:
    """What a saved result is valid for: a distribution's version and the fingerprint of its
    files (``None`` for a distribution that is not installed, e.g. one built in a test)."""

    version: str
    fingerprint: str | None


def dist_identity(dist: str, version: str = "?") -> DistIdentity:
    """The version and file fingerprint of installed distribution ``dist``.

    The fingerprint is a SHA-256 over the path, size and modification time of every file the
    distribution's ``RECORD`` lists (compiled ``.pyc`` files left out), plus, for an editable
    install or one without a ``RECORD``, every file of the packages it imports from (its
    ``tinytorch`` entry points' top-level packages and its ``top_level.txt``), so editing a
    source file of a learner's editable package changes it.

    Args:
        dist: the distribution's name (any spelling of it).
        version: the version to report when it is not installed.

    Returns:
        ``DistIdentity(version, fingerprint)``; the fingerprint is None when not installed.
    """
    try:
        distribution = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return DistIdentity(version, None)
    digest = hashlib.sha256()
    for path in sorted(set(_installed_files(distribution)), key=str):
        try:
            stat = path.stat()
            entry = f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
        except OSError:
            entry = f"{path}\0missing\n"
        digest.update(entry.encode("utf-8", "surrogateescape"))
    return DistIdentity(distribution.version, digest.hexdigest())


def _installed_files(distribution: metadata.Distribution) -> Iterator[Path]:
    files = distribution.files
    for file in files or ():
        if file.suffix != ".pyc":
            yield Path(distribution.locate_file(file))
    if not files or _is_editable(distribution):
        yield from _source_files(distribution)


def _is_editable(distribution: metadata.Distribution) -> bool:
    """Whether pip installed it editable (``direct_url.json`` says ``dir_info.editable``)."""
    try:
        direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    except ValueError:
        return False
    return isinstance(direct_url, dict) and bool((direct_url.get("dir_info") or {}).get("editable"))


def _source_files(distribution: metadata.Distribution) -> Iterator[Path]:
    """Every file (but compiled ones) of the top-level modules and packages the distribution
    provides, found where Python would import them from."""
    tops = {ep.value.split(":")[0].split(".")[0].strip() for ep in distribution.entry_points
            if ep.group == ENTRY_POINT_GROUP}
    tops.update(line.strip() for line in (distribution.read_text("top_level.txt") or "").splitlines())
    for top in sorted(filter(None, tops)):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                for root, dirs, names in os.walk(location):
                    dirs[:] = [d for d in dirs if d != "__pycache__"]
                    yield from (Path(root, n) for n in names if not n.endswith(".pyc"))
        elif spec.origin and os.path.isfile(spec.origin):
            yield Path(spec.origin)


def record_grades(grades: Iterable, seed: int, path: Path | None = None) -> None:
    """Save grades in the state file, each under its distribution's current identity. A
    distribution whose identity changed since its last results starts afresh.

    Raises:
        OSError: the state file cannot be written.
    """
    grades = list(grades)
    if not grades:
        return
    state = load_state(path)
    dists = state["distributions"]
    checked = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    identities: dict[str, DistIdentity] = {}
    for item in grades:
        identity = identities.get(item.dist) or identities.setdefault(item.dist, dist_identity(item.dist, item.version))
        entry = dists.get(item.dist)
        if not _entry_matches(entry, identity):
            entry = dists[item.dist] = {"version": identity.version, "fingerprint": identity.fingerprint,
                                        "components": {}}
        entry["components"][f"{item.kind}:{item.name}"] = {**item.to_dict(), "seed": seed, "checked": checked}
    save_state(state, path)


def _entry_matches(entry: Any, identity: DistIdentity) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("components"), dict)
            and entry.get("version") == identity.version and entry.get("fingerprint") == identity.fingerprint)


def last_result(state: dict, component: Component, identities: dict[str, DistIdentity]) -> str:
    """The last ``check`` result of one provider: its grade's status when still valid,
    ``"stale"`` when its package changed since, ``"not checked"`` when it never was, and
    ``"not implemented"`` for a stub whatever was saved.

    Args:
        state: the loaded state file.
        component: the provider asked about.
        identities: a memo of :func:`dist_identity` by distribution (filled as needed).
    """
    if not component.implemented:
        return NOT_IMPLEMENTED
    entry = state["distributions"].get(component.dist)
    record = entry.get("components", {}).get(f"{component.kind}:{component.name}") if isinstance(entry, dict) else None
    if not isinstance(record, dict):
        return NOT_CHECKED
    if component.dist not in identities:
        identities[component.dist] = dist_identity(component.dist, component.version)
    if not _entry_matches(entry, identities[component.dist]):
        return STALE
    return str(record.get("status", NOT_CHECKED))


# -- status -----------------------------------------------------------------------------


def components_used(specs: Iterable[MilestoneSpec], registry: ComponentRegistry | None = None) -> dict[tuple[str, str], str]:
    """Every component the milestones use (the union of their ``requires`` and ``optional``,
    with the gradient rule of each op among them), each with the package that provides its
    reference, in the order the specs name them; then, when ``registry`` is given, every
    other component a non-built-in distribution provides (a learner's gradient rule runs
    wherever its op does), under the package of its reference (or its own distribution)."""
    used: dict[tuple[str, str], str] = {}
    for spec in specs:
        for requirement in spec.requires + spec.optional:
            used.setdefault((requirement.kind, requirement.name), requirement.package)
            if requirement.kind == "op" and registry is not None and registry.has("grad_rule", requirement.name):
                reference = registry.reference("grad_rule", requirement.name)
                used.setdefault(("grad_rule", requirement.name), reference.dist if reference else requirement.package)
    for component in registry or ():
        if registry.is_builtin(component.dist) or component.kind in ("checker", "example", "kind"):
            continue
        reference = registry.reference(component.kind, component.name)
        used.setdefault((component.kind, component.name), reference.dist if reference else component.dist)
    return used


def act_key(package: str) -> tuple:
    """The Acts in their order, then third-party packages by name."""
    return (ACTS.index(package), "") if package in ACTS else (len(ACTS), package)


def _in_use(registry: ComponentRegistry, kind: str, name: str) -> Component:
    """The provider that runs: for an op's kernel and its gradient rule, the pair dispatch
    bound (a rule that cannot run after the chosen kernel is not in use); else the chosen one."""
    if kind in ("op", "grad_rule") and registry.has("op", name):
        bound, _ = bind(registry, name)
        dist = bound.kernel_dist if kind == "op" else bound.rule_dist
        match = [c for c in registry.providers(kind, name) if c.dist == dist]
        if match:
            return match[0]
    return registry.chosen(kind, name)


def component_status(registry: ComponentRegistry, kind: str, name: str, package: str, state: dict,
                     identities: dict[str, DistIdentity]) -> dict:
    """One row of ``status``: who provides ``kind:name`` now, and the last check of yours.

    Returns:
        ``{"component", "package", "provider", "version", "yours", "learner", "check"}``:
        ``provider`` is the distribution in use (None when nobody provides it), ``yours``
        whether that is not built-in, ``learner`` the non-built-in provider whose ``check``
        is reported (the one in use, else the first installed; None if none) and ``check``
        its last result (None without one).
    """
    row = {"component": f"{kind}:{name}", "package": package, "provider": None, "version": None,
           "yours": False, "learner": None, "check": None}
    if not registry.has(kind, name):
        return row
    chosen = _in_use(registry, kind, name)
    row.update(provider=chosen.dist, version=chosen.version, yours=not registry.is_builtin(chosen.dist))
    if row["yours"]:
        mine = chosen
    else:
        mine = next((c for c in registry.providers(kind, name) if not registry.is_builtin(c.dist)), None)
    if mine is not None:
        row.update(learner=mine.dist, check=last_result(state, mine, identities))
    return row


def milestone_status(spec: MilestoneSpec, catalogue: Catalogue) -> dict:
    """Whether a milestone runs, and how many of the components it uses are yours.

    Returns:
        ``{"id", "slug", "title", "status", "missing", "install", "unlock", "components",
        "yours", "your_components"}``: ``unlock`` says what unlocks a locked one
        (:func:`tt_milestones.cli.unlock_text`); the counts are over the components of its
        ``requires`` and ``optional`` that are installed, and the gradient rules of its ops.
    """
    registry = catalogue.registry
    steps = unlock_steps(spec, catalogue)
    present = [(kind, name) for kind, name in components_used([spec], registry) if registry.has(kind, name)
               and ((kind, name) in {(r.kind, r.name) for r in spec.requires + spec.optional} or kind == "grad_rule"
                    and any(r.kind == "op" and r.name == name for r in spec.requires + spec.optional))]
    yours = [f"{kind}:{name}" for kind, name in present if not registry.is_builtin(_in_use(registry, kind, name).dist)]
    return {
        "id": spec.id, "slug": spec.slug, "title": spec.title, "status": spec.status(registry),
        "missing": [str(r) for r in spec.missing(registry)], "install": steps["install"],
        "unlock": unlock_text(steps),
        "components": len(present), "yours": len(yours), "your_components": yours,
    }


def status_report(catalogue: Catalogue, state: dict | None = None) -> dict:
    """What ``status --json`` prints: ``{"acts": [{"act", "components": [row, ...]}],
    "milestones": [...], "unused": {dist: [component, ...]}}``.

    ``unused`` lists, per non-built-in distribution, the components it implements that are
    not in use (neither chosen in ``TT_PROVIDERS`` nor by ``--use``).
    """
    registry = catalogue.registry
    state = load_state() if state is None else state
    identities: dict[str, DistIdentity] = {}
    by_act: dict[str, list[dict]] = {}
    for (kind, name), package in components_used(catalogue.all(), registry).items():
        by_act.setdefault(package, []).append(component_status(registry, kind, name, package, state, identities))
    unused: dict[str, list[str]] = {}
    for rows in by_act.values():
        for row in rows:
            if row["learner"] and not row["yours"] and row["check"] != NOT_IMPLEMENTED:
                unused.setdefault(row["learner"], []).append(row["component"])
    return {
        "acts": [{"act": act, "components": by_act[act]} for act in sorted(by_act, key=act_key)],
        "milestones": [milestone_status(spec, catalogue) for spec in catalogue.all()],
        "unused": unused,
    }


def _provider_text(row: dict) -> str:
    if row["provider"] is None:
        return f"missing: install {row['package']}"
    return f"{'yours' if row['yours'] else 'built-in'}: {row['provider']}"


def _check_text(row: dict):
    from rich.text import Text

    if row["check"] is None:
        return Text("-", style="dim")
    text = _styled(row["check"])
    if not row["yours"]:
        text.append(f" ({row['learner']}" + (", not in use)" if row["check"] != NOT_IMPLEMENTED else ")"), style="dim")
    return text


def print_status(report: dict) -> None:
    """Per Act a table of components (provider, last check), then one line per milestone."""
    from rich.table import Table
    from rich.text import Text

    console = _console()
    for act in report["acts"]:
        table = Table("component", "provider", "last check", title=act["act"], title_justify="left")
        for row in act["components"]:
            table.add_row(row["component"], _provider_text(row), _check_text(row))
        console.print(table)
    console.print(Text("milestones", style="bold"))
    for item in report["milestones"]:
        state = item["status"] + (f" ({item['unlock']})" if item["unlock"] else "")
        console.print(f"  {item['id']} {item['slug']}: {state}, {item['yours']} of {item['components']} components yours")
    for dist, names in report["unused"].items():
        console.print(Text(
            f"{dist} implements {len(names)} component(s) not in use: add --use {dist} (to run, check and status) "
            f"or set TT_PROVIDERS={dist}", style="dim"), soft_wrap=True)


def cmd_status(args: argparse.Namespace, catalogue: Catalogue) -> int:
    apply_use(args.use, catalogue)
    report = status_report(catalogue)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_status(report)
    return EXIT_REACHED

"""The ``tt-milestones`` command: ``list``, ``info``, ``run``, ``plugins``, ``new``, and the
learner's ``check`` and ``status`` (:mod:`tt_milestones.learner`).

``list``, ``info`` and ``plugins`` print plain text (or JSON) and import nothing heavy, so they
answer at once; ``run`` imports rich, matplotlib and the milestone's run module. ``run ID --use
DIST`` runs on every component distribution DIST implements, the rest built-in; the run header
names every component that is not built-in, and ``report.json`` records every provider used.
``run ID --graph`` draws the autograd graph of the run's first training step into the report
folder, ``run ID --detect-anomaly`` stops at the first NaN or inf (both any milestone, with
tt-learn installed: :mod:`tt_milestones.diagnostics`).
``new DIR --act ACT`` writes a learner's package of stubs for one Act.

Before a run trains, ``--out`` is checked (a folder, or one that can be created, that can be
written) and locked, so a second run into the same folder is refused; ``report.json`` is then
rewritten as each phase completes and marked ``completed``, ``interrupted`` or ``failed``
(:mod:`tt_milestones.runner`).

``TT_DISABLE_PLUGINS`` naming no installed plugin gets a warning (stderr, one line) on every
command, and a milestone locked because its package is blocked there says so.

Exit codes (:data:`EXIT_CODES`): 0 the milestone reached its target (or the command
succeeded), 1 it ran but missed (``check``: a component failed), 2 a usage error, an unknown id,
a locked milestone, bad or missing data, a file that cannot be read or written, or an unusable
``--out`` (with the reason, no traceback), 3 an unexpected internal error (one line, and the
traceback in a log file, :data:`tt_milestones.files.ERROR_LOG`, in ``--out`` or else in the user
cache directory), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import textwrap
import traceback
from importlib import metadata
from pathlib import Path

from tt_core.errors import TinyTorchError
from tt_core.plugins import (
    CORE_DISTRIBUTION, ENTRY_POINT_GROUP, Component, ComponentRegistry, choose, disabled_plugins, normalize_dist,
)

from .__about__ import __version__
from .api import MilestoneSpec
from .files import RunLock, cache_dir, describe_os_error, prepare_out, write_error_log
from .registry import Catalogue, get_catalogue
from .scaffold import ACTS as SCAFFOLD_ACTS

EXIT_REACHED, EXIT_MISSED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    EXIT_REACHED: "the milestone reached its target (any other command: it succeeded)",
    EXIT_MISSED: "the milestone ran but missed its target (check: a component failed)",
    EXIT_USAGE: "a usage error: unknown id, locked milestone, bad or missing data, unusable --out",
    EXIT_INTERNAL: "an unexpected internal error: one line here, the traceback in a log file",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); a run's report.json is marked interrupted",
}
ACTS = ("tt-core", "tt-learn", "tt-data", "tt-language", "tt-perf", "tt-milestones")


class UsageError(TinyTorchError):
    """A command that cannot run as typed (locked milestone, option it does not take, ...)."""


# -- TT_DISABLE_PLUGINS -----------------------------------------------------------------


def installed_plugins() -> dict[str, str]:
    """Every installed TinyTorch plugin, loaded or blocked: its normalised entry-point name and
    distribution name, each -> its distribution."""
    names = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = normalize_dist(ep.dist.name if ep.dist is not None else ep.name)
        names[normalize_dist(ep.name)] = names[dist] = dist
    return names


def disabled_problems() -> list[str]:
    """The names in ``TT_DISABLE_PLUGINS`` that block nothing, each with why: no installed
    plugin is called so (with the close names), or it names tt-core, which cannot be blocked."""
    installed = installed_plugins()
    problems = []
    for name in sorted(disabled_plugins()):
        if name == CORE_DISTRIBUTION:
            problems.append(f"{name!r} (tt-core cannot be blocked)")
        elif name not in installed:
            close = difflib.get_close_matches(name, installed, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{name!r} (no installed plugin is called so{guess})")
    return problems


def warn_about_disabled() -> None:
    """One line on stderr when ``TT_DISABLE_PLUGINS`` names something that blocks nothing."""
    problems = disabled_problems()
    if problems:
        installed = sorted(set(installed_plugins().values()) - {CORE_DISTRIBUTION})
        print(
            f"tt-milestones: warning: TT_DISABLE_PLUGINS blocks nothing with {', '.join(problems)}; "
            f"the plugins that can be blocked: {', '.join(installed) or 'none'}",
            file=sys.stderr,
        )


def unlock_steps(spec: MilestoneSpec, catalogue: Catalogue) -> dict[str, list[str]]:
    """The packages that would unlock ``spec``, by what they need: ``"install"`` every package
    providing a missing component, ``"blocked"`` those of them that are installed but blocked
    by ``TT_DISABLE_PLUGINS``, ``"failed"`` those that are installed but failed to load."""
    installed = installed_plugins()
    blocked = {installed[name] for name in disabled_plugins() if name in installed}
    failed = {info.dist for info in catalogue.plugins if info.error}
    packages = spec.install_hint(catalogue.registry)
    return {
        "install": packages,
        "blocked": [p for p in packages if normalize_dist(p) in blocked],
        "failed": [p for p in packages if normalize_dist(p) in failed],
    }


def package_step(package: str, steps: dict[str, list[str]]) -> str:
    """What unlocks one package of :func:`unlock_steps`: ``"install tt-learn"``, or why it is
    installed yet provides nothing."""
    if package in steps["blocked"]:
        return f"{package} is installed but blocked by TT_DISABLE_PLUGINS"
    if package in steps["failed"]:
        return f"{package} is installed but failed to load (see tt-milestones plugins)"
    return f"install {package}"


def unlock_text(steps: dict[str, list[str]]) -> str:
    """``"install tt-data; tt-learn is installed but blocked by TT_DISABLE_PLUGINS (...)"``."""
    to_install = [p for p in steps["install"] if p not in steps["blocked"] + steps["failed"]]
    parts = [f"install {', '.join(to_install)}"] if to_install else []
    parts += [package_step(p, steps) for p in steps["install"] if p not in to_install]
    return "; ".join(parts)


# -- list -------------------------------------------------------------------------------


def milestone_row(spec: MilestoneSpec, catalogue: Catalogue) -> dict:
    """What ``list --json`` says about one milestone: ``install`` names the packages providing
    its missing components, ``blocked`` and ``failed`` those of them installed but blocked by
    ``TT_DISABLE_PLUGINS`` or failed to load, and ``unlock`` says what to do, in words."""
    registry = catalogue.registry
    steps = unlock_steps(spec, catalogue)
    return {
        "id": spec.id,
        "slug": spec.slug,
        "year": spec.year,
        "title": spec.title,
        "status": spec.status(registry),
        "missing": [str(r) for r in spec.missing(registry)],
        **steps,
        "unlock": unlock_text(steps),
        "target": spec.target,
        "provider": catalogue.origin[spec.id],
    }


def cmd_list(args: argparse.Namespace, catalogue: Catalogue) -> int:
    rows = [milestone_row(spec, catalogue) for spec in catalogue.all()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_REACHED
    width = max([len(r["title"]) for r in rows] + [9])
    print(f"{'ID':<4}{'YEAR':<6}{'MILESTONE':<{width + 2}}STATUS")
    for row in rows:
        status = row["status"]
        if row["missing"]:
            status += f" - {row['unlock']} (missing {', '.join(row['missing'])})"
        print(f"{row['id']:<4}{row['year']:<6}{row['title']:<{width + 2}}{status}")
    return EXIT_REACHED


# -- info -------------------------------------------------------------------------------


def provider_label(component: Component) -> str:
    """``"my-tinytorch 0.1.0"``: a component's distribution and version."""
    return " ".join(filter(None, (component.dist, component.version)))


def chosen_provider(registry: ComponentRegistry, kind: str, name: str) -> str:
    """Who provides ``kind:name`` in a run, as ``info`` shows it: ``"tt-core 0.1.0"``, or
    ``"my-tinytorch 0.1.0 (yours; built-in: tt-core)"`` for a component that is not built in."""
    chosen = registry.chosen(kind, name)
    if registry.is_builtin(chosen.dist):
        return provider_label(chosen)
    reference = registry.reference(kind, name)
    return f"{provider_label(chosen)} (yours; built-in: {reference.dist if reference else 'none'})"


def cmd_info(args: argparse.Namespace, catalogue: Catalogue) -> int:
    spec = catalogue.find(args.milestone)
    registry = catalogue.registry
    missing = set(spec.missing(registry))
    steps = unlock_steps(spec, catalogue)
    print(f"{spec.id} {spec.slug}: {spec.title} ({spec.year})")
    print(textwrap.fill(spec.history, width=88, initial_indent="  ", subsequent_indent="  "))
    print("requires:")
    width = max(len(str(r)) for r in spec.requires) if spec.requires else 0
    for req in spec.requires:
        if req in missing:
            print(f"  [missing] {str(req):<{width}}  {package_step(req.package, steps)}")
        else:
            print(f"  [  ok   ] {str(req):<{width}}  from {chosen_provider(registry, req.kind, req.name)}")
    print(f"target: {spec.target}")
    if spec.quick_note:
        print(f"--quick: {spec.quick_note}")
    if spec.options:
        print("options: " + " ".join(f"--{o}" for o in spec.options))
    print(f"provided by: {catalogue.origin[spec.id]}")
    if missing:
        print(f"status: locked - {unlock_text(steps)}")
    else:
        print(f"status: runnable - tt-milestones run {spec.id}  (add --quick for a fast check)")
    return EXIT_REACHED


# -- plugins ----------------------------------------------------------------------------


def act_order(info) -> tuple:
    """The Acts in their order, then third-party plugins by name."""
    return (ACTS.index(info.dist), "") if info.dist in ACTS else (len(ACTS), info.dist)


def known_kinds(registry: ComponentRegistry) -> dict[str, dict[str, str]]:
    """Every kind a component may have, ``{kind: {"contract": ..., "dist": ...}}``: tt-core's
    (:data:`tt_core.kinds.KINDS`) and those a plugin registered (as components of kind ``kind``)."""
    def owner(kind: str) -> str:
        return registry.chosen("kind", kind).dist if registry.has("kind", kind) else CORE_DISTRIBUTION

    kinds = sorted(registry.known_kinds().items())
    return {kind: {"contract": contract, "dist": owner(kind)} for kind, contract in kinds}


def plugins_report(catalogue: Catalogue) -> dict:
    """What ``plugins --json`` says: every plugin, the components with several providers, the
    known kinds, and the components of kinds nobody defined."""
    registry = catalogue.registry
    kinds = known_kinds(registry)
    return {
        "plugins": [
            {
                "name": info.name,
                "distribution": info.dist,
                "version": info.version,
                "components": dict(sorted(info.components.items())),
                "milestones": catalogue.from_dist(info.dist),
                "error": info.problems,
            }
            for info in sorted(catalogue.plugins, key=act_order)
        ],
        "choices": [
            {"component": f"{kind}:{name}", "providers": providers, "chosen": chosen}
            for kind, name, providers, chosen in catalogue.registry.overridden()
        ],
        "disabled": sorted(disabled_plugins()),
        "kinds": kinds,
        "unknown_kinds": [
            {"distribution": dist, "kind": kind, "close": difflib.get_close_matches(kind, kinds, n=3)}
            for dist, kind in registry.unknown_kinds()
        ],
    }


def cmd_plugins(args: argparse.Namespace, catalogue: Catalogue) -> int:
    report = plugins_report(catalogue)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_REACHED
    for plugin in report["plugins"]:
        state = "FAILED to load" if plugin["error"] else "ok"
        print(f"{plugin['distribution']} {plugin['version']}  (entry point {plugin['name']})  {state}")
        kinds = ", ".join(f"{kind} {count}" for kind, count in plugin["components"].items())
        print(f"  components: {kinds or '-'}")
        print(f"  milestones: {', '.join(plugin['milestones']) or '-'}")
        if plugin["error"]:
            print(textwrap.indent(plugin["error"], "  ! "))
    if report["choices"]:
        print("components with several providers (pick with TT_PROVIDERS='kind:name=distribution', "
              "or run ID --use distribution):")
        for choice in report["choices"]:
            print(f"  {choice['component']}: {', '.join(choice['providers'])} -> using {choice['chosen']}")
    if report["disabled"]:
        print(f"blocked by TT_DISABLE_PLUGINS: {', '.join(report['disabled'])}")
    print("kinds: " + ", ".join(
        kind if entry["dist"] == CORE_DISTRIBUTION else f"{kind} (from {entry['dist']})"
        for kind, entry in report["kinds"].items()
    ))
    for unknown in report["unknown_kinds"]:
        close = f" (did you mean {' or '.join(map(repr, unknown['close']))}?)" if unknown["close"] else ""
        print(
            f"warning: {unknown['distribution']} registers components of unknown kind {unknown['kind']!r}{close}: "
            "nothing looks for them; use a known kind, or register the kind with "
            "registry.register('kind', name, contract)"
        )
    return EXIT_REACHED


# -- run --------------------------------------------------------------------------------


def check_use(dists: list[str], catalogue: Catalogue) -> tuple[str, ...]:
    """The distributions of ``run --use``, normalised, each an installed plugin that loaded.

    Raises:
        UsageError: a name that is no installed plugin (naming the installed ones), a plugin
            blocked by ``TT_DISABLE_PLUGINS``, or one that failed to load.
    """
    loaded = {info.dist: info for info in catalogue.plugins}
    chosen = []
    for dist in dists:
        key = normalize_dist(dist)
        if key in disabled_plugins() and key not in loaded:
            raise UsageError(f"--use {dist}: {key} is blocked by TT_DISABLE_PLUGINS")
        if key not in loaded:
            raise UsageError(
                f"--use {dist}: no installed TinyTorch plugin is called {key!r}; installed: "
                f"{', '.join(sorted(loaded))} (pip install your package, e.g. pip install -e DIR)"
            )
        if loaded[key].error:
            raise UsageError(f"--use {dist}: {key} failed to load, so it provides nothing (see tt-milestones plugins)")
        chosen.append(key)
    return tuple(dict.fromkeys(chosen))


def out_folder(text: str | None, spec: MilestoneSpec) -> Path:
    """The folder of ``run --out TEXT`` (default ``runs/<id>-<slug>``).

    Raises:
        UsageError: ``TEXT`` is empty or blank (it would mean the current folder).
    """
    if text is None:
        return Path("runs") / f"{spec.id}-{spec.slug}"
    if not text.strip():
        raise UsageError(f"--out is empty: name a folder, or drop --out to write into runs/{spec.id}-{spec.slug}/")
    return Path(text)


def cmd_run(args: argparse.Namespace, catalogue: Catalogue) -> int:
    spec = catalogue.find(args.milestone)
    use = check_use(args.use, catalogue)
    if use:
        choose(use=use)
    registry = catalogue.registry
    if spec.missing(registry):
        raise UsageError(
            f"milestone {spec.id} ({spec.slug}) is locked: it needs "
            f"{', '.join(map(str, spec.missing(registry)))} - {unlock_text(unlock_steps(spec, catalogue))}"
        )
    options = {name: True for name in ("chat",) if getattr(args, name)}
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise UsageError(f"milestone {spec.id} ({spec.slug}) has no option {', '.join('--' + o for o in unknown)}")
    from .diagnostics import DIAGNOSTICS, unavailable

    options.update({name: True for name in DIAGNOSTICS if getattr(args, name)})  # any milestone takes these
    missing = unavailable(registry, options)
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        needs = ", ".join(":".join(DIAGNOSTICS[name]) for name in missing)
        raise UsageError(f"{flags} needs tt-learn, which is not installed (it provides {needs}): pip install tt-learn")
    out = out_folder(args.out, spec)

    from rich.console import Console
    from rich.table import Table

    from .api import RunContext
    from .runner import default_threads, not_builtin, planned_providers, resolve, run_milestone
    from .systems import systems_table

    run = resolve(spec, catalogue.origin[spec.id])
    prepare_out(out)
    args.out_dir = out  # where main() writes the log of an unexpected error
    with RunLock(out):
        console = Console()
        console.rule(f"[bold]{spec.id} {spec.title} ({spec.year})")
        console.print(spec.history, style="italic")
        console.print(f"target: {spec.target}" + ("   [yellow](quick)[/]" if args.quick else ""))
        plugin_dists = {info.dist: info.version for info in catalogue.plugins}
        yours = not_builtin(planned_providers(spec, catalogue.system, plugin_dists))
        whose = f"your code: {', '.join(yours)}" if yours else "all components built-in"
        console.print(whose, highlight=False, soft_wrap=True)
        threads = args.threads or default_threads()
        console.print(f"BLAS threads: {threads}" + ("" if args.threads else " (every core; --threads N to change)"))
        ctx = RunContext(
            registry=registry, out=out, quick=args.quick, seed=args.seed, options=options, console=console,
            declared=spec.requires + spec.optional, threads=threads,
        )
        args.context = ctx  # for main(): where the report of an unfinished run is
        report = run_milestone(spec, ctx, plugin_dists, run)

    table = Table("check", "value", "target", "reached", title=f"{spec.id} {spec.slug}")
    for check in report["checks"]:
        table.add_row(
            check["name"], f"{check['value']:.4g}", f"{check['op']} {check['target']:g}",
            "[green]yes[/]" if check["reached"] else "[red]no[/]",
        )
    console.print(table)
    costs = systems_table(report)
    if costs is not None:
        console.print(costs)
    ran = not_builtin(report["providers"])
    if ran:
        console.print(f"ran on your code: {', '.join(ran)}", highlight=False, soft_wrap=True)
    if report["plot_errors"]:
        console.print(f"{len(report['plot_errors'])} plot(s) could not be saved: see plot_errors in the report",
                      style="yellow", highlight=False)
    verdict = "[bold green]target reached[/]" if report["reached"] else "[bold red]target missed[/]"
    console.print(f"{verdict} in {report['wall_time_s']:.1f} s; report and plots in {out}/")
    return EXIT_REACHED if report["reached"] else EXIT_MISSED


# -- new --------------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace, catalogue: Catalogue) -> int:
    from .scaffold import plan_package, write_package

    directory = Path(args.directory)
    scaffold = plan_package(catalogue.registry, args.act, args.name)
    write_package(scaffold, directory)
    modules = {module for _, _, module, _ in scaffold.components}
    print(
        f"wrote {scaffold.dist} in {directory}/: {len(scaffold.components)} components of {scaffold.act} "
        f"as stubs, in {len(modules)} modules under src/{scaffold.import_name}/"
    )
    print("every stub raises NotImplementedError, so the built-in one is used until you write it. Next:")
    print(f"  pip install -e {directory}")
    print(f"  tt-milestones check {scaffold.dist}")
    print(f"  tt-milestones run 01 --use {scaffold.dist}")
    return EXIT_REACHED


# -- entry ------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return int(text)


def add_use_option(parser: argparse.ArgumentParser) -> None:
    """``--use DIST`` (repeatable), for the commands that pick providers as ``run`` does."""
    parser.add_argument(
        "--use", action="append", default=[], metavar="DIST",
        help="use every component distribution DIST implements, the rest built-in (repeatable)",
    )


def exit_codes_help() -> str:
    """The exit codes, as the epilog of ``--help``."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tt-milestones", description="Replay the history of deep learning with the installed TinyTorch Acts.",
        epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="every milestone: runnable, or locked and what unlocks it")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    info = commands.add_parser("info", help="a milestone's history, requirements and target")
    info.add_argument("milestone", metavar="ID", help="id or slug, e.g. 01 or perceptron")
    info.set_defaults(handler=cmd_info)

    run = commands.add_parser(
        "run", help="run a milestone; writes report.json and PNG plots",
        description="Run a milestone. --out is checked and locked before anything trains; report.json is "
        "rewritten as each phase completes, with its status (running, completed, interrupted, failed).",
        epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("milestone", metavar="ID", help="id or slug, e.g. 01 or perceptron")
    run.add_argument("--quick", action="store_true", help="a fast run (seconds) that still checks learning")
    run.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    run.add_argument("--out", metavar="DIR", help="output folder (default ./runs/<id>-<slug>/)")
    run.add_argument("--chat", action="store_true", help="talk to the trained model (milestone 05)")
    run.add_argument("--threads", type=positive_int, metavar="N",
                     help="BLAS threads for the run (default: every core); recorded in report.json")
    run.add_argument("--graph", action="store_true",
                     help="draw the autograd graph of the first training step (graph.png, graph.svg; needs tt-learn)")
    run.add_argument("--detect-anomaly", action="store_true",
                     help="stop at the first NaN or inf, naming the op and the line that ran it (needs tt-learn)")
    add_use_option(run)
    run.set_defaults(handler=cmd_run)

    plugins = commands.add_parser("plugins", help="installed plugins, what they provide, and load errors")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=cmd_plugins)

    new = commands.add_parser("new", help="write your own package for one Act: a stub per component")
    new.add_argument("directory", metavar="DIR", help="a new (or empty) folder for the package")
    new.add_argument("--act", required=True, choices=list(SCAFFOLD_ACTS), help="the Act to rebuild")
    new.add_argument("--name", metavar="DIST", help="the package's distribution name (default my-tt-<act>)")
    new.set_defaults(handler=cmd_new)

    from .learner import add_commands

    add_commands(commands)  # check, status
    return parser


def report_note(args: argparse.Namespace) -> str:
    """``"; the report of what was measured so far: runs/03-mlp/report.json"`` once a run has
    written one, else empty."""
    ctx = getattr(args, "context", None)
    path = getattr(ctx, "report_path", None)
    return f"; the report of what was measured so far: {path}" if path is not None else ""


def internal_error(args: argparse.Namespace, error: Exception) -> int:
    """Say in one line that something unexpected failed, with the log file holding the
    traceback (in ``--out`` when a run got that far, else in the user cache directory)."""
    text = traceback.format_exc()
    folders = [args.out_dir] if getattr(args, "out_dir", None) is not None else []
    log = write_error_log(text, [*folders, cache_dir()])
    if log is None:  # nowhere to write it: the traceback is better here than lost
        print(text, file=sys.stderr, end="")
    message = (str(error).strip().splitlines() or [""])[0]
    where = f"the traceback is in {log}" if log is not None else "the traceback is above"
    print(
        f"tt-milestones: internal error: {type(error).__name__}{': ' + message if message else ''} "
        f"({where}){report_note(args)}",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (module docstring). Nothing a command raises
    ends in a traceback: an error is one line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        warn_about_disabled()
        return args.handler(args, get_catalogue())
    except KeyboardInterrupt:
        print(f"tt-milestones: interrupted{report_note(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TinyTorchError as error:  # the user's mistake or missing data: the message, no traceback
        print(f"tt-milestones: error: {error}{report_note(args)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        if isinstance(error, OSError) and error.filename:  # a file that cannot be read or written
            print(f"tt-milestones: error: {describe_os_error(error)}{report_note(args)}", file=sys.stderr)
            return EXIT_USAGE
        return internal_error(args, error)

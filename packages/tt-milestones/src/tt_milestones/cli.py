"""The ``tt-milestones`` command: ``list``, ``info``, ``run`` and ``plugins``.

``list``, ``info`` and ``plugins`` print plain text (or JSON) and import nothing heavy, so they
answer at once; ``run`` imports rich, matplotlib and the milestone's run module.

Exit codes: 0 the milestone reached its target (or the command succeeded), 1 it ran but
missed, 2 a usage error, an unknown id or a locked milestone (with the reason, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from tt_core.errors import TinyTorchError

from .__about__ import __version__
from .api import MilestoneSpec
from .registry import Catalogue, get_catalogue

EXIT_REACHED, EXIT_MISSED, EXIT_USAGE = 0, 1, 2
ACTS = ("tt-core", "tt-learn", "tt-data", "tt-language", "tt-perf", "tt-milestones")


class UsageError(TinyTorchError):
    """A command that cannot run as typed (locked milestone, option it does not take, ...)."""


# -- list -------------------------------------------------------------------------------


def milestone_row(spec: MilestoneSpec, catalogue: Catalogue) -> dict:
    """What ``list --json`` says about one milestone."""
    registry = catalogue.registry
    return {
        "id": spec.id,
        "slug": spec.slug,
        "year": spec.year,
        "title": spec.title,
        "status": spec.status(registry),
        "missing": [str(r) for r in spec.missing(registry)],
        "install": spec.install_hint(registry),
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
            status += f" - install {', '.join(row['install'])} (missing {', '.join(row['missing'])})"
        print(f"{row['id']:<4}{row['year']:<6}{row['title']:<{width + 2}}{status}")
    return EXIT_REACHED


# -- info -------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace, catalogue: Catalogue) -> int:
    spec = catalogue.find(args.milestone)
    registry = catalogue.registry
    missing = set(spec.missing(registry))
    print(f"{spec.id} {spec.slug}: {spec.title} ({spec.year})")
    print(textwrap.fill(spec.history, width=88, initial_indent="  ", subsequent_indent="  "))
    print("requires:")
    width = max(len(str(r)) for r in spec.requires) if spec.requires else 0
    for req in spec.requires:
        mark = "missing" if req in missing else "ok"
        print(f"  [{mark:^7}] {str(req):<{width}}  from {req.package}")
    print(f"target: {spec.target}")
    if spec.quick_note:
        print(f"--quick: {spec.quick_note}")
    if spec.options:
        print("options: " + " ".join(f"--{o}" for o in spec.options))
    print(f"provided by: {catalogue.origin[spec.id]}")
    if missing:
        print(f"status: locked - install {', '.join(spec.install_hint(registry))}")
    else:
        print(f"status: runnable - tt-milestones run {spec.id}  (add --quick for a fast check)")
    return EXIT_REACHED


# -- plugins ----------------------------------------------------------------------------


def act_order(info) -> tuple:
    """The Acts in their order, then third-party plugins by name."""
    return (ACTS.index(info.dist), "") if info.dist in ACTS else (len(ACTS), info.dist)


def plugins_report(catalogue: Catalogue) -> dict:
    """What ``plugins --json`` says: every plugin, and the components with several providers."""
    from tt_core.plugins import disabled_plugins

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
        print("components with several providers (pick with TT_PROVIDERS='kind:name=distribution'):")
        for choice in report["choices"]:
            print(f"  {choice['component']}: {', '.join(choice['providers'])} -> using {choice['chosen']}")
    if report["disabled"]:
        print(f"blocked by TT_DISABLE_PLUGINS: {', '.join(report['disabled'])}")
    return EXIT_REACHED


# -- run --------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, catalogue: Catalogue) -> int:
    spec = catalogue.find(args.milestone)
    registry = catalogue.registry
    if spec.missing(registry):
        raise UsageError(
            f"milestone {spec.id} ({spec.slug}) is locked: it needs "
            f"{', '.join(map(str, spec.missing(registry)))} - install {', '.join(spec.install_hint(registry))}"
        )
    options = {name: True for name in ("chat",) if getattr(args, name)}
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise UsageError(f"milestone {spec.id} ({spec.slug}) has no option {', '.join('--' + o for o in unknown)}")

    from rich.console import Console
    from rich.table import Table

    from .api import RunContext
    from .runner import run_milestone

    console = Console()
    out = Path(args.out) if args.out else Path("runs") / f"{spec.id}-{spec.slug}"
    console.rule(f"[bold]{spec.id} {spec.title} ({spec.year})")
    console.print(spec.history, style="italic")
    console.print(f"target: {spec.target}" + ("   [yellow](quick)[/]" if args.quick else ""))
    ctx = RunContext(
        registry=registry, out=out, quick=args.quick, seed=args.seed, options=options, console=console,
        declared=spec.requires + spec.optional,
    )
    plugin_dists = {info.dist: info.version for info in catalogue.plugins}
    report = run_milestone(spec, ctx, plugin_dists)

    table = Table("check", "value", "target", "reached", title=f"{spec.id} {spec.slug}")
    for check in report["checks"]:
        table.add_row(
            check["name"], f"{check['value']:.4g}", f"{check['op']} {check['target']:g}",
            "[green]yes[/]" if check["reached"] else "[red]no[/]",
        )
    console.print(table)
    verdict = "[bold green]target reached[/]" if report["reached"] else "[bold red]target missed[/]"
    console.print(f"{verdict} in {report['wall_time_s']:.1f} s; report and plots in {out}/")
    return EXIT_REACHED if report["reached"] else EXIT_MISSED


# -- entry ------------------------------------------------------------------------------


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tt-milestones", description="Replay the history of deep learning with the installed TinyTorch Acts."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="every milestone: runnable, or locked and what unlocks it")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_list)

    info = commands.add_parser("info", help="a milestone's history, requirements and target")
    info.add_argument("milestone", metavar="ID", help="id or slug, e.g. 01 or perceptron")
    info.set_defaults(handler=cmd_info)

    run = commands.add_parser("run", help="run a milestone; writes report.json and PNG plots")
    run.add_argument("milestone", metavar="ID", help="id or slug, e.g. 01 or perceptron")
    run.add_argument("--quick", action="store_true", help="a fast run (seconds) that still checks learning")
    run.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    run.add_argument("--out", metavar="DIR", help="output folder (default ./runs/<id>-<slug>/)")
    run.add_argument("--chat", action="store_true", help="talk to the trained model (milestone 05)")
    run.set_defaults(handler=cmd_run)

    plugins = commands.add_parser("plugins", help="installed plugins, what they provide, and load errors")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, get_catalogue())
    except TinyTorchError as error:  # the user's mistake or missing data: the message, no traceback
        print(f"tt-milestones: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tt-milestones: interrupted", file=sys.stderr)
        return 130

"""``python -m tt_milestones`` and the ``tt-milestones`` console script.

:func:`entry` imports the command (tt-core, the plugins' machinery) inside a guard, so that
Ctrl-C while Python is still importing ends with one line and exit code 130, not a traceback.
"""

from __future__ import annotations

import sys


def entry(argv: list[str] | None = None) -> int:
    """Import and run :func:`tt_milestones.cli.main`; returns its exit code (130 when
    interrupted while importing)."""
    try:
        from .cli import EXIT_INTERRUPTED, main
    except KeyboardInterrupt:
        print("tt-milestones: interrupted", file=sys.stderr)
        return 130
    try:
        return main(argv)
    except KeyboardInterrupt:  # between the imports and main()'s own guard
        print("tt-milestones: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(entry())

"""tt-milestones, Act VI of TinyTorch: the CLI that replays history with the installed Acts.

Importing this package stays light (no matplotlib, no rich, not even tt-core until
``MilestoneSpec``, ``Requirement`` or ``RunContext`` is asked for) so that the command can
start, and ``tt-milestones list`` answer, at once; plotting and progress bars are imported
only when a milestone runs.
"""

from .__about__ import __version__

__all__ = ["MilestoneSpec", "Requirement", "RunContext", "__version__"]


def __getattr__(name: str):
    """``MilestoneSpec``, ``Requirement`` and ``RunContext``, from :mod:`tt_milestones.api`
    when first asked for."""
    if name in ("MilestoneSpec", "Requirement", "RunContext"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

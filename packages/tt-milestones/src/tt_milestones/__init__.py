"""tt-milestones, Act VI of TinyTorch: the CLI that replays history with the installed Acts.

Importing this package stays light (no matplotlib, no rich) so that ``tt-milestones list``
answers at once; plotting and progress bars are imported only when a milestone runs.
"""

from .__about__ import __version__
from .api import MilestoneSpec, Requirement, RunContext

__all__ = ["MilestoneSpec", "Requirement", "RunContext", "__version__"]

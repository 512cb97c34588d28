"""``python -m tt_milestones`` is the ``tt-milestones`` command."""

from .cli import main

raise SystemExit(main())

"""A rich progress bar on stderr, shared by downloads and image decoding."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def progress_bar(description: str, total: int | None, *, transfer: bool = False, completed: int = 0,
                 enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Show a progress bar while the block runs; yields ``advance(n)``.

    ``transfer=True`` shows bytes, speed and time left (downloads); otherwise a count.
    ``enabled=False`` shows nothing (the yielded ``advance`` does nothing).
    """
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    amount = (DownloadColumn(), TransferSpeedColumn()) if transfer else (MofNCompleteColumn(), TimeElapsedColumn())
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), *amount, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bars:
        task = bars.add_task(description, total=total, completed=completed)
        yield lambda n=1: bars.advance(task, n)

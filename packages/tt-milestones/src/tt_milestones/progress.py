"""Progress bars for milestone runs (rich), with live figures beside the bar.

::

    with progress_bar(epochs, "training", console) as advance:
        for epoch in range(epochs):
            ...
            advance(loss=loss, acc=accuracy)   # one step, and the figures to show
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def format_value(value: Any) -> str:
    """Floats with four significant digits, everything else as ``str``.

    Examples:
        >>> format_value(0.693147), format_value(12), format_value("ok")
        ('0.6931', '12', 'ok')
    """
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class FieldsColumn(ProgressColumn):
    """Shows the task's extra fields (``loss=0.6931 acc=0.5``) after the bar."""

    def render(self, task: Task) -> Text:
        return Text(" ".join(f"{key}={format_value(value)}" for key, value in task.fields.items()), style="cyan")


@contextmanager
def progress_bar(total: int, description: str, console: Console | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar of ``total`` steps; yields ``advance(n=1, **fields)``.

    ``fields`` are figures shown beside the bar (the latest value of each is kept). A loop
    that stops early (converged, early stopping) leaves a completed bar.
    """
    if total < 0:
        raise ValueError(f"a progress bar needs a non-negative total, got {total}")
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), FieldsColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int = 1, **fields: Any) -> None:
            progress.update(task, advance=n, **fields)

        yield advance
        progress.update(task, total=progress.tasks[0].completed)

"""Progress bars for long steps (rich); quiet when ``OTAKU_PROGRESS=0``."""

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether progress bars are shown."""
    return os.environ.get("OTAKU_PROGRESS", "1") != "0"


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` showing a progress bar labelled ``description``."""
    if not progress_enabled():
        yield from items
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)


class StepBar:
    """A progress bar advanced by hand (e.g. from a training callback)."""

    def __init__(self, description: str, total: int) -> None:
        self._progress: Progress | None = None
        self._description = description
        self._total = total
        self._task: TaskID | None = None

    def __enter__(self) -> "StepBar":
        if progress_enabled():
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self._total)
        return self

    def advance(self, steps: int = 1) -> None:
        """Move the bar forward."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, steps)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

"""Progress of a long poll: a bar for a person at a terminal, periodic events for a journal.

    with poll_progress() as progress:
        result = poll(client, ids, state, now=now, progress=progress)

A first sync of thousands of trials takes minutes at one request per second; on a terminal a rich
progress bar shows it, elsewhere (systemd, cron, a pipe) `poll.progress` events are logged at most
every `interval` seconds, plus one at the end, so the journal is not flooded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog

log = structlog.get_logger("watcher.service.progress")

Progress = Callable[[int, int], None]


@contextmanager
def poll_progress(
    *,
    tty: bool | None = None,
    stream: TextIO | None = None,
    interval: float = 10.0,
    description: str = "Polling ClinicalTrials.gov",
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Progress]:
    """A `progress(done, total)` callback for `poll`: a rich bar on a TTY, else structlog events."""
    stream = stream or sys.stderr
    if tty is None:
        tty = stream.isatty()
    if tty:
        with _rich_bar(stream, description) as callback:
            yield callback
    else:
        yield _Events(interval, clock)


@contextmanager
def _rich_bar(stream: TextIO, description: str) -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream, force_terminal=True),
        transient=True,
    )
    task = bar.add_task(description, total=None)

    def callback(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total or None)

    with bar:
        yield callback


class _Events:
    """Logs `poll.progress` when `interval` has passed since the last one, and when done."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._logged: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if (done, total) == self._logged:
            return
        finished = total > 0 and done >= total
        if finished or self._last is None or now - self._last >= self._interval:
            self._last, self._logged = now, (done, total)
            percent = round(100 * done / total, 1) if total else 0.0
            log.info("poll.progress", done=done, total=total, percent=percent)

"""What one cycle works on and what it reports.

`Run` is a cycle's own state, made afresh by each `Cycle.run` (never kept on the `Cycle`); the
`CycleReport` is what it returns. Apart from `Cycle` so that the daemon, `status` and the tests
read a cycle's figures without the cycle's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from watcher.discovery import Discovered
from watcher.models import Trial


@dataclass(slots=True)
class Run:
    """One cycle's trials and what it learns on the way that later steps need."""

    trials: tuple[Trial, ...]
    """The watched trials chosen for this cycle, then those the saved searches add."""
    partial: bool
    """Only some of the watched trials are polled: the registry-wide gate neither skips nor moves."""
    found: Discovered
    new_trials: list[str] = field(default_factory=list)
    """Trials stored for the first time (their baseline): backfilled after the cycle."""


@dataclass(slots=True)
class CycleReport:
    started_at: datetime
    finished_at: datetime | None = None
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    """Trials stored for the first time: their first version is recorded, not reported."""
    failed: dict[str, str] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    skipped: bool = False
    strategy: str = ""
    api_error: str | None = None
    deliveries_failed: int = 0
    left_queued: list[str] = field(default_factory=list)
    """After delivering (`check`): one line per channel with messages still in the outbox, and why."""

    @property
    def result(self) -> str:
        if self.api_error:
            return "api_failed"
        return "partial" if self.failed else "ok"

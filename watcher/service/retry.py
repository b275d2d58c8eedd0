"""A sooner retry after an API-level failed cycle (pure).

One maintenance page on /version (an HTML 200, truncated JSON) fails a whole cycle; waiting for the
next tick would delay every change by up to `schedule.interval` (6 h by default). So the service
retries after `schedule.api_retry`, doubling on each further failure, capped at the tick interval,
and reset by a cycle that reaches the API. A retry never lands before the cycle's own 403 back-off
(`poll.api_retry_at`), and is not scheduled when the next tick comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_DOUBLINGS = 30  # far beyond any tick: keeps the multiplication small


@dataclass(slots=True)
class ApiRetry:
    first: timedelta
    failures: int = 0

    def after(
        self,
        failed: bool,
        *,
        now: datetime,
        tick: timedelta,
        next_tick: datetime | None,
        not_before: datetime | None = None,
    ) -> datetime | None:
        """When to retry after a cycle that `failed` at the API level (None: no retry; the tick will do)."""
        if not failed:
            self.failures = 0
            return None
        self.failures += 1
        if not self.first:
            return None
        when = now + min(self.first * (1 << min(self.failures - 1, MAX_DOUBLINGS)), tick)
        if not_before is not None and not_before > when:
            when = not_before
        if next_tick is not None and when >= next_tick:
            return None
        return when

"""Politeness towards the registry: one request rate for every thread, and server-requested pauses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from watcher.times import utc, utcnow


class RateLimiter:
    """Spaces requests `1/rate` seconds apart across every thread; `defer` pauses everyone."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._slowest = self._interval * 4
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def defer(self, seconds: float) -> None:
        """No request may start before `seconds` from now (a server asked us to back off)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)

    def slow_down(self) -> float:
        """Halve the rate, down to a quarter of the configured one (after a 429); returns the new rate."""
        with self._lock:
            self._interval = min(self._interval * 2, self._slowest)
            return 1.0 / self._interval if self._interval else 0.0


def retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (utc(when) - utcnow()).total_seconds()
    return min(max(seconds, 0.0), cap)

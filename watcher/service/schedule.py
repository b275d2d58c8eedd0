"""When the service polls: the clock, and the (pure) decisions of how often it ticks and which
trials a tick polls."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from watcher.config import Config
from watcher.models import Trial

MODES = ("", "new", "due", "full")
"""What a poll request asks for, weakest first; requests made while a cycle runs merge into the strongest."""


def merge_modes(queued: str, requested: str) -> str:
    """`full`: every trial; `due`: trials whose interval is up; `new`: never-checked trials only."""
    return max(queued, requested, key=MODES.index)


def tick_interval(config: Config) -> timedelta:
    """The clock runs at the shortest interval any trial asks for (the global one by default)."""
    intervals = [t.interval for t in config.watchlist.trials if t.interval]
    return min([config.settings.interval, *intervals])


def due_trials(
    trials: Sequence[Trial],
    last_checked: Mapping[str, datetime | None],
    *,
    now: datetime,
    default: timedelta,
    tick: timedelta,
) -> list[str]:
    """IDs to poll this tick: never checked, or their interval ends before the next tick is half over.

    The half-tick slack keeps a trial on its own interval from drifting a whole tick late because
    the previous check finished a few seconds after the tick that started it.
    """
    due = []
    for trial in trials:
        last = last_checked.get(trial.nct_id)
        if last is None or last + (trial.interval or default) <= now + tick / 2:
            due.append(trial.nct_id)
    return due


class Clock:
    """The service's clock (APScheduler, UTC): poll ticks every `tick_interval` with jitter, misfires
    coalesced; notify ticks; watchlist file checks. Its jobs only call `poll`, `notify` and `watch`,
    which raise flags for the service's workers, so they never overlap or block."""

    def __init__(self, *, poll: Callable[[], Any], notify: Callable[[], Any], watch: Callable[[], Any]) -> None:
        self._poll, self._notify, self._watch = poll, notify, watch
        self.scheduler: Any = None
        self.tick: timedelta | None = None
        self.jitter = timedelta()

    def start_paused(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
        self.scheduler.start(paused=True)

    def resume(self) -> None:
        self.scheduler.resume()

    @property
    def running(self) -> bool:
        return self.scheduler is not None and bool(self.scheduler.running)

    def schedule(self, config: Config, *, first: bool) -> bool:
        """Add the jobs (`first`), or move the poll job to `config`'s tick and jitter; True when it moved."""
        from apscheduler.triggers.interval import IntervalTrigger

        settings = config.settings
        tick = tick_interval(config)
        jitter = int(settings.jitter.total_seconds()) or None
        trigger = IntervalTrigger(seconds=tick.total_seconds(), jitter=jitter, timezone="UTC")
        moved = False
        if first:
            self.scheduler.add_job(
                self._poll, trigger, id="poll", max_instances=1, coalesce=True, misfire_grace_time=None
            )
            self.scheduler.add_job(
                self._notify,
                IntervalTrigger(seconds=settings.notify_interval.total_seconds(), timezone="UTC"),
                id="notify",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
            if settings.watch_interval:
                self.scheduler.add_job(
                    self._watch,
                    IntervalTrigger(seconds=settings.watch_interval.total_seconds(), timezone="UTC"),
                    id="watch",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )
        elif tick != self.tick or settings.jitter != self.jitter:
            self.scheduler.reschedule_job("poll", trigger=trigger)
            moved = True
        self.tick, self.jitter = tick, settings.jitter
        return moved

    def _next_run(self, job_id: str) -> datetime | None:
        # a job added after shutdown waits as "pending", without a next_run_time
        job = self.scheduler.get_job(job_id) if self.scheduler is not None else None
        return getattr(job, "next_run_time", None)

    def next_tick(self) -> datetime | None:
        return self._next_run("poll")

    def next_poll(self) -> datetime | None:
        """The next tick, or the retry (`retry_at`) when that comes first."""
        times = [t for t in (self._next_run("poll"), self._next_run("retry")) if t is not None]
        return min(times) if times else None

    def retry_at(self, when: datetime | None) -> None:
        """One extra poll request at `when` (replacing any pending one); None cancels it. It only raises the
        poll flag, as a tick does, so a retry never overlaps a cycle."""
        from apscheduler.jobstores.base import JobLookupError
        from apscheduler.triggers.date import DateTrigger

        if not self.running:
            return  # stopping: no more polls
        if when is not None:
            self.scheduler.add_job(
                self._poll,
                DateTrigger(run_date=when, timezone="UTC"),
                id="retry",
                replace_existing=True,
                misfire_grace_time=None,
            )
            return
        with contextlib.suppress(JobLookupError):  # none pending, or it fired just now
            self.scheduler.remove_job("retry")

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)

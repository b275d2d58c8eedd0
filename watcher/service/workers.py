"""The service's two worker threads: the cycle runner and the notifier.

Both wait for a flag the clock (or the main thread) raises, so a tick never blocks the clock and
two cycles never overlap: a tick during a cycle leaves one cycle queued, whatever it asked for
(`merge_modes`). A cycle that raises — anywhere, from choosing the due trials (the database may
be gone) to the bookkeeping after it — is logged and counted (`crashes`: the watchdog is withheld
after a few in a row), and the next tick tries again: the worker loop itself never ends on an
`Exception`. A cycle that failed at the API level is retried sooner than the next tick
(`watcher.service.retry`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from watcher.config import Config
from watcher.errors import StorageError, TrialWatchError
from watcher.service.record import ServiceRecord, safely
from watcher.service.retry import ApiRetry
from watcher.service.schedule import Clock, due_trials, merge_modes
from watcher.store.meta import API_RETRY_AT, SERVICE_NEXT_CYCLE

if TYPE_CHECKING:
    from watcher.cycle.report import CycleReport
    from watcher.registry.client import CtGovClient
    from watcher.store import Store

log = structlog.get_logger("watcher.service.daemon")

WAIT = 0.5
"""Seconds a worker waits for its flag before it looks at the stop request again."""


def poll_trials(
    config: Config,
    store: Store,
    client: CtGovClient,
    *,
    only: Collection[str] | None,
    write: Callable[[str], Any] = print,
) -> CycleReport:
    """One `Cycle` over `only` (None: every trial), deliveries left to the caller."""
    from watcher.cycle import Cycle
    from watcher.service.progress import poll_progress

    with poll_progress(tty=False) as progress:  # a service has no terminal: periodic poll.progress events
        return Cycle(config, store, client, write=write, progress=progress).run(deliver=False, only=only)


class CycleRunner:
    """Runs the cycles the clock asks for, one at a time, on the thread that calls `work`."""

    def __init__(
        self,
        *,
        config: Callable[[], Config],
        store: Store,
        client: CtGovClient,
        clock: Clock,
        record: ServiceRecord,
        retry: ApiRetry,
        stop: threading.Event,
        after: Callable[[], None],
        now: Callable[[], datetime],
        write: Callable[[str], Any],
    ) -> None:
        self.config = config  # the running configuration: a reload swaps it between cycles
        self.store = store
        self.client = client
        self.clock = clock
        self.record = record
        self.retry = retry
        self.stop = stop
        self.after = after  # what the service does after every cycle (notify, next cycle, heartbeat)
        self.now = now
        self.write = write
        self.wanted = threading.Event()
        self._mode = ""
        self._lock = threading.Lock()
        self.started: float | None = None
        """`time.monotonic()` when the cycle in flight started; None between cycles."""
        self.started_at: datetime | None = None
        self.crashes = 0
        """Cycles in a row that raised."""

    def request(self, mode: str = "due") -> None:
        """`full`: every trial (at start); `due`: trials whose interval is up (ticks); `new`: never-checked
        trials only (after a reload added some). Requests made while a cycle runs merge into one."""
        with self._lock:
            self._mode = merge_modes(self._mode, mode)
        self.wanted.set()

    def work(self) -> None:
        while not self.stop.is_set():
            if not self.wanted.wait(timeout=WAIT):
                continue
            if self.stop.is_set():
                return
            self.wanted.clear()
            with self._lock:
                mode, self._mode = self._mode or "due", ""
            try:
                self.run_due(mode)
            except Exception as exc:  # a bug outside the cycle's own guard: still only this cycle fails
                self._crashed(exc, stage="runner")

    def _crashed(self, exc: Exception, *, stage: str) -> None:
        self.crashes += 1
        if isinstance(exc, TrialWatchError):  # ours, already one line (a database that went away, say)
            log.error("cycle.crashed", stage=stage, error=f"{type(exc).__name__}: {exc}", consecutive=self.crashes)
        else:
            log.exception("cycle.crashed", stage=stage, error=f"{type(exc).__name__}: {exc}", consecutive=self.crashes)

    def run_due(self, mode: str) -> None:
        """Poll the trials `mode` asks for (see `request`), if any, in one cycle."""
        config = self.config()  # a reload swaps the reference; this cycle keeps the one it started with
        try:
            only = None if mode == "full" else self._due(config, mode)
        except Exception as exc:  # the database is unreachable or full: a failed cycle; the next tick retries
            self._crashed(exc, stage="due")
            self.after()
            return
        if only is not None and not only and (config.watchlist.trials or not config.watchlist.searches):
            log.debug("cycle.nothing_due", trials=len(config.watchlist.trials))
            return
        self.started = time.monotonic()
        self.started_at = self.now()
        self.record.cycle_started(self.started_at)
        try:
            report = poll_trials(config, self.store, self.client, only=only, write=self.write)
        except Exception as exc:  # the service outlives a broken cycle; the watchdog counts them
            self._crashed(exc, stage="cycle")
        else:
            self.crashes = 0
            safely(lambda: self._retry_after(report))
            if report.changed or report.failed:
                log.debug("cycle.report", changed=report.changed, failed=sorted(report.failed))
        finally:
            self.started = None
            self.record.cycle_started(None)
        self.after()

    def _retry_after(self, report: CycleReport) -> None:
        when = self.retry.after(
            report.api_error is not None,
            now=self.now(),
            tick=self.clock.tick or self.config().settings.interval,
            next_tick=self.clock.next_tick(),
            not_before=self.store.meta.get(API_RETRY_AT),
        )
        if when is not None:
            log.info(
                "cycle.retry_scheduled",
                at=when.isoformat(),
                failures=self.retry.failures,
                delay_s=round((when - self.now()).total_seconds()),
            )
        self.clock.retry_at(when)

    def _due(self, config: Config, mode: str) -> list[str]:
        last = {k: v.last_checked_at for k, v in self.store.trials.states().items()}
        if mode == "new":
            return [t.nct_id for t in config.watchlist.trials if last.get(t.nct_id) is None]
        return due_trials(
            config.watchlist.trials,
            last,
            now=self.now(),
            default=config.settings.interval,
            tick=self.clock.tick or config.settings.interval,
        )


class NotifyRunner:
    """Runs `notify_tick` when asked (on its timer, after each cycle), one call at a time."""

    def __init__(
        self,
        *,
        config: Callable[[], Config],
        store: Store,
        stop: threading.Event,
        delivered: Callable[[], None],
        now: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.store = store
        self.stop = stop
        self.delivered = delivered  # something went out: the main loop refreshes the status line
        self.now = now
        self.wanted = threading.Event()

    def request(self) -> None:
        self.wanted.set()

    def work(self) -> None:
        from watcher.notify.payloads import notify_tick

        while not self.stop.is_set():
            if not self.wanted.wait(timeout=WAIT):
                continue
            if self.stop.is_set():
                return
            self.wanted.clear()
            try:
                next_poll = self.store.meta.get(SERVICE_NEXT_CYCLE)
                deliveries = notify_tick(self.config(), self.store, now=self.now, next_poll=next_poll, stop=self.stop)
            except StorageError as exc:  # the database went away: one line, the next tick tries again
                log.error("notify.tick_failed", error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400
            except Exception as exc:
                log.exception("notify.tick_crashed", error=f"{type(exc).__name__}: {exc}")
            else:
                if deliveries:
                    log.info(
                        "notify.tick",
                        delivered=sum(1 for d in deliveries if d.accepted),
                        failed=sum(1 for d in deliveries if not d.accepted),
                    )
                    self.delivered()

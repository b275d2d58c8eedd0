"""The long-running service: a clock, one cycle at a time, a live watchlist, systemd in the loop.

Threads and who owns what:

    main thread     signals (TERM/INT stop, HUP reloads), reloads, watchdog pings, heartbeat, shutdown
    APScheduler     the clock only: poll ticks (interval + jitter, misfires coalesced), notify ticks,
                    watchlist file checks; its jobs just raise flags, so they never overlap or block
    cycle runner    runs cycles, one at a time; a tick during a cycle leaves one cycle pending
    notifier        runs `notify_tick` on its timer and after each cycle, one call at a time

Both workers are daemon threads so that a stop can *abandon* a cycle that does not finish within
`schedule.stop_timeout`: every store write is its own transaction, so what is abandoned is at most
one trial's unwritten work, which the next cycle redoes.

The clock and which trials a tick polls live in `schedule`, noticing a changed watchlist and what a
reload keeps in `reload`; the cycle itself is `watcher.cycle.Cycle`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from watcher.config import Config
from watcher.errors import ConfigError
from watcher.service.lastgood import remember
from watcher.service.recovery import close_interrupted_cycles, record_abandoned_stop
from watcher.service.reload import FileWatch, rejection_alert, reloaded_config
from watcher.service.retry import ApiRetry
from watcher.service.schedule import Clock, due_trials, merge_modes, tick_interval
from watcher.service.sdnotify import Notifier, watchdog_period
from watcher.service.signals import StopSignals, Wakeup
from watcher.service.status import (
    HEARTBEAT_EVERY,
    META_CYCLE_STARTED,
    META_HEALTH,
    META_HEARTBEAT,
    META_NEXT_CYCLE,
    META_PID,
    META_STARTED,
    META_STATE,
    META_STOPPED,
    META_TRIALS,
    META_WATCHLIST_ERROR,
    summary,
    watched_count,
)

if TYPE_CHECKING:
    from watcher.cycle.report import CycleReport
    from watcher.registry.client import CtGovClient
    from watcher.store import Store

log = structlog.get_logger("watcher.service.daemon")

CRASHES_BEFORE_UNHEALTHY = 3
"""Cycles that raise in a row before the watchdog is withheld (systemd then restarts the service)."""


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


# -- the service ---------------------------------------------------------------------------------


class Service:
    def __init__(
        self,
        config: Config,
        config_path: Path | None,
        *,
        environ: Mapping[str, str] = os.environ,
        write: Callable[[str], Any] = print,
        rejected: tuple[str, ...] = (),
    ) -> None:
        from watcher.registry.client import CtGovClient
        from watcher.store import Store
        from watcher.store.database import utcnow

        self.config = config
        self.config_path = config_path
        self.environ = environ
        self.write = write
        self.now = utcnow
        self.store = Store(config.settings.storage_url)
        self.client = CtGovClient(config.settings.api)
        self.sd = Notifier(environ)
        self.watchdog_every = watchdog_period(environ)
        self.watch = FileWatch(config.watchlist.path)
        self.rejected = rejected  # the broken watchlist's problems when started on the last good copy
        self.retry = ApiRetry(config.settings.api_retry)

        self.stop_requested = threading.Event()  # set by the main loop once a stop signal arrived
        self.wake = Wakeup()  # the main loop has something to do
        self.signals = StopSignals(self.wake)
        self._reload_reason: str | None = None
        self._cycle_wanted = threading.Event()
        self._cycle_mode = ""
        self._notify_wanted = threading.Event()
        self._lock = threading.Lock()
        self._cycle_started: float | None = None
        self._cycle_started_at: datetime | None = None
        self._crashes = 0
        self._last_rejection: tuple[str, ...] | None = None
        self._unhealthy: str | None = None
        self.clock = Clock(poll=self.request_cycle, notify=self.request_notify, watch=self._check_watchlist_file)
        self._threads: list[threading.Thread] = []

    # -- signals (main thread) -----------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """Handlers that only record and wake (see `watcher.service.signals`): no logging, no lock."""
        signal.signal(signal.SIGTERM, self.signals.handler)
        signal.signal(signal.SIGINT, self.signals.handler)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload_reason = "SIGHUP"  # a plain assignment: the main loop reloads and logs
        self.wake.set()

    def _take_stop_signal(self) -> bool:
        """In the main loop, after a wake-up: turn a recorded stop signal into the stop, and say so."""
        if self.signals.requested and not self.stop_requested.is_set():
            self.stop_requested.set()
            log.info("service.stopping", signal=self.signals.first)
        return self.stop_requested.is_set()

    def request_reload(self, reason: str) -> None:
        self._reload_reason = reason
        self.wake.set()

    # -- requests from the clock ---------------------------------------------------------------

    def request_cycle(self, mode: str = "due") -> None:
        """`full`: every trial (at start); `due`: trials whose interval is up (ticks); `new`: never-checked
        trials only (after a reload added some). Requests made while a cycle runs merge into one."""
        with self._lock:
            self._cycle_mode = merge_modes(self._cycle_mode, mode)
        self._cycle_wanted.set()

    def request_notify(self) -> None:
        self._notify_wanted.set()

    def _check_watchlist_file(self) -> None:
        if self.watch.changed():
            self.request_reload("watchlist changed")

    # -- workers -------------------------------------------------------------------------------

    def _cycle_worker(self) -> None:
        while not self.stop_requested.is_set():
            if not self._cycle_wanted.wait(timeout=0.5):
                continue
            if self.stop_requested.is_set():
                return
            self._cycle_wanted.clear()
            with self._lock:
                mode, self._cycle_mode = self._cycle_mode or "due", ""
            self.run_due(mode)

    def run_due(self, mode: str) -> None:
        """Poll the trials `mode` asks for (see `request_cycle`), if any, in one cycle."""
        config = self.config  # a reload swaps the reference; this cycle keeps the one it started with
        only = None if mode == "full" else self._due(config, mode)
        if only is not None and not only and (config.watchlist.trials or not config.watchlist.searches):
            log.debug("cycle.nothing_due", trials=len(config.watchlist.trials))
            return
        self._cycle_started = time.monotonic()
        self._cycle_started_at = self.now()
        self.store.set_meta(META_CYCLE_STARTED, self._cycle_started_at.isoformat())
        try:
            report = poll_trials(config, self.store, self.client, only=only, write=self.write)
        except Exception as exc:  # the service outlives a broken cycle; the watchdog counts them
            self._crashes += 1
            log.exception("cycle.crashed", error=f"{type(exc).__name__}: {exc}", consecutive=self._crashes)
        else:
            self._crashes = 0
            self._safely(lambda: self._retry_after(report))
            if report.changed or report.failed:
                log.debug("cycle.report", changed=report.changed, failed=sorted(report.failed))
        finally:
            self._cycle_started = None
            self._safely(lambda: self.store.set_meta(META_CYCLE_STARTED, None))
        self.request_notify()
        self._record_next_cycle()
        self._heartbeat()
        self.wake.set()

    def _retry_after(self, report: CycleReport) -> None:
        from watcher.cycle.report import META_API_RETRY_AT, iso

        when = self.retry.after(
            report.api_error is not None,
            now=self.now(),
            tick=self.clock.tick or self.config.settings.interval,
            next_tick=self.clock.next_tick(),
            not_before=iso(self.store.get_meta(META_API_RETRY_AT)),
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

    def _notify_worker(self) -> None:
        from watcher.notify.payloads import notify_tick

        while not self.stop_requested.is_set():
            if not self._notify_wanted.wait(timeout=0.5):
                continue
            if self.stop_requested.is_set():
                return
            self._notify_wanted.clear()
            try:
                next_poll = self.store.get_meta(META_NEXT_CYCLE)
                deliveries = notify_tick(
                    self.config,
                    self.store,
                    now=self.now,
                    next_poll=datetime.fromisoformat(next_poll) if next_poll else None,
                )
            except Exception as exc:
                log.exception("notify.tick_crashed", error=f"{type(exc).__name__}: {exc}")
            else:
                if deliveries:
                    log.info(
                        "notify.tick",
                        delivered=sum(1 for d in deliveries if d.accepted),
                        failed=sum(1 for d in deliveries if not d.accepted),
                    )
                    self.wake.set()

    # -- the clock -----------------------------------------------------------------------------

    def _schedule(self, *, first: bool) -> None:
        if self.clock.schedule(self.config, first=first):
            log.info(
                "service.rescheduled",
                tick_s=tick_interval(self.config).total_seconds(),
                jitter_s=int(self.config.settings.jitter.total_seconds()),
            )
        self._record_next_cycle()

    def _next_cycle(self) -> datetime | None:
        return self.clock.next_poll()

    def _record_next_cycle(self) -> None:
        nxt = self._next_cycle()
        self._safely(lambda: self.store.set_meta(META_NEXT_CYCLE, nxt.isoformat() if nxt else None))

    # -- reload (main thread) ------------------------------------------------------------------

    def reload(self, reason: str) -> bool:
        """Swap in the new configuration, or keep the running one and say exactly what is wrong."""
        self.sd.reloading()
        self.watch.sync()
        old = self.config
        try:
            new, later = reloaded_config(old, self.config_path, self.environ)
        except ConfigError as exc:
            self._reject(tuple(str(p) for p in exc.problems), reason)
            self.sd.ready(self.status_line())
            return False
        for what in later:
            log.warning("config.restart_required", reason=what)
        before = {t.nct_id for t in old.watchlist.trials}
        after = {t.nct_id for t in new.watchlist.trials}
        self.config = new
        self._safely(lambda: remember(new))
        if self._last_rejection is not None:
            self._last_rejection = None
            self._safely(lambda: self.store.set_meta(META_WATCHLIST_ERROR, None))
        searches = set(new.watchlist.searches) - set(old.watchlist.searches)  # added or edited
        log.info(
            "config.reloaded",
            reason=reason,
            trials=len(after),
            added=sorted(after - before),
            removed=sorted(before - after),
            watchlist=str(new.watchlist.path),
            searches_changed=sorted(s.name for s in searches),
        )
        self._set_meta({META_TRIALS: watched_count(self.config, self.store)})
        self._schedule(first=False)
        if searches:
            self.request_cycle("full")  # a new search's baseline now; unchanged trials cost only the /version gate
        elif after - before:
            self.request_cycle("new")  # new trials get their baseline now, not at the next tick
        self.sd.ready(self.status_line())
        return True

    def _reject(self, problems: tuple[str, ...], reason: str) -> None:
        kept = len(self.config.watchlist.trials)
        log.error("watchlist.rejected", reason=reason, problems=list(problems), kept_trials=kept)
        if problems == self._last_rejection:
            return  # said once already; a second save of the same mistake is not news
        self._last_rejection = problems
        self._safely(lambda: self.store.set_meta(META_WATCHLIST_ERROR, list(problems)))
        text, messages = rejection_alert(self.config, problems)
        if messages:
            self._safely(lambda: self.store.outbox.enqueue(messages, self.now()))
            self.request_notify()
        else:
            self.write(text)
            sys.stdout.flush()

    # -- health and status (main thread) -------------------------------------------------------

    def health(self) -> str | None:
        """None when cycles are healthy, else why: the watchdog is withheld while this is not None."""
        if not all(t.is_alive() for t in self._threads):
            return "a worker thread died"
        if not self.clock.running:
            return "the scheduler is not running"
        started = self._cycle_started
        limit = self.config.settings.cycle_timeout.total_seconds()
        if started is not None and time.monotonic() - started > limit:
            return f"the cycle in flight has run for more than {self.config.settings.cycle_timeout}"
        if self._crashes >= CRASHES_BEFORE_UNHEALTHY:
            return f"the last {self._crashes} cycles crashed"
        return None

    def status_line(self) -> str:
        try:
            return summary(watched_count(self.config, self.store), self.store, next_cycle=self._next_cycle())
        except Exception as exc:
            return f"{len(self.config.watchlist.trials)} trials watched; status unavailable: {type(exc).__name__}"

    def _heartbeat(self) -> None:
        self._safely(lambda: self.store.set_meta(META_HEARTBEAT, self.now().isoformat()))

    def _set_meta(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            self._safely(lambda k=key, v=value: self.store.set_meta(k, v))  # type: ignore[misc]

    def _safely(self, action: Callable[[], Any]) -> None:
        """Bookkeeping writes must never take the service down (the database may be briefly busy)."""
        try:
            action()
        except Exception as exc:
            log.warning("service.bookkeeping_failed", error=f"{type(exc).__name__}: {exc}")

    # -- lifecycle -----------------------------------------------------------------------------

    def serve(self) -> int:
        settings = self.config.settings
        self._safely(lambda: close_interrupted_cycles(self.store, self.now()))
        if self.store.get_meta(META_WATCHLIST_ERROR) == list(self.rejected):
            self._last_rejection = self.rejected  # alerted before the restart: not news
        self._set_meta(
            {
                META_STATE: "running",
                META_PID: os.getpid(),
                META_STARTED: self.now().isoformat(),
                META_STOPPED: None,
                META_CYCLE_STARTED: None,
                META_HEALTH: "ok",
                META_WATCHLIST_ERROR: list(self.rejected) or None,
                META_TRIALS: watched_count(self.config, self.store),
            }
        )
        if self.rejected:
            self._reject(self.rejected, "start")
        else:
            self._safely(lambda: remember(self.config))
        self._heartbeat()
        self._threads = [
            threading.Thread(target=self._cycle_worker, name="cycle-runner", daemon=True),
            threading.Thread(target=self._notify_worker, name="notifier", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.clock.start_paused()
        self._schedule(first=True)
        self.clock.resume()
        if settings.run_at_start:
            self.request_cycle("full")
        log.info(
            "service.started",
            trials=len(self.config.watchlist.trials),
            interval_s=settings.interval.total_seconds(),
            tick_s=tick_interval(self.config).total_seconds(),
            jitter_s=settings.jitter.total_seconds(),
            run_at_start=settings.run_at_start,
            watchlist=str(self.config.watchlist.path),
            watch_s=settings.watch_interval.total_seconds(),
            systemd=self.sd.enabled,
            watchdog_s=self.watchdog_every.total_seconds() if self.watchdog_every else None,
            pid=os.getpid(),
        )
        self.sd.ready(self.status_line())
        self._main_loop()
        return self._shutdown()

    def _main_loop(self) -> None:
        period = min(self.watchdog_every or timedelta(seconds=15), timedelta(seconds=15)).total_seconds()
        last_beat = time.monotonic()
        last_status = ""
        while not self.stop_requested.is_set():
            if self.watchdog_every is not None and self._unhealthy is None:
                self.sd.watchdog()
            self.wake.wait(timeout=period)
            if self._take_stop_signal():
                break
            reason, self._reload_reason = self._reload_reason, None
            if reason is not None:
                self.reload(reason)
            problem = self.health()
            if problem != self._unhealthy:
                if problem:
                    log.error("service.unhealthy", reason=problem, watchdog=self.watchdog_every is not None)
                else:
                    log.info("service.healthy")
                self._unhealthy = problem
                self._set_meta({META_HEALTH: problem or "ok"})
            status = f"UNHEALTHY: {problem}; " + self.status_line() if problem else self.status_line()
            if status != last_status:
                self.sd.status(status)
                last_status = status
            if time.monotonic() - last_beat >= HEARTBEAT_EVERY.total_seconds():
                self._heartbeat()
                last_beat = time.monotonic()

    def _shutdown(self) -> int:
        bound = self.config.settings.stop_timeout
        in_flight = self._cycle_started is not None
        self.sd.stopping(
            "Stopping: finishing the cycle in flight" if in_flight else "Stopping", extend=bound + timedelta(seconds=10)
        )
        self._safely(lambda: self.store.set_meta(META_STATE, "stopping"))
        self.clock.stop()
        self._cycle_wanted.set()
        self._notify_wanted.set()
        deadline = time.monotonic() + bound.total_seconds()
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline and not self.signals.forced:
                thread.join(timeout=0.2)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            # Abandon: each store write is one transaction, so nothing is half-written; the cycle's
            # unfinished trials are simply checked again next time. Do not touch the store or the
            # client the stuck thread is using.
            log.warning("service.abandoned", threads=stuck, after_s=bound.total_seconds(), forced=self.signals.forced)
            self._safely(
                lambda: record_abandoned_stop(self.config.settings.storage_url, self.now(), self._cycle_started_at)
            )
            self.sd.close()
            log.info("service.stopped", clean=False)
            return 0
        self._set_meta(
            {
                META_STATE: "stopped",
                META_STOPPED: self.now().isoformat(),
                META_NEXT_CYCLE: None,
                META_CYCLE_STARTED: None,
            }
        )
        self.client.close()
        self.store.close()
        self.sd.close()
        log.info("service.stopped", clean=True)
        return 0


def serve(
    config: Config, config_path: Path | None, *, environ: Mapping[str, str] = os.environ, rejected: tuple[str, ...] = ()
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 also when a stuck cycle was abandoned).

    On SQLite a second service of the same database is refused (StorageError names the first)."""
    from watcher.store.locks import service_lock

    with service_lock(config.settings.storage_url):
        service = Service(config, config_path, environ=environ, rejected=rejected)
        try:
            service.install_signal_handlers()
            return service.serve()
        except BaseException:
            service.store.close()  # a stop closes it; one that abandons a stuck cycle leaves it to that thread
            raise

"""The long-running service: a clock, one cycle at a time, a live watchlist, systemd in the loop.

Threads and who owns what:

    main thread     signals (TERM/INT stop, HUP reloads), reloads, watchdog pings, heartbeat, shutdown
    APScheduler     the clock only: poll ticks (interval + jitter, misfires coalesced), notify ticks,
                    watchlist file checks; its jobs just raise flags, so they never overlap or block
    cycle runner    runs cycles, one at a time; a tick during a cycle leaves one cycle queued
    notifier        runs `notify_tick` on its timer and after each cycle, one call at a time

Both workers are daemon threads so that a stop can *abandon* a cycle that does not finish within
`schedule.stop_timeout`: every store write is its own transaction, so what is abandoned is at most
one trial's unwritten work, which the next cycle redoes.

A worker that dies anyway (its loop guards every `Exception`) ends the service: logged as JSON,
alerted on the channels, exit 1 for the supervisor to restart it (`watcher.service.recovery`).

The workers are `workers` (the cycle itself is `watcher.cycle.Cycle`); the clock and which trials
a tick polls live in `schedule`, noticing a changed watchlist and what a reload keeps in `reload`,
what the service writes down about itself for `trialwatch status` in `record`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import structlog

from watcher.config import Config
from watcher.cycle.alerts import Alert
from watcher.errors import ConfigError
from watcher.service.lastgood import remember
from watcher.service.record import ServiceRecord, safely
from watcher.service.recovery import (
    EXIT_THREAD_DIED,
    announce,
    check_database_present,
    check_database_sound,
    close_interrupted_cycles,
    install_thread_hook,
    record_abandoned_stop,
    record_database,
    short_reason,
)
from watcher.service.reload import FileWatch, rejection_alert, reloaded_config
from watcher.service.retry import ApiRetry
from watcher.service.schedule import Clock, tick_interval
from watcher.service.sdnotify import Notifier, watchdog_period
from watcher.service.signals import StopSignals, Wakeup
from watcher.service.status import HEARTBEAT_EVERY, summary, watched_count
from watcher.service.workers import CycleRunner, NotifyRunner
from watcher.store.meta import SERVICE_WATCHLIST_ERROR

T = TypeVar("T")

log = structlog.get_logger("watcher.service.daemon")

CRASHES_BEFORE_UNHEALTHY = 3
"""Cycles that raise in a row before the watchdog is withheld (systemd then restarts the service)."""


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
        from watcher.times import utcnow

        self.config = config
        self.config_path = config_path
        self.environ = environ
        self.write = write
        self.now = utcnow
        self.sd = Notifier(environ)
        with self.sd.starting_slowly("Opening the database (a schema upgrade may take minutes)"):
            self.store = Store(config.settings.storage_url)
        self.client = CtGovClient(config.settings.api)
        self.watchdog_every = watchdog_period(environ)
        self.watch = FileWatch(config.watchlist.path)
        self.rejected = rejected  # the broken watchlist's problems when started on the last good copy
        self.record = ServiceRecord(self.store, self.now)

        self.stop_requested = threading.Event()  # set by the main loop once a stop signal arrived
        self.wake = Wakeup()  # the main loop has something to do
        self.signals = StopSignals(self.wake)
        self._reload_reason: str | None = None
        self._last_rejection: tuple[str, ...] | None = None
        self._unhealthy: str | None = None
        self._dead: str | None = None  # set once a worker thread died: the service ends
        self.clock = Clock(poll=self.request_cycle, notify=self.request_notify, watch=self._check_watchlist_file)
        self.cycles = CycleRunner(
            config=lambda: self.config,
            store=self.store,
            client=self.client,
            clock=self.clock,
            record=self.record,
            retry=ApiRetry(config.settings.api_retry),
            stop=self.stop_requested,
            after=self._after_cycle,
            now=self.now,
            write=write,
        )
        self.notifier = NotifyRunner(
            config=lambda: self.config,
            store=self.store,
            stop=self.stop_requested,
            delivered=self.wake.set,
            now=self.now,
        )
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
        self.cycles.request(mode)

    def request_notify(self) -> None:
        self.notifier.request()

    def _check_watchlist_file(self) -> None:
        if self.watch.changed():
            self.request_reload("watchlist changed")

    def _after_cycle(self) -> None:
        self.request_notify()
        self._record_next_cycle()
        self.record.heartbeat()
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
        self.record.next_cycle(self._next_cycle())

    # -- reload (main thread) ------------------------------------------------------------------

    def reload(self, reason: str) -> bool:
        """Swap in the new configuration, or keep the running one and say exactly what is wrong."""
        self.sd.reloading()
        self.watch.sync()
        old = self.config
        try:
            new, later = self._off_loop(lambda: reloaded_config(old, self.config_path, self.environ))
        except ConfigError as exc:
            self._reject(tuple(str(p) for p in exc.problems), reason)
            self.sd.ready(self.status_line())
            return False
        for what in later:
            log.warning("config.restart_required", reason=what)
        before = {t.nct_id for t in old.watchlist.trials}
        after = {t.nct_id for t in new.watchlist.trials}
        self.config = new
        self._off_loop(lambda: safely(lambda: remember(new)))
        if self._last_rejection is not None:
            self._last_rejection = None
            self.record.watchlist_accepted()
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
        self.record.trials(watched_count(self.config, self.store))
        self._schedule(first=False)
        if searches:
            self.request_cycle("full")  # a new search's baseline now; unchanged trials cost only the /version gate
        elif after - before:
            self.request_cycle("new")  # new trials get their baseline now, not at the next tick
        self.sd.ready(self.status_line())
        return True

    def _off_loop(self, work: Callable[[], T]) -> T:
        """`work()` in a thread of its own while this thread keeps feeding the watchdog: reading a
        watchlist of a million entries takes minutes, far past `WatchdogSec`, and the service is fine
        while it reads. Whatever `work` raises is raised here."""
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, work()))
            except BaseException as exc:  # handed to the main thread, which decides
                outcome.append((False, exc))

        reader = threading.Thread(target=run, name="config-reader", daemon=True)
        reader.start()
        while reader.is_alive():
            reader.join(timeout=self._ping_period())
            if reader.is_alive() and self.watchdog_every is not None and self._unhealthy is None:
                self.sd.watchdog()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _ping_period(self) -> float:
        return min(self.watchdog_every or timedelta(seconds=15), timedelta(seconds=15)).total_seconds()

    def _reject(self, problems: tuple[str, ...], reason: str) -> None:
        kept = len(self.config.watchlist.trials)
        log.error("watchlist.rejected", reason=reason, problems=list(problems), kept_trials=kept)
        if problems == self._last_rejection:
            return  # said once already; a second save of the same mistake is not news
        text, messages = rejection_alert(self.config, problems)
        if self.record.watchlist_rejected(problems, messages):  # the alert with the state it reports
            self._last_rejection = problems  # else the next reload says it again
        if messages:
            self.request_notify()
        else:
            self.write(text)
            sys.stdout.flush()

    # -- health and status (main thread) -------------------------------------------------------

    def _thread_died(self, name: str, exc: BaseException | None) -> None:
        """`threading.excepthook`'s follow-up (in the dying thread): a worker gone ends the service."""
        if name in {t.name for t in self._threads}:
            self._dead = f"the {name} thread died ({short_reason(exc)})"
            self.wake.set()

    def health(self) -> str | None:
        """None when cycles are healthy, else why: the watchdog is withheld while this is not None."""
        if self._dead is not None:
            return self._dead
        if not all(t.is_alive() for t in self._threads):
            self._dead = "a worker thread died"
            return self._dead
        if not self.clock.running:
            return "the scheduler is not running"
        started = self.cycles.started
        limit = self.config.settings.cycle_timeout.total_seconds()
        if started is not None and time.monotonic() - started > limit:
            return f"the cycle in flight has run for more than {self.config.settings.cycle_timeout}"
        if self.cycles.crashes >= CRASHES_BEFORE_UNHEALTHY:
            return f"the last {self.cycles.crashes} cycles crashed"
        return None

    def status_line(self) -> str:
        try:
            return summary(watched_count(self.config, self.store), self.store, next_cycle=self._next_cycle())
        except Exception as exc:
            return f"{len(self.config.watchlist.trials)} trials watched; status unavailable: {type(exc).__name__}"

    # -- lifecycle -----------------------------------------------------------------------------

    def serve(self) -> int:
        settings = self.config.settings
        safely(lambda: close_interrupted_cycles(self.store, self.now()))
        if self.store.meta.get(SERVICE_WATCHLIST_ERROR) == list(self.rejected):
            self._last_rejection = self.rejected  # alerted before the restart: not news
        self.record.started(trials=watched_count(self.config, self.store), rejected=self.rejected)
        if self.rejected:
            self._reject(self.rejected, "start")
        else:
            safely(lambda: remember(self.config))
        self.record.heartbeat()
        install_thread_hook(self._thread_died)
        self._threads = [
            threading.Thread(target=self.cycles.work, name="cycle-runner", daemon=True),
            threading.Thread(target=self.notifier.work, name="notifier", daemon=True),
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
        if self._dead is not None:
            return self._die(self._dead)
        return self._shutdown()

    def _main_loop(self) -> None:
        period = self._ping_period()
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
                self.record.health(problem)
            if self._dead is not None:
                return
            status = f"UNHEALTHY: {problem}; " + self.status_line() if problem else self.status_line()
            if status != last_status:
                self.sd.status(status)
                last_status = status
            if time.monotonic() - last_beat >= HEARTBEAT_EVERY.total_seconds():
                self.record.heartbeat()
                last_beat = time.monotonic()

    def _die(self, reason: str) -> int:
        """A worker thread is gone: say so on every channel, stop the rest, exit non-zero."""
        log.critical("service.exiting", reason=reason, exit_code=EXIT_THREAD_DIED)
        alert = Alert(
            "TrialWatch: the service stopped, a worker thread died",
            f"{reason}.\n\nThe service exits with code {EXIT_THREAD_DIED} so that its supervisor restarts it "
            "(systemd: Restart=on-failure); the log holds the traceback (event service.thread_died). "
            "If it keeps happening, run `trialwatch doctor` and look at the log.",
        )
        self.stop_requested.set()
        # Told once the notifier has stopped: a tick of its own could otherwise hold the channel while
        # the alert waits, then claim nothing more once stopping, and the alert would stay queued.
        self._shutdown(last_word=lambda: announce(self.config, self.store, alert, now=self.now, write=self.write))
        return EXIT_THREAD_DIED

    def _shutdown(self, last_word: Callable[[], None] | None = None) -> int:
        from watcher.notify.delivery import finish_sends

        bound = self.config.settings.stop_timeout
        in_flight = self.cycles.started is not None
        self.sd.stopping(
            "Stopping: finishing the cycle in flight" if in_flight else "Stopping", extend=bound + timedelta(seconds=10)
        )
        self.record.stopping()
        self.clock.stop()
        self.cycles.wanted.set()
        self.notifier.wanted.set()
        deadline = time.monotonic() + bound.total_seconds()
        for thread in self._threads:
            while thread.is_alive() and time.monotonic() < deadline and not self.signals.forced:
                thread.join(timeout=0.2)
        # a channel's send in flight finishes (bounded by its timeout) and is marked, or it would go again
        sending = finish_sends(0.0 if self.signals.forced else max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()] + sending
        if last_word is not None:
            last_word()
        if stuck:
            # Abandon: each store write is one transaction, so nothing is half-written; the cycle's
            # unfinished trials are simply checked again next time. Do not touch the store or the
            # client the stuck thread is using.
            log.warning("service.abandoned", threads=stuck, after_s=bound.total_seconds(), forced=self.signals.forced)
            safely(lambda: record_abandoned_stop(self.config.settings.storage_url, self.now(), self.cycles.started_at))
            self.sd.close()
            log.info("service.stopped", clean=False)
            return 0
        self.record.stopped()
        self.client.close()
        self.store.close()
        self.sd.close()
        log.info("service.stopped", clean=True)
        return 0


def serve(
    config: Config, config_path: Path | None, *, environ: Mapping[str, str] = os.environ, rejected: tuple[str, ...] = ()
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 also when a stuck cycle was abandoned, 1 when a
    worker thread died).

    On SQLite a second service of the same database is refused (StorageError names the first), and so
    are a database the service ran on that is gone, and one `PRAGMA quick_check` finds damaged."""
    from watcher.store.locks import service_lock

    check_database_present(config.settings)  # before anything creates an empty one
    with service_lock(config.settings.storage_url):
        service = Service(config, config_path, environ=environ, rejected=rejected)
        try:
            check_database_sound(service.store)
            record_database(config.settings, service.now())
            service.install_signal_handlers()
            return service.serve()
        except BaseException:
            service.store.close()  # a stop closes it; one that abandons a stuck cycle leaves it to that thread
            raise

"""The long-running service: a scheduler that runs one cycle at a time until told to stop."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import structlog

from watcher.config import Config

log = structlog.get_logger("watcher.daemon")


def serve(config: Config, config_path: Path | None) -> int:
    """Poll at start (if configured) and every interval; SIGTERM/SIGINT stop after the cycle in flight."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    from watcher.check import Cycle
    from watcher.ctgov import CtGovClient
    from watcher.store import Store, utcnow

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    settings = config.settings
    store = Store(settings.storage_url)
    client = CtGovClient(settings.api)
    cycle = Cycle(config, store, client)
    lock = threading.Lock()

    def one_cycle() -> None:
        if stop.is_set() or not lock.acquire(blocking=False):
            return
        try:
            cycle.run()
        except Exception:
            log.exception("cycle.crashed")
        finally:
            lock.release()

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        one_cycle, IntervalTrigger(seconds=settings.interval.total_seconds(),
                                   jitter=int(settings.jitter.total_seconds()) or None),
        id="poll", max_instances=1, coalesce=True, misfire_grace_time=None,
        next_run_time=utcnow() if settings.run_at_start else None)
    scheduler.start()
    log.info("service.started", trials=len(config.watchlist.trials), interval_s=settings.interval.total_seconds())
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        client.close()
        store.close()
        log.info("service.stopped")
    return 0

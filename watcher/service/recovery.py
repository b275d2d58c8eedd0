"""What the service does after something went wrong: the traces a killed or stuck service leaves in
the store and how a service cleans them up; a SQLite database that is gone or damaged at start
(refused, not silently replaced by an empty one); and the end of a service whose worker thread died.

The cycle runner and the notifier guard their own loops, so a thread dying is a bug or something
worse (a MemoryError outside a cycle, say). A service whose cycle thread is gone is alive to a
supervisor but useless, so it ends instead, non-zero, for the supervisor (systemd's
`Restart=on-failure`, Docker's restart policy) to start it again. Before that it says why: one JSON
log event with the traceback (`threading.excepthook`, not Python's raw print to stderr), and an
alert to every channel — through the outbox when the database answers, else straight to each
channel, because the database being gone may be the very reason.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from watcher.config import Config
from watcher.config.settings import Settings
from watcher.cycle.alerts import Alert, alert_messages, alert_payload, alert_text
from watcher.errors import StorageError
from watcher.files import write_atomically
from watcher.service.record import ServiceRecord
from watcher.store import Store
from watcher.store.connection import sqlite_path
from watcher.store.database import damaged

log = structlog.get_logger("watcher.service.recovery")


def close_interrupted_cycles(store: Store, now: datetime) -> int:
    """A cycle log row still "running" at start belongs to a killed process, unless another
    service (PostgreSQL) is in a cycle right now: then its lock is taken and nothing is closed."""
    with store.exclusive("cycle") as free:
        closed = store.cycles.close_open(now, result="interrupted") if free else 0
    if closed:
        log.warning("service.interrupted_cycles", count=closed)
    return closed


def record_abandoned_stop(storage_url: str, now: datetime, since: datetime | None) -> None:
    """After abandoning a stuck cycle, tell the truth in `status` without touching the store
    the stuck thread still uses: a connection of our own marks the cycle and the service."""
    with Store(storage_url, create=False) as fresh:
        fresh.cycles.close_open(now, result="abandoned", since=since)
        ServiceRecord(fresh, lambda: now).stopped()


# -- a database that was there ------------------------------------------------------------------

INSTALLED_NAME = "trialwatch.installed"
"""In the state directory: which SQLite database the service ran on, and since when. Named apart from
the database, so `rm trialwatch.sqlite*` (or a lost volume holding only the database) leaves it."""


def installed_marker(settings: Settings) -> Path:
    return settings.state_dir / INSTALLED_NAME


def check_database_present(settings: Settings) -> None:
    """Refuse to start on a SQLite database that existed and is gone: a new empty one would take every
    trial's current record as its baseline in silence, its history and unsent messages lost."""
    database = sqlite_path(settings.storage_url)
    marker = installed_marker(settings)
    if database is None or database.exists() or not marker.is_file():
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if recorded.get("database") != str(database.resolve()):
        return  # storage.url was changed on purpose: a new database
    raise StorageError(
        f"the database {database} is gone: the service ran on it since {recorded.get('created_at', '?')}. "
        "Starting on an empty one would re-baseline every trial and lose its history and unsent messages. "
        f"Restore it from a backup; or, to start afresh on purpose, delete {marker}"
    )


def record_database(settings: Settings, now: datetime) -> None:
    """Write the marker `check_database_present` reads (once: it keeps the first start's time)."""
    database = sqlite_path(settings.storage_url)
    marker = installed_marker(settings)
    if database is None or not database.exists():
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if recorded.get("database") == str(database.resolve()):
        return
    body = {"database": str(database.resolve()), "created_at": now.isoformat(timespec="seconds")}
    write_atomically(marker, json.dumps(body) + "\n", mode=0o600)


def check_database_sound(store: Store) -> None:
    """SQLite's quick check at start: a damaged file is refused, naming the first problem, before
    the service writes on top of it."""
    problems = store.integrity(quick=True)
    if problems:
        raise damaged(store.url, problems)


# -- a worker thread died ----------------------------------------------------------------------

EXIT_THREAD_DIED = 1
"""The exit code after a worker thread died: a runtime failure, which `Restart=on-failure` restarts."""


def short_reason(exc: BaseException | None, limit: int = 300) -> str:
    """`Class: first line of the message`, bounded: fit for an alert (no SQL, no parameters)."""
    if exc is None:
        return "unknown error"
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def install_thread_hook(on_death: Callable[[str, BaseException | None], None]) -> None:
    """Every thread that ends with an exception is logged as one JSON event (`service.thread_died`,
    with its traceback); `on_death(thread name, exception)` then decides what it means."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        try:
            log.error(
                "service.thread_died",
                thread=name,
                error=short_reason(args.exc_value),
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )
        finally:
            on_death(name, args.exc_value)

    threading.excepthook = hook


def announce(
    config: Config, store: Store, alert: Alert, *, now: Callable[[], datetime], write: Callable[[str], Any]
) -> None:
    """Tell every channel `alert` now, before the process ends: queued and delivered when the
    database answers, else sent straight to each channel. Called once the notifier has stopped (a
    channel it is still sending on would be skipped). A channel's backlog goes first, in order, for at
    most `stop_timeout`; then the send in flight finishes and is marked (no duplicate at the next
    start) and what is left stays queued. Never raises."""
    messages = alert_messages(config.settings, [alert])
    if not messages:
        write(alert_text(alert))
        return
    try:
        store.outbox.enqueue(messages, now())
    except Exception as exc:
        log.warning("service.alert_direct", reason=short_reason(exc))
        _send_directly(config, alert, now=now)
        return
    try:
        from watcher.notify.delivery import deliver_due, finish_sends

        enough = threading.Event()
        deliver_due(store, config.settings, now=now, wait=config.settings.stop_timeout.total_seconds(), stop=enough)
        enough.set()
        finish_sends(max((c.timeout.total_seconds() for c in config.settings.channels.values()), default=0.0))
    except Exception as exc:  # queued: the next start delivers it
        log.warning("service.alert_queued_only", reason=short_reason(exc))


def _send_directly(config: Config, alert: Alert, *, now: Callable[[], datetime]) -> None:
    from watcher.notify.delivery import render
    from watcher.notify.formats import Delivery
    from watcher.notify.send import Sender

    sender = Sender(config.settings.channels)
    for name, channel in config.settings.channels.items():
        at = now()
        try:
            rendered = render(
                alert_payload(alert), channel, Delivery(channel=name, message_id=None, created_at=at, now=at)
            )
            sender.send(name, rendered)
        except Exception as exc:
            log.error("service.alert_failed", channel=name, reason=short_reason(exc))  # noqa: TRY400
        else:
            log.info("service.alert_sent", channel=name)

"""Alerts: what TrialWatch tells the operator about itself, written with the change that causes them.

An alert is no change of a trial: it says that a trial cannot be checked (or can again), that it
answers 404 or moved, that ClinicalTrials.gov fails or refuses us, that a partial record is held
back, that a configuration edit was rejected. Each is caused by a state change (a failure counter
reaching `notify.failure_alert_after`, a 404 recorded, a back-off started, ...) and is queued in
the same transaction as that change (`Alerts.raising`), so a crash between the two can never lose
it: after a crash both are stored or neither is, and the next cycle decides again.

Alerts go to every channel; with none configured they are printed, once the change is committed.
Which changes raise which alert is decided in `trial_alerts` (one trial) and `outage` (the registry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watcher.config import Settings
from watcher.messages import AlertPayload, NewMessage
from watcher.store import Store
from watcher.store.transaction import Transaction


@dataclass(frozen=True, slots=True)
class Alert:
    subject: str
    text: str
    nct_id: str | None = None


def alert_payload(alert: Alert) -> AlertPayload:
    """An alert's outbox payload (its shape is `watcher.messages.AlertPayload`)."""
    return AlertPayload(subject=alert.subject, text=alert.text, nct_id=alert.nct_id)


def alert_messages(settings: Settings, alerts: Iterable[Alert]) -> list[NewMessage]:
    """Each alert for every channel (none without channels: then alerts are printed)."""
    return [NewMessage(name, alert_payload(alert)) for alert in alerts for name in settings.channels]


def alert_text(alert: Alert) -> str:
    """An alert as printed when no channel is configured."""
    return f"!! {alert.subject}\n{alert.text}\n"


@dataclass(slots=True)
class Raising:
    """A transaction in progress and the alerts its changes raised."""

    tx: Transaction
    alerts: list[Alert] = field(default_factory=list)

    def alert(self, subject: str, text: str, *, nct_id: str | None = None) -> None:
        self.alerts.append(Alert(subject, text, nct_id))


class Alerts:
    """Where alerts go: the outbox, inside the transaction of their cause; or stdout without channels."""

    def __init__(
        self, store: Store, settings: Settings, *, now: Callable[[], datetime], write: Callable[[str], Any]
    ) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self.write = write

    @contextmanager
    def raising(self) -> Iterator[Raising]:
        """A transaction for state changes (`raised.tx`) and the alerts they raise (`raised.alert`):
        the alerts are queued in it last, and it commits whole or not at all."""
        with self.store.transaction() as tx:
            raised = Raising(tx)
            yield raised
            tx.enqueue(self.messages(raised.alerts), self.now())
        self.committed(raised.alerts)

    def messages(self, alerts: Iterable[Alert]) -> list[NewMessage]:
        """The messages of `alerts`, for a write that queues its own (a new version's)."""
        return alert_messages(self.settings, alerts)

    def committed(self, alerts: Iterable[Alert]) -> None:
        """The change that raised `alerts` is committed: without channels, print them now."""
        if not self.settings.channels:
            for alert in alerts:
                self.write(alert_text(alert))

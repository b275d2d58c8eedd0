"""The service's record of itself: what `status` reads, and a rejected edit written with its alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.errors import StorageError
from watcher.service.record import ServiceRecord
from watcher.service.reload import rejection_alert
from watcher.service.status import read_status
from watcher.store import Store
from watcher.store.meta import SERVICE_WATCHLIST_ERROR
from watcher.store.outbox import OutboxQueue

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PROBLEMS = ("watchlist.yaml:2: trials[0]: 'NCT1' is not NCT followed by 8 digits",)


def test_status_reads_what_the_record_wrote(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"])
    config = load_config(workspace.settings)
    store = Store(config.settings.storage_url)
    try:
        record = ServiceRecord(store, lambda: NOW)
        record.started(trials=1, rejected=())
        record.heartbeat()
        record.cycle_started(NOW - timedelta(minutes=1))
        record.next_cycle(NOW + timedelta(hours=1))
        running = read_status(config, store, now=NOW)
        record.stopped()
        stopped = read_status(config, store, now=NOW)
    finally:
        store.close()
    assert (running.service, running.heartbeat, running.health) == ("running", NOW.isoformat(), "ok")
    assert running.cycle_running_since == (NOW - timedelta(minutes=1)).isoformat()
    assert running.next_cycle == (NOW + timedelta(hours=1)).isoformat()
    assert (stopped.service, stopped.next_cycle, stopped.cycle_running_since) == ("stopped", None, None)


def test_a_rejected_edit_and_its_alert_are_written_together_or_not_at_all(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.write(trials=["NCT04728893"], channels={"hook": {"url": "json://127.0.0.1:9/hook"}})
    config = load_config(workspace.settings)
    _, alerts = rejection_alert(config, PROBLEMS)
    store = Store(config.settings.storage_url)
    try:
        record = ServiceRecord(store, lambda: NOW)

        def refused(*args: Any, **kwargs: Any) -> None:
            raise StorageError("database is locked")

        with monkeypatch.context() as patched, capture_logs() as logs:
            patched.setattr(OutboxQueue, "insert_many_in", staticmethod(refused))
            assert record.watchlist_rejected(PROBLEMS, alerts) is False, "bookkeeping never raises"
        assert [e["event"] for e in logs] == ["service.bookkeeping_failed"]
        assert store.meta.get(SERVICE_WATCHLIST_ERROR) is None, "no error recorded without its alert"
        assert store.outbox.messages() == []

        assert record.watchlist_rejected(PROBLEMS, alerts) is True
        assert store.meta.get(SERVICE_WATCHLIST_ERROR) == list(PROBLEMS)
        (queued,) = store.outbox.messages()
        assert (queued.kind, queued.channel, queued.payload["type"]) == ("alert", "hook", "alert")
        assert str(queued.payload["subject"]).startswith("TrialWatch: configuration edit rejected")
    finally:
        store.close()

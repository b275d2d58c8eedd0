"""The snapshot store: versions, changes, outbox and state, in one transaction each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.fakeapi import load_fixture
from watcher.models import Change, Event
from watcher.store import NewMessage, Store, content_hash

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    yield store
    store.close()


def test_versions_are_numbered_and_read_back(store: Store) -> None:
    record = load_fixture("NCT04728893")
    v1 = store.save_version("NCT04728893", record, fetched_at=T0, digest=content_hash(record), changes=[],
                            baseline=True)
    edited = load_fixture("NCT04728893")
    edited["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    change = Change("status.overallStatus", "changed", "RECRUITING", "SUSPENDED", "critical",
                    Event("status_transition", "RECRUITING → SUSPENDED", {"from": "RECRUITING"}))
    v2 = store.save_version("NCT04728893", edited, fetched_at=T0 + timedelta(hours=1),
                            digest=content_hash(edited), changes=[change], baseline=False,
                            messages=[NewMessage("ops", "NCT04728893", "changes", {"n": 1})])
    assert (v1, v2) == (1, 2)
    latest = store.latest_snapshot("NCT04728893")
    assert latest is not None
    assert latest.version == 2
    assert latest.record == edited
    assert latest.fetched_at == T0 + timedelta(hours=1)
    assert store.snapshot("NCT04728893", 1).record == record  # type: ignore[union-attr]
    (stored,) = store.history("NCT04728893")
    assert stored.change == change
    assert stored.version == 2
    state = store.trial_states()["NCT04728893"]
    assert state.overall_status == "SUSPENDED"
    assert state.last_changed_at == T0 + timedelta(hours=1)
    (msg,) = store.due_messages(T0 + timedelta(hours=2))
    assert (msg.channel, msg.payload) == ("ops", {"n": 1})


def test_content_hash_ignores_only_version_holder() -> None:
    record = load_fixture("NCT04728893")
    regenerated = load_fixture("NCT04728893")
    regenerated["derivedSection"]["miscInfoModule"]["versionHolder"] = "2099-01-01"
    assert content_hash(record) == content_hash(regenerated)
    reordered = dict(reversed(list(record.items())))
    assert content_hash(record) == content_hash(reordered)
    edited = load_fixture("NCT04728893")
    edited["derivedSection"]["conditionBrowseModule"] = {}
    assert content_hash(record) != content_hash(edited)


def test_outbox_failure_retry_and_park(store: Store) -> None:
    store.enqueue([NewMessage("ops", None, "alert", {"subject": "s"}),
                   NewMessage("ops", None, "alert", {"subject": "t"})], T0)
    first, second = store.due_messages(T0)
    store.mark_failed(first.id, "503", retry_at=T0 + timedelta(minutes=1))
    assert [m.id for m in store.due_messages(T0)] == [second.id]
    assert [m.id for m in store.due_messages(T0 + timedelta(minutes=1))] == [first.id, second.id]
    store.mark_failed(first.id, "revoked", retry_at=None)
    store.mark_sent(second.id, T0)
    assert store.outbox_counts() == {"parked": 1, "sent": 1}
    (parked,) = store.messages(status="parked")
    assert (parked.attempts, parked.last_error) == (2, "revoked")


def test_failures_are_counted_until_a_success(store: Store) -> None:
    assert store.record_failure("NCT00000001", "timeout") == 1
    assert store.record_failure("NCT00000001", "timeout") == 2
    record = load_fixture("NCT03418623")
    store.save_version("NCT00000001", record, fetched_at=T0, digest="x", changes=[], baseline=True)
    assert store.trial_states()["NCT00000001"].consecutive_failures == 0


def test_meta_and_cycles(store: Store) -> None:
    store.set_meta("poll.data_timestamp", "2026-11-01T09:00:05")
    assert store.get_meta("poll.data_timestamp") == "2026-11-01T09:00:05"
    assert store.get_meta("missing", 7) == 7
    cycle = store.start_cycle(T0)
    store.finish_cycle(cycle, at=T0 + timedelta(seconds=3), result="ok", checked=3, changed=1, failed=0,
                       requests=4)
    last = store.last_cycle()
    assert last is not None
    assert (last.result, last.checked, last.changed, last.requests) == ("ok", 3, 1, 4)

"""The snapshot store: versions, changes, outbox and state, in one transaction each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov, load_fixture
from tests.support.outbox import owed
from tests.support.workspace import Workspace
from watcher.detect import changes_between
from watcher.detect.record import content_hash
from watcher.messages import AlertPayload, NewMessage, decode_payload
from watcher.models import Change, Event
from watcher.store import Store
from watcher.store.meta import (
    API_DENIED,
    API_FAILURES,
    DATA_TIMESTAMP,
    LAST_RETENTION,
    LAST_SUCCESS,
    NOEDIT_LAST_DAY,
    PARTS_SENT,
    SEARCH,
    SERVICE_WATCHLIST_ERROR,
    SUSPECT,
    PartsSent,
    SearchRun,
    SuspectRecord,
)
from watcher.store.schema import MetaRow

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as store:
        yield store


def test_versions_are_numbered_and_read_back(store: Store) -> None:
    record = load_fixture("NCT04728893")
    v1 = store.versions.save(
        "NCT04728893", record, fetched_at=T0, digest=content_hash(record), changes=[], baseline=True
    )
    edited = load_fixture("NCT04728893")
    edited["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    change = Change(
        "status.overallStatus",
        "changed",
        "RECRUITING",
        "SUSPENDED",
        "critical",
        Event("status_transition", "RECRUITING → SUSPENDED", {"from": "RECRUITING"}),
    )
    v2 = store.versions.save(
        "NCT04728893",
        edited,
        fetched_at=T0 + timedelta(hours=1),
        digest=content_hash(edited),
        changes=[change],
        baseline=False,
        messages=[owed("NCT04728893", version=2)],
    )
    assert (v1, v2) == (1, 2)
    latest = store.versions.latest("NCT04728893")
    assert latest is not None
    assert latest.version == 2
    assert latest.record == edited
    assert latest.fetched_at == T0 + timedelta(hours=1)
    assert store.versions.get("NCT04728893", 1).record == record  # type: ignore[union-attr]
    (stored,) = store.changes.of("NCT04728893", include_baseline=False)
    assert stored.change == change
    assert stored.version == 2
    baseline = [c for c in store.changes.of("NCT04728893") if c.baseline]
    assert baseline == [c for c in store.changes.of("NCT04728893") if c.version == 1], "derived from version 1"
    assert [c.change for c in baseline] == changes_between(None, record), "the baseline, derived when read"
    assert store.retention.stats().change_rows == 1, "a baseline stores no change rows"
    state = store.trials.states()["NCT04728893"]
    assert state.overall_status == "SUSPENDED"
    assert state.last_changed_at == T0 + timedelta(hours=1)
    claimed = store.outbox.claim_next(T0 + timedelta(hours=2), lease_until=T0 + timedelta(hours=3))
    assert claimed is not None
    msg, recovered = claimed
    assert (msg.channel, decode_payload(msg.payload), recovered) == ("ops", owed("NCT04728893", 2).payload, False)


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
    store.outbox.enqueue([NewMessage("ops", AlertPayload(subject=s, text="t")) for s in ("s", "t")], T0)
    lease = T0 + timedelta(minutes=5)

    def claim(at: datetime) -> int | None:
        got = store.outbox.claim_next(at, lease_until=lease)
        return got[0].id if got else None

    first = claim(T0)
    assert first is not None
    assert claim(T0) is None, "the head is claimed: its channel waits, in order"
    store.outbox.finish_failed(first, "503", retry_at=T0 + timedelta(minutes=1))
    assert claim(T0) is None, "the failed head holds back its own channel until its retry time"
    assert claim(T0 + timedelta(minutes=1)) == first
    store.outbox.finish_failed(first, "revoked", retry_at=None)
    second = claim(T0 + timedelta(minutes=1))
    assert second is not None and second != first, "a parked message no longer blocks the channel"
    store.outbox.finish_sent(second, T0)
    assert {k: v for k, v in store.outbox.counts().items() if v} == {"parked": 1, "sent": 1}
    (parked,) = store.outbox.messages(status="parked")
    assert (parked.attempts, parked.last_error) == (2, "revoked")


def test_failures_are_counted_until_a_success(store: Store) -> None:
    assert store.trials.record_failure("NCT00000001", "timeout") == 1
    assert store.trials.record_failure("NCT00000001", "timeout") == 2
    record = load_fixture("NCT03418623")
    store.versions.save("NCT00000001", record, fetched_at=T0, digest="x", changes=[], baseline=True)
    assert store.trials.states()["NCT00000001"].consecutive_failures == 0


def test_meta_and_cycles(store: Store) -> None:
    store.meta.set(DATA_TIMESTAMP, "2026-11-01T09:00:05")
    assert store.meta.get(DATA_TIMESTAMP) == "2026-11-01T09:00:05"
    assert store.meta.get(API_FAILURES) is None
    cycle = store.cycles.start(T0)
    store.cycles.finish(cycle, at=T0 + timedelta(seconds=3), result="ok", checked=3, changed=1, failed=0, requests=4)
    last = store.cycles.last()
    assert last is not None
    assert (last.result, last.checked, last.changed, last.requests) == ("ok", 3, 1, 4)


# -- compressed, deduplicated snapshots and retention ----------------------------------------------


def _raw(store: Store) -> dict[str, Any]:
    with store.session() as s:
        return {row.key: row.value for row in s.query(MetaRow)}


# What earlier versions wrote, key by key: a database they wrote is read as it is (no migration).
STORED_BEFORE: dict[str, Any] = {
    "poll.last_success": "2026-11-01T09:00:05.123456+00:00",
    "storage.last_retention": "2026-11-01T09:00:05",  # naive: SQLite-era clocks; read as UTC
    "poll.api_failures": 3,
    "poll.api_denied": 1,
    "noedit.last_day": "2026-11-01",
    "search.lymphoma": {"hash": "ab12", "day": "2026-11-01", "stamp": "2026-11-01T09:00:05"},
    "poll.suspect.NCT00000001": {"hash": "cd34", "seen": 2, "missing": ["outcomes"]},
    "outbox.parts.7": {"sent": 1, "rendered_at": "2026-11-01T09:00:05+00:00"},
    "service.watchlist_error": ["watchlist.yaml:2: trials[0]: 'NCT1' is not …"],
}


def test_meta_reads_what_earlier_versions_stored_and_writes_it_back_alike(store: Store) -> None:
    with store.session() as s:
        for key, value in STORED_BEFORE.items():
            s.merge(MetaRow(key=key, value=value))
    at = datetime(2026, 11, 1, 9, 0, 5, tzinfo=UTC)
    read = [
        store.meta.get(LAST_SUCCESS),
        store.meta.get(LAST_RETENTION),
        store.meta.get(API_FAILURES),
        store.meta.get(API_DENIED),
        store.meta.get(NOEDIT_LAST_DAY),
        store.meta.get(SEARCH.of("lymphoma")),
        store.meta.get(SUSPECT.of("NCT00000001")),
        store.meta.get(PARTS_SENT.of(7)),
        store.meta.get(SERVICE_WATCHLIST_ERROR),
    ]
    assert read == [
        at.replace(microsecond=123456),
        at,
        3,
        True,
        at.date(),
        SearchRun("ab12", at.date(), "2026-11-01T09:00:05"),
        SuspectRecord("cd34", 2, ["outcomes"]),
        PartsSent(1, at),
        ["watchlist.yaml:2: trials[0]: 'NCT1' is not …"],
    ]
    store.meta.update(
        LAST_SUCCESS.to(at.replace(microsecond=123456)),
        API_FAILURES.to(3),
        API_DENIED.to(True),
        NOEDIT_LAST_DAY.to(at.date()),
        SEARCH.of("lymphoma").to(SearchRun("ab12", at.date(), "2026-11-01T09:00:05")),
        SUSPECT.of("NCT00000001").to(SuspectRecord("cd34", 2, ["outcomes"])),
        PARTS_SENT.of(7).to(PartsSent(1, at)),
    )
    raw = _raw(store)
    assert {k: raw[k] for k in STORED_BEFORE if k not in ("storage.last_retention",)} == {
        k: v for k, v in STORED_BEFORE.items() if k != "storage.last_retention"
    }
    store.meta.set(API_DENIED, False)
    assert _raw(store)["poll.api_denied"] == 0


def test_a_meta_value_of_the_wrong_kind_reads_as_never_set(store: Store) -> None:
    """A hand-edited or foreign row must not stop the service: the key's safe default applies."""
    with store.session() as s:
        for key, value in {
            "poll.last_success": "yesterday",
            "poll.api_failures": "3",
            "search.lymphoma": {"hash": "ab12"},
            "outbox.parts.7": [1],
        }.items():
            s.merge(MetaRow(key=key, value=value))
    assert store.meta.get(LAST_SUCCESS) is None
    assert store.meta.get(API_FAILURES) is None
    assert store.meta.get(SEARCH.of("lymphoma")) is None
    assert store.meta.get(PARTS_SENT.of(7)) is None
    store.meta.set(LAST_SUCCESS, None)
    assert _raw(store)["poll.last_success"] is None and store.meta.get(LAST_SUCCESS) is None


def _save(store: Store, record: dict[str, Any], at: datetime, *, messages: list[NewMessage] | None = None) -> int:
    return store.versions.save(
        "NCT04728893",
        record,
        fetched_at=at,
        digest=content_hash(record),
        changes=[],
        baseline=False,
        messages=messages or [],
    )


def _status(value: str) -> dict[str, Any]:
    record = load_fixture("NCT04728893")
    record["protocolSection"]["statusModule"]["overallStatus"] = value
    return record


def test_snapshots_are_compressed_and_a_to_b_to_a_stores_a_once(store: Store) -> None:
    a, b = _status("RECRUITING"), _status("SUSPENDED")
    raw = len(json.dumps(a).encode())
    _save(store, a, T0)
    first = store.retention.stats()
    assert first.blob_bytes < raw * 0.3, "compressed: a mid-size record in 16 parts (big ones do better)"
    _save(store, b, T0 + timedelta(hours=1))
    second = store.retention.stats()
    assert second.blob_bytes - first.blob_bytes < 2_000, "B differs in one module: one module and a manifest"
    _save(store, a, T0 + timedelta(hours=2))
    third = store.retention.stats()
    assert (third.blobs, third.blob_bytes) == (second.blobs, second.blob_bytes), "the second A stores nothing"
    assert [store.versions.get("NCT04728893", v).record for v in (1, 2, 3)] == [a, b, a]  # type: ignore[union-attr]


def test_retention_keeps_the_latest_and_what_the_outbox_needs(store: Store) -> None:
    for hour, status in enumerate(["RECRUITING", "SUSPENDED", "ACTIVE_NOT_RECRUITING", "COMPLETED", "TERMINATED"]):
        message = [owed("NCT04728893", version=2)] if hour == 1 else None
        _save(store, _status(status), T0 + timedelta(days=hour), messages=message)
    blobs_before = store.retention.stats().blobs
    now = T0 + timedelta(days=30)
    result = store.retention.apply(keep_versions=1, keep_days=None, now=now)
    assert (result.pruned, result.kept_for_outbox) == (3, 1)
    alive = [i.version for i in store.versions.infos("NCT04728893") if not i.pruned]
    assert alive == [2, 5], "v2 waits in the outbox, v5 is the latest"
    assert store.versions.get("NCT04728893", 1) is None
    assert store.versions.get("NCT04728893", 2).record == _status("SUSPENDED")  # type: ignore[union-attr]
    assert store.versions.latest("NCT04728893").record == _status("TERMINATED")  # type: ignore[union-attr]
    assert result.blobs_deleted == 6 and store.retention.stats().blobs == blobs_before - 6, (
        "three statusModules and three manifests go; the shared modules stay"
    )
    claimed = store.outbox.claim_next(now, lease_until=now + timedelta(minutes=5))
    assert claimed is not None
    store.outbox.finish_sent(claimed[0].id, now)
    assert store.retention.apply(keep_versions=1, keep_days=None, now=now).pruned == 1
    assert store.retention.apply(keep_versions=1, keep_days=None, now=now).pruned == 0
    assert [i.version for i in store.versions.infos("NCT04728893")] == [1, 2, 3, 4, 5], "rows and numbers stay"


def test_retention_by_age_keeps_recent_versions(store: Store) -> None:
    for day, status in enumerate(["RECRUITING", "SUSPENDED", "COMPLETED"]):
        _save(store, _status(status), T0 + timedelta(days=10 * day))
    result = store.retention.apply(keep_versions=None, keep_days=timedelta(days=15), now=T0 + timedelta(days=21))
    assert result.pruned == 1
    assert [i.pruned for i in store.versions.infos("NCT04728893")] == [True, False, False]
    both = store.retention.apply(keep_versions=3, keep_days=timedelta(days=1), now=T0 + timedelta(days=99))
    assert both.pruned == 0, "a version inside either limit is kept"


def test_garbage_collection_spares_recently_used_blobs(store: Store) -> None:
    _save(store, _status("RECRUITING"), T0)
    _save(store, _status("SUSPENDED"), T0 + timedelta(minutes=1))
    store.retention.apply(keep_versions=1, keep_days=None, now=T0 + timedelta(minutes=2))
    assert store.retention.stats().pruned == 1
    assert store.retention.collect_garbage(T0 + timedelta(minutes=2)) == (0, 0), "within the grace period"
    count, freed = store.retention.collect_garbage(T0 + timedelta(hours=2))
    assert count == 2 and freed > 0


def test_the_service_applies_retention_after_a_cycle(workspace: Workspace, fake_api: FakeCtGov) -> None:
    trial = "NCT04728893"
    workspace.write(trials=[trial])
    settings = workspace.settings.read_text().replace("storage:\n", "storage:\n  keep_versions: 1\n")
    workspace.settings.write_text(settings)  # a second `storage:` block would be a YAML error
    assert workspace.cli("check").code == 0
    for count in (500, 510):
        fake_api.update(
            trial, lambda s, c=count: s["protocolSection"]["designModule"]["enrollmentInfo"].update(count=c)
        )
        fake_api.new_refresh()
        assert workspace.cli("check").code == 0
    assert workspace.cli("db", "stats", "--json").json()["pruned"] == 0, "retention runs at most daily"
    with Store(workspace.db_url) as store:
        store.meta.set(LAST_RETENTION, None)  # a day later
    fake_api.update(trial, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="SUSPENDED"))
    assert workspace.cli("check").code == 0
    stats = workspace.cli("db", "stats", "--json").json()
    assert (stats["versions"], stats["pruned"]) == (4, 2), "the baseline (version 1) and the latest are kept"
    assert workspace.cli("db", "prune").out.startswith("pruned 0 versions")
    assert len(workspace.cli("history", trial, "--field", "design.enrollmentCount", "--json").json()) == 3, (
        "the changes of pruned versions stay"
    )
    pruned = workspace.cli("diff", trial, "--from", "2")
    assert pruned.code == 2 and "version 2 of NCT04728893 was pruned by retention" in pruned.err


def test_prepend_versions_renumbers_in_one_transaction(store: Store) -> None:
    from watcher.store.values import PastVersion

    _save(store, _status("RECRUITING"), T0)
    store.versions.save(
        "NCT04728893",
        _status("SUSPENDED"),
        fetched_at=T0 + timedelta(days=1),
        digest=content_hash(_status("SUSPENDED")),
        baseline=False,
        changes=[Change("status.overallStatus", "changed", "RECRUITING", "SUSPENDED", "critical")],
        messages=[owed("NCT04728893", version=2)],
    )
    old = T0 - timedelta(days=400)
    past = [
        PastVersion(_status(s), content_hash(_status(s)), old + timedelta(days=i), i, changes=[], baseline=i == 0)
        for i, s in enumerate(["NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"])
    ]
    rebase = [Change("status.overallStatus", "changed", "ENROLLING_BY_INVITATION", "RECRUITING", "major")]
    assert store.versions.prepend("NCT04728893", past, rebase=rebase) == 2
    infos = store.versions.infos("NCT04728893")
    assert [(i.version, i.source, i.ctgov_version) for i in infos] == [
        (1, "backfill", 0),
        (2, "backfill", 1),
        (3, "poll", None),
        (4, "poll", None),
    ]
    assert [
        store.versions.get("NCT04728893", v).record["protocolSection"]["statusModule"]["overallStatus"]  # type: ignore[union-attr]
        for v in (1, 2, 3, 4)
    ] == ["NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION", "RECRUITING", "SUSPENDED"]
    assert [(c.version, c.change.new) for c in store.changes.of("NCT04728893", include_baseline=False)] == [
        (3, "RECRUITING"),
        (4, "SUSPENDED"),
    ]
    assert {c.version for c in store.changes.of("NCT04728893") if c.baseline} == {1}, (
        "the oldest version is the baseline now; the former one has its real diff"
    )
    (message,) = store.outbox.messages(status="pending")
    assert message.payload["version"] == 4


def test_postgresql_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg is the `postgres` extra: a plain install that points at PostgreSQL is told what to install."""
    import sys

    from watcher.errors import StorageError

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(StorageError, match=r"pip install 'trialwatch\[postgres\]'") as caught:
        Store("postgresql+psycopg://tw:hunter2@127.0.0.1:5432/test")
    assert "hunter2" not in str(caught.value)

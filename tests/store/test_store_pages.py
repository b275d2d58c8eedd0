"""Pages of versions written in bulk (`store.versions.save_many`), compared by their stored hash, and the
set-based retention and `db stats` that go with them. On SQLite and PostgreSQL (`store` fixture)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.fakeapi import FakeCtGov, load_fixture
from tests.support.outbox import owed
from tests.support.workspace import Workspace
from watcher.detect.record import content_hash
from watcher.errors import StorageError
from watcher.models import Change
from watcher.store import Store
from watcher.store.values import NewVersion

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as store:
        yield store


def _studies(count: int, *, tag: str = "") -> list[tuple[str, dict[str, Any]]]:
    base = load_fixture("NCT04728893")
    out = []
    for n in range(count):
        study = copy.deepcopy(base)
        nct_id = f"NCT9{n:07d}"
        study["protocolSection"]["identificationModule"]["nctId"] = nct_id
        study["protocolSection"]["identificationModule"]["briefTitle"] = f"Trial {n}{tag}"
        out.append((nct_id, study))
    return out


def _new(nct_id: str, record: dict[str, Any], *, at: datetime = T0, **kw: Any) -> NewVersion:
    return NewVersion(nct_id=nct_id, record=record, digest=content_hash(record), fetched_at=at, **kw)


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_a_page_is_written_in_a_fixed_number_of_statements(store: Store) -> None:
    """Round trips do not grow with the page: executemany for versions, changes, blobs and messages."""
    small, big = _studies(3), _studies(30, tag=" b")
    with _statements(store) as few:
        store.versions.save_many([_new(n, r, baseline=True, messages=[owed(n)]) for n, r in small])
    with _statements(store) as many:
        store.versions.save_many([_new(n, r, baseline=True) for n, r in big[3:]])
    assert len(many) <= len(few), (few, many)
    assert sum("FROM blobs" in s for s in few) == 1, "one query learns which blobs exist"
    assert len(store.versions.infos("NCT90000029")) == 1
    assert store.outbox.counts().get("pending") == 3
    assert store.retention.stats().change_rows == 0, "baselines store no change rows"


def _refused(nct_id: str, record: dict[str, Any]) -> NewVersion:
    """A version the database itself refuses: a change without a field (NOT NULL), on either database.
    (A NUL in the text, which PostgreSQL refused once, is now dropped before it is stored.)"""
    unnamed = Change(None, "changed", "A", "B", "major")  # type: ignore[arg-type]
    return _new(nct_id, record, changes=[unnamed], messages=[owed(nct_id)])


def test_one_record_the_database_refuses_never_loses_the_others_of_its_page(store: Store) -> None:
    page = _studies(4)
    items = [_new(n, r, baseline=True) for n, r in page]
    items[2] = _refused(*page[2])
    results = store.versions.save_many(items)
    assert [r for i, r in enumerate(results) if i != 2] == [1, 1, 1]
    assert isinstance(results[2], StorageError)
    assert len(str(results[2]).splitlines()) == 1 and "[SQL:" not in str(results[2]), "one line, no statement"
    assert store.versions.infos(page[2][0]) == [], "the bad record's version, changes and messages: none of them"
    assert store.outbox.counts().get("pending") is None
    assert [len(store.versions.infos(n)) for i, (n, _) in enumerate(page) if i != 2] == [1, 1, 1]


def test_a_record_stored_meanwhile_by_another_writer_is_not_a_new_version(store: Store) -> None:
    ((nct_id, record),) = _studies(1)
    assert store.versions.save_many([_new(nct_id, record, baseline=True)]) == [1]
    again = _new(nct_id, record, at=T0 + timedelta(hours=1), messages=[owed(nct_id)])
    assert store.versions.save_many([again]) == [1]
    assert store.outbox.counts().get("pending") is None


def test_unchanged_records_are_known_by_their_stored_hash(store: Store) -> None:
    page = _studies(5)
    store.versions.save_many([_new(n, r, baseline=True) for n, r in page])
    with _statements(store) as seen:
        known = store.versions.latest_hashes([n for n, _ in page] + ["NCT00000000"])
    assert known == {n: content_hash(r) for n, r in page}
    assert len(seen) == 1 and "blobs" not in seen[0], "one query, no record loaded"


def test_an_unchanged_cycle_loads_no_record(workspace: Workspace, fake_api: FakeCtGov) -> None:
    trials = ["NCT04728893", "NCT03064438", "NCT06610240"]
    workspace.write(trials=trials)
    assert workspace.cli("check").code == 0
    fake_api.new_refresh()
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert workspace.cli("check", "--full").code == 0
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert not [s for s in seen if "FROM blobs" in s], "no stored record read when hashes match"


def test_retention_is_set_based_and_keeps_what_it_must(store: Store) -> None:
    ((nct_id, record),) = _studies(1)
    store.versions.save_many([_new(nct_id, record, baseline=True)])
    for n in range(2, 6):
        edited = copy.deepcopy(record)
        edited["protocolSection"]["statusModule"]["overallStatus"] = f"S{n}"
        store.versions.save(
            nct_id,
            edited,
            fetched_at=T0 + timedelta(days=n),
            digest=content_hash(edited),
            changes=[],
            baseline=False,
            messages=[owed(nct_id, version=n)] if n == 3 else (),
        )
    with _statements(store) as seen:
        result = store.retention.apply(keep_versions=1, keep_days=None, now=T0 + timedelta(days=30))
    assert (result.pruned, result.kept_for_outbox) == (2, 1), "v1 is the baseline, v3 is owed a message, v5 newest"
    assert [i.version for i in store.versions.infos(nct_id) if i.pruned] == [2, 4]
    assert len(seen) <= 8, "a few statements, whatever the number of versions"
    assert result.blobs_deleted == 4 and result.bytes_freed > 0, (
        "the pruned versions' manifests and their own status modules"
    )
    assert store.retention.collect_garbage(T0 + timedelta(days=31)) == (0, 0)
    for version in (1, 3, 5):
        assert store.versions.get(nct_id, version) is not None, "every part of a kept version survives"


@pytest.mark.parametrize("as_json", [True, False])
def test_db_stats_reports_size_per_trial(workspace: Workspace, fake_api: FakeCtGov, as_json: bool) -> None:
    workspace.write(trials=["NCT04728893", "NCT03064438"])
    assert workspace.cli("check").code == 0
    result = workspace.cli("db", "stats", *(["--json"] if as_json else []))
    assert result.code == 0
    if as_json:
        data = result.json()
        assert (data["trials"], data["versions"], data["baselines"], data["change_rows"]) == (2, 2, 2, 0)
        assert data["bytes_per_trial"] == data["blob_bytes"] // 2 > 0
        assert data["database_bytes"] >= data["blob_bytes"]
    else:
        assert "bytes_per_trial:" in result.out and "trials:" in result.out

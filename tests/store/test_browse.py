"""The watch list's queries at any size (`store.browse`): the text search answered by revision 0008's
word index (SQLite FTS5, PostgreSQL tsvector), kept in step with each new version, and the dated
ranges the upcoming-dates page merges. On SQLite and PostgreSQL (`db_url` fixture)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.fakeapi import load_fixture
from watcher.detect import SeverityRules, changes_between
from watcher.detect.record import content_hash
from watcher.store import Store
from watcher.store.browse import BrowseFilter
from watcher.store.search import id_range
from watcher.store.values import NewVersion

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TRIALS = {
    "NCT04510001": ("Pembrolizumab in Metastatic Breast Cancer", "Breast Neoplasms", "Merck Sharp & Dohme LLC"),
    "NCT04510002": ("Exercise After Heart Surgery", "Heart Failure", "Université de Montréal"),
    "NCT04520003": ("Cancer Screening by Mail", "Colorectal Cancer", "Kaiser Permanente"),
}


def _record(nct_id: str, title: str, condition: str, sponsor: str, completion: str = "2030-01-31") -> dict[str, Any]:
    record = copy.deepcopy(load_fixture("NCT04728893"))
    ps = record["protocolSection"]
    ps["identificationModule"].update(nctId=nct_id, briefTitle=title)
    ps["conditionsModule"]["conditions"] = [condition]
    ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = sponsor
    ps["statusModule"]["primaryCompletionDateStruct"] = {"date": completion}
    ps["statusModule"]["completionDateStruct"] = {"date": completion.replace("2030", "2031")}
    return record


def _save(store: Store, record: dict[str, Any], at: datetime = T0) -> None:
    nct_id = record["protocolSection"]["identificationModule"]["nctId"]
    store.versions.save_many([NewVersion(nct_id, record, content_hash(record), at, baseline=True)])


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as store:
        for nct_id, (title, condition, sponsor) in TRIALS.items():
            _save(store, _record(nct_id, title, condition, sponsor))
        yield store


def _found(store: Store, text: str) -> list[str]:
    return sorted(r.nct_id for r in store.browse.page(BrowseFilter(text=text, sort="id")).rows)


def test_search_finds_whole_words_and_word_starts_in_any_case(store: Store) -> None:
    assert _found(store, "cancer") == ["NCT04510001", "NCT04520003"]
    assert _found(store, "CANC") == ["NCT04510001", "NCT04520003"]  # the start of a word
    assert _found(store, "breast canc") == ["NCT04510001"]  # every word
    assert _found(store, "heart failure") == ["NCT04510002"]  # the conditions
    assert _found(store, "kaiser") == ["NCT04520003"]  # the sponsor
    assert _found(store, "MONTRÉAL") == ["NCT04510002"]  # any case, beyond ASCII too
    assert _found(store, "ancer") == []  # inside a word: not a word's start
    assert _found(store, "merck & dohme") == ["NCT04510001"]  # punctuation is no word
    assert store.browse.page(BrowseFilter(text="cancer")).total == 2


def test_search_by_nct_id_or_its_start(store: Store) -> None:
    assert _found(store, "nct04510002") == ["NCT04510002"]
    assert _found(store, "NCT0451") == ["NCT04510001", "NCT04510002"]
    assert _found(store, "NCT") == sorted(TRIALS)
    assert id_range("NCT0459") == ("NCT0459", "NCT0460") and id_range("NCT9999") == ("NCT9999", "NCU")


def test_the_word_index_follows_each_new_version_and_ignores_checks(store: Store) -> None:
    _save(
        store, _record("NCT04520003", "Stool Tests by Mail", "Colorectal Neoplasms", "Kaiser"), T0 + timedelta(days=1)
    )
    assert _found(store, "cancer") == ["NCT04510001"]
    assert _found(store, "stool") == ["NCT04520003"]
    store.trials.mark_checked(["NCT04520003", "NCT04510001"], T0 + timedelta(days=2))
    assert _found(store, "stool") == ["NCT04520003"] and _found(store, "breast") == ["NCT04510001"]


def test_dated_reads_a_range_of_a_date_column_soonest_first(store: Store) -> None:
    _save(store, _record("NCT04530004", "Later", "X", "Y", completion="2032-05"), T0)
    dated = store.browse.dated("primary_completion", "2030-01-01", 10)
    assert [(n, d) for n, _, d in dated] == [
        ("NCT04510001", "2030-01-31"),
        ("NCT04510002", "2030-01-31"),
        ("NCT04520003", "2030-01-31"),
        ("NCT04530004", "2032-05"),
    ]
    assert [n for n, _, _ in store.browse.dated("completion", "2032-01-01", 10)] == ["NCT04530004"]
    assert len(store.browse.dated("primary_completion", "2000-01-01", 2)) == 2


@pytest.mark.parametrize("status", [None, "RECRUITING"])
@pytest.mark.parametrize("sort", ["changed", "date"])
def test_the_list_is_read_in_order_from_an_index_never_sorted(store: Store, sort: str, status: str | None) -> None:
    """At 500,000 trials a sort of every row is seconds: each order the list offers (with and without the
    status filter) must be an index's own order. The plan says so at any size: SQLite names a temporary
    B-tree for ORDER BY, PostgreSQL a Sort node (sequential scans are ruled out so that a small table
    cannot hide a missing index behind a cheap scan)."""
    from sqlalchemy import select, text

    from watcher.store.browse import _order
    from watcher.store.schema import TrialRow

    query = select(TrialRow.nct_id).order_by(*_order(sort)).limit(50)
    if status is not None:
        query = query.where(TrialRow.overall_status == status)
    with store.engine.connect() as conn:
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if store.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "TEMP B-TREE" not in plan, plan
        else:
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
            assert "Sort" not in plan, plan


def test_the_static_sites_reads_agree_newest_first_by_id_and_of_a_tag(store: Store) -> None:
    ids = sorted(TRIALS)
    second = _record(ids[0], *TRIALS[ids[0]])
    second["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    changes = changes_between(_record(ids[0], *TRIALS[ids[0]]), second, SeverityRules.from_mapping({}))
    store.versions.save_many(
        [NewVersion(ids[0], second, content_hash(second), T0 + timedelta(hours=1), changes=changes)]
    )
    by_change = [r.nct_id for r in store.browse.newest_changed(10)]
    assert by_change[0] == ids[0]  # the one trial with a change since
    assert sorted(by_change) == ids and len(store.browse.latest_versions()) == 3
    assert [r.nct_id for r in store.browse.newest_changed(2)] == by_change[:2]
    streamed = store.browse.rows_by_id()
    assert isinstance(streamed, Iterator)  # a generator: the registry's rows are never all in memory
    rows = list(streamed)
    assert [r.nct_id for r in rows] == ids
    assert {r.nct_id: r.versions for r in rows} == {ids[0]: 2, ids[1]: 1, ids[2]: 1}
    assert [r.nct_id for r in store.browse.rows_of([ids[2], ids[0], "NCT09999999"])] == [
        n for n in by_change if n in (ids[0], ids[2])
    ]


def test_a_search_is_counted_from_the_word_index_not_a_scan_of_the_table(store: Store) -> None:
    """PostgreSQL's planner scans the table for the count of a common word (each row's `tsvector` computed:
    360 ms at 500,000 trials, where the GIN index takes 50 ms); SQLite counts from its FTS5 table."""
    from sqlalchemy import text

    from watcher.store.browse import count_settings, count_statement

    where = BrowseFilter(text="cancer")
    with store.engine.connect() as conn:
        compiled = str(count_statement(where, store.dialect).compile(conn, compile_kwargs={"literal_binds": True}))
        if store.dialect == "sqlite":
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
            assert "trials_search VIRTUAL TABLE" in plan, plan
        else:
            conn.execute(text("ANALYZE trials"))  # the planner then knows the word is common, as it is at scale
            for setting in count_settings(where, store.dialect):
                conn.execute(text(setting))
            plan = " ".join(row[0] for row in conn.execute(text(f"EXPLAIN {compiled}")))
            assert "ix_trials_search" in plan and "Seq Scan" not in plan, plan
    assert store.browse.page(where).total == 2  # and the count is right

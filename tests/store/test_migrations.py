"""Alembic migrations: revision 0001 is the first schema, and first-schema databases upgrade in place."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, text

from tests.support.databases import sqlite_file
from tests.support.fakeapi import load_fixture
from tests.support.workspace import FIXTURES, Workspace
from watcher.detect.record import content_hash
from watcher.store import Store
from watcher.store.browse import BrowseFilter
from watcher.store.migrate import current_revision, head_revision, upgrade_schema
from watcher.store.schema import UTCDateTime

FIRST_SCHEMA = FIXTURES / "first_schema.sqlite.sql"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AT = bindparam("at", type_=UTCDateTime)  # a time stored as TrialWatch stores it (no sqlite3 default adapter)


def _schema(path: Path) -> list[str]:
    with sqlite_file(path) as conn:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'alembic_version' ORDER BY name"
        ).fetchall()
    return [re.sub(r"\s+", " ", r[0]).strip() for r in rows]


def test_revision_0001_is_the_first_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    engine = create_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    first = tmp_path / "first.sqlite"
    with sqlite_file(first) as conn:
        conn.executescript(FIRST_SCHEMA.read_text())
    assert _schema(tmp_path / "a.sqlite") == _schema(first)


def _first_schema_database(db_url: str, tmp_path: Path) -> None:
    """A database as the first release left it: first-schema tables, data, and on SQLite no Alembic stamp."""
    record = load_fixture("NCT04728893")  # before the engine: a skip for missing data leaves no connection open
    edited = load_fixture("NCT04728893")
    engine = create_engine(db_url)
    if db_url.startswith("sqlite"):
        engine.dispose()
        path = db_url.removeprefix("sqlite:///")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with sqlite_file(path) as conn:
            conn.executescript(FIRST_SCHEMA.read_text())
        engine = create_engine(db_url)
    else:
        upgrade_schema(engine, "0001")
    edited["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO trials (nct_id, title, overall_status, consecutive_failures, not_found) "
                "VALUES ('NCT04728893', 't', 'SUSPENDED', 0, false)"
            )
        )
        for version, rec in ((1, record), (2, edited)):
            conn.execute(
                text(
                    "INSERT INTO snapshots (nct_id, version, fetched_at, content_hash, record) "
                    "VALUES ('NCT04728893', :v, :at, :h, :r)"
                ).bindparams(AT),
                {"v": version, "at": T0.replace(day=version), "h": content_hash(rec), "r": json.dumps(rec)},
            )
        conn.execute(
            text(
                "INSERT INTO changes (nct_id, snapshot_id, version, detected_at, field, change, old, new, severity, "
                "baseline) VALUES ('NCT04728893', 2, 2, :at, 'status.overallStatus', 'changed', '\"RECRUITING\"', "
                "'\"SUSPENDED\"', 'critical', false)"
            ).bindparams(AT),
            {"at": T0.replace(day=2)},
        )
        conn.execute(
            text(
                "INSERT INTO outbox (channel, nct_id, kind, created_at, payload, status, attempts) "
                "VALUES ('ops', 'NCT04728893', 'changes', :at, :p, 'pending', 0)"
            ).bindparams(AT),
            {"at": T0, "p": json.dumps({"version": 2})},
        )
    engine.dispose()


def test_a_first_schema_database_upgrades_in_place(db_url: str, tmp_path: Path) -> None:
    _first_schema_database(db_url, tmp_path)
    with Store(db_url) as store:  # upgrades on open
        assert store.schema_revision() == head_revision()
        first, second = store.versions.get("NCT04728893", 1), store.versions.get("NCT04728893", 2)
        assert first is not None and second is not None
        assert first.record == load_fixture("NCT04728893")
        assert second.record["protocolSection"]["statusModule"]["overallStatus"] == "SUSPENDED"
        (change,) = store.changes.of("NCT04728893")
        assert (change.change.field, change.change.old, change.change.new) == (
            "status.overallStatus",
            "RECRUITING",
            "SUSPENDED",
        )
        (message,) = store.outbox.messages(status="pending")
        assert message.payload == {"version": 2}
        stats = store.retention.stats()
        assert stats.legacy_bytes == 0, "records moved out of snapshots.record"
        (row,) = store.browse.page(BrowseFilter(text="Merck")).rows  # revision 0009 filled what the list reads
        assert row.nct_id == "NCT04728893" and row.sponsor == "Merck Sharp & Dohme LLC"
        assert stats.versions == 2 and stats.blobs > 0
        assert store.upgrade() == [], "a current schema is left alone"


def test_downgrade_to_the_first_schema_and_back_keeps_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tw.sqlite'}"
    record = load_fixture("NCT03418623")
    with Store(url) as store:
        store.versions.save(
            "NCT03418623", record, fetched_at=T0, digest=content_hash(record), changes=[], baseline=True
        )
    from alembic import command

    from watcher.store.migrate import alembic_config

    engine = create_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        command.downgrade(alembic_config(conn), "0001")
        conn.commit()
    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        (stored,) = conn.execute(text("SELECT record FROM snapshots")).scalars()
    assert json.loads(stored) == record
    engine.dispose()
    with Store(url) as store:
        assert store.versions.latest("NCT03418623").record == record  # type: ignore[union-attr]


def test_db_upgrade_command_on_a_first_schema_database(workspace: Workspace) -> None:
    path = workspace.root / "state" / "trialwatch.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite_file(path) as conn:
        conn.executescript(FIRST_SCHEMA.read_text())
    result = workspace.cli("db", "upgrade")
    assert result.code == 0, result.err
    applied = re.search(r"upgraded 0001 \(the first schema\) → (\S+) \(applied ([^)]*)\)$", result.out.strip())
    assert applied is not None and applied.group(1) == head_revision()
    assert applied.group(2).split(", ")[0] == "0002" and applied.group(2).split(", ")[-1] == head_revision()
    again = workspace.cli("db", "upgrade")
    assert again.out.strip().endswith(f"schema is current ({head_revision()})")
    stats = workspace.cli("db", "stats", "--json").json()
    assert stats["revision"] == head_revision() and stats["versions"] == 0


@pytest.mark.slow
def test_processes_opening_a_new_database_at_once_take_turns(tmp_path: Path) -> None:
    """The service and a CLI command starting together on a fresh SQLite file must not both migrate."""
    import subprocess
    import sys

    from tests.support.workspace import REPO

    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    code = f"from watcher.store import Store; Store({url!r}).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = create_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_the_migrations_build_exactly_the_models_schema(db_url: str) -> None:
    """No drift: a column added to a model without a revision (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from watcher.store.schema import Base, is_unmodelled_index

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        return not is_unmodelled_index(name)

    opts = {"compare_type": True, "include_name": include_name}
    with Store(db_url) as store, store.engine.connect() as conn:
        drift = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert drift == []


def test_the_head_written_in_revision_py_is_alembics() -> None:
    """`Store` answers "is the schema current?" from `revision.HEAD` without importing Alembic: a new
    migration must move it, or every database would be upgraded (or refused read-only) needlessly."""
    from watcher.store.revision import HEAD

    assert head_revision() == HEAD


def test_trials_stored_before_the_listed_columns_get_them_from_their_newest_record(db_url: str) -> None:
    """Revision 0009: a trial whose row was written before 0005/0008 (the columns empty, no version
    since) is found by sponsor and condition and listed by its dates once the database upgrades."""
    first, newest = load_fixture("NCT04728893"), load_fixture("NCT04728893")
    status = newest["protocolSection"]["statusModule"]
    status["completionDateStruct"] = {"date": "2029-01-31", "type": "ESTIMATED"}
    newest["protocolSection"]["conditionsModule"]["conditions"].append("Marginal Zone Lymphoma")
    with Store(db_url) as store:
        for at, record in ((T0, first), (T0.replace(day=2), newest)):
            digest = content_hash(record)
            store.versions.save("NCT04728893", record, fetched_at=at, digest=digest, changes=[], baseline=at == T0)
    engine = create_engine(db_url)
    with engine.begin() as conn:  # as a row written before 0005 left it, and the schema one revision back
        conn.execute(
            text("UPDATE trials SET sponsor = NULL, conditions = NULL, primary_completion = NULL, completion = NULL")
        )
        conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
    assert upgrade_schema(engine) == ["0009"]
    engine.dispose()
    with Store(db_url, read_only=True) as store:
        (row,) = store.browse.page(BrowseFilter(text="marginal zone")).rows
        assert (row.sponsor, row.primary_completion) == ("Merck Sharp & Dohme LLC", "2027-03-19")
        assert row.conditions is not None and row.conditions.endswith("; Marginal Zone Lymphoma")
        assert [r.nct_id for r in store.browse.page(BrowseFilter(text="merck")).rows] == ["NCT04728893"]
        assert store.browse.dated("completion", "2029-01-01", 10) == [("NCT04728893", row.title, "2029-01-31")]

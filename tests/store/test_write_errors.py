"""A bug in our code is no trial's storage failure: only what the database refuses may be.

A trial's storage failure is counted, shown in `status` and alerted after a few cycles; a bug dressed
as one would send users chasing a database that is fine. So a write that fails for any reason but
the database's is logged with its traceback and raised; the cycle stops there (the service logs
`cycle.crashed` and counts it towards the watchdog), and no trial is blamed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import SQLAlchemyError
from structlog.testing import capture_logs

from tests.support.fakeapi import FakeCtGov, load_fixture
from tests.support.outbox import owed
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.cycle import Cycle
from watcher.detect.record import content_hash
from watcher.errors import StorageError
from watcher.models import Change
from watcher.registry.client import CtGovClient
from watcher.store import Store
from watcher.store.values import NewVersion

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NCT = "NCT04728893"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as store:
        yield store


def _page(count: int) -> list[NewVersion]:
    base = load_fixture(NCT)
    page = []
    for n in range(count):
        record = copy.deepcopy(base)
        nct_id = f"NCT9{n:07d}"
        record["protocolSection"]["identificationModule"]["nctId"] = nct_id
        page.append(NewVersion(nct_id=nct_id, record=record, digest=content_hash(record), fetched_at=T0, baseline=True))
    return page


def _crashes(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "store.write_crashed"]


def test_a_value_our_code_cannot_encode_is_raised_with_its_traceback_not_returned_as_a_storage_error(
    store: Store,
) -> None:
    page = _page(3)
    unencodable = Change("status.overallStatus", "changed", "A", object(), "major")  # type: ignore[arg-type]
    page[1] = NewVersion(
        nct_id=page[1].nct_id,
        record=page[1].record,
        digest=page[1].digest,
        fetched_at=T0,
        changes=[unencodable],
        messages=[owed(page[1].nct_id)],
    )
    with capture_logs() as logs, pytest.raises(TypeError, match="not JSON serializable") as raised:
        store.versions.save_many(page)
    assert not isinstance(raised.value, StorageError | SQLAlchemyError), "the bug as itself, not as a database error"
    (crash,) = _crashes(logs)
    assert crash["log_level"] == "error" and crash["exc_info"] is True, "logged with its traceback"
    assert crash["nct_ids"] == sorted(v.nct_id for v in page)
    assert not [e for e in logs if e["event"] == "store.page_failed"], "a bug is not retried item by item"
    assert all(store.versions.infos(v.nct_id) == [] for v in page), "the page's transaction rolled back whole"
    assert store.outbox.counts() == {}


def test_a_bug_in_the_write_path_propagates_as_itself(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(record: Any) -> str:
        raise KeyError("briefTitle")

    monkeypatch.setattr("watcher.store.writes.title_of", broken)
    with capture_logs() as logs, pytest.raises(KeyError, match="briefTitle"):
        store.versions.save_many(_page(2))
    assert len(_crashes(logs)) == 1
    with capture_logs() as logs, pytest.raises(KeyError):
        store.versions.save(NCT, load_fixture(NCT), fetched_at=T0, digest="d", changes=[], baseline=True)
    assert len(_crashes(logs)) == 1, "one version alone: the same"


def test_a_bug_while_storing_a_cycle_blames_no_trial_and_alerts_nobody(
    workspace: Workspace, fake_api: FakeCtGov, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the bug became each trial's "storage error": counted, and alerted after
    `failure_alert_after` cycles (1 here, so the first would have alerted)."""
    workspace.write(
        trials=[NCT, "NCT03418623"],
        channels={"ops": {"url": "json://127.0.0.1:9/hook"}},
        extra="notify:\n  failure_alert_after: 1\n",
    )
    config = load_config(workspace.settings)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise AttributeError("'NoneType' object has no attribute 'items'")

    monkeypatch.setattr("watcher.store.writes._upsert_trials", broken)
    store = workspace.store(config.settings.storage_url)
    with CtGovClient(config.settings.api) as client, capture_logs() as logs, pytest.raises(AttributeError):
        Cycle(config, store, client, write=lambda _: None).run(deliver=False)
    (crash,) = _crashes(logs)
    assert crash["exc_info"] is True and crash["nct_ids"] == ["NCT03418623", NCT]
    assert not [e for e in logs if e["event"] == "trial.failed"]
    assert all(s.consecutive_failures == 0 and s.last_error is None for s in store.trials.states().values())
    assert store.outbox.messages() == [], "no alert about a storage failure that was not one"
    assert [v for n in (NCT, "NCT03418623") for v in store.versions.infos(n)] == [], "nothing half-written"

"""What PostgreSQL refuses and SQLite stores: a NUL character in a record's text, a status longer than
any column width we chose. The registry sent it, so it is stored (NUL dropped) on both backends, the
trial is checked every cycle, and an alert about a failure never quotes SQL or the database's address."""

from __future__ import annotations

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.registry.client import CtGovClient
from watcher.service.workers import poll_trials
from watcher.store import Store
from watcher.store.failures import alert_reason

A = "NCT04728893"
LONG_STATUS = "RECRUITING_BY_INVITATION_ONLY_AT_SELECTED_SITES_PENDING_REVIEW"  # 62 characters


def hostile(study: dict) -> None:  # type: ignore[type-arg]
    protocol = study["protocolSection"]
    protocol["identificationModule"]["briefTitle"] = "Nul\u0000 in the title"
    protocol["identificationModule"]["acronym"] = "AC\u0000RO"
    protocol["statusModule"]["overallStatus"] = LONG_STATUS


def test_a_record_with_nul_and_an_over_wide_status_is_stored_on_both_backends(
    workspace: Workspace, fake_api: FakeCtGov, db_url: str
) -> None:
    workspace.write(trials=[A], storage_url=db_url)
    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store, CtGovClient(config.settings.api) as client:
        assert poll_trials(config, store, client, only=None, write=lambda _: None).checked == 1
        fake_api.update(A, hostile)
        report = poll_trials(config, store, client, only=None, write=lambda _: None)
        assert report.failed == {} and report.checked == 1
        state = store.trials.states()[A]
        assert state.consecutive_failures == 0
        changes = {c.change.field: c.change for c in store.changes.of(A, include_baseline=False)}
        assert changes["status.overallStatus"].new == LONG_STATUS
        assert changes["identification.acronym"].new == "ACRO"
        # and the next edit is seen as usual: the trial is not stuck
        fake_api.update(A, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="COMPLETED"))
        assert poll_trials(config, store, client, only=None, write=lambda _: None).failed == {}
        statuses = [
            (c.change.old, c.change.new)
            for c in store.changes.of(A, include_baseline=False)
            if c.change.field == "status.overallStatus"
        ]
        assert statuses[-1] == (LONG_STATUS, "COMPLETED")


def test_an_alert_reason_has_no_sql_no_parameters_and_no_database_address() -> None:
    raw = (
        "database error on postgresql+psycopg://tw:***@db.internal:5432/trialwatch: (psycopg.errors.StringData"
        "RightTruncation) value too long for type character varying(40)\n"
        "[SQL: UPDATE trials SET overall_status=%(overall_status)s WHERE trials.nct_id = %(nct_id)s]\n"
        "[parameters: {'overall_status': 'X', 'nct_id': 'NCT04728893'}]\n"
        "(Background on this error at: https://sqlalche.me/e/20/9h9h); check the database"
    )
    reason = alert_reason(raw)
    assert "value too long" in reason and "\n" not in reason
    for leaked in ("SQL", "parameters", "db.internal", "5432", "tw:", "trialwatch:", "UPDATE"):
        assert leaked not in reason, (leaked, reason)
    assert len(alert_reason("x" * 5000)) == 300

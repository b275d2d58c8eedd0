"""A message that summarises a list ends with ClinicalTrials.gov's comparison of the two versions: their
numbers come from the record history (the fake numbers each `put`/`update` from 0, as the site does),
are kept with each stored version, and every format links to `?tab=history&a=<old+1>&b=<new+1>`. A
change set without a summary line costs no history request."""

from __future__ import annotations

from typing import Any

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace

NCT = "NCT04728893"
FAST = {"max_retries": 0, "backoff_base": 0.01, "backoff_max": 0.01}


def _compare(a: int, b: int) -> str:
    # The form ClinicalTrials.gov's Record History "Compare" opens; a and b count from 1.
    return f"https://clinicaltrials.gov/study/{NCT}?tab=history&a={a}&b={b}#version-content-panel"


def _enrollment(count: int) -> Any:
    def edit(study: dict[str, Any]) -> None:
        study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = count

    return edit


def _new_sites(first: int) -> Any:
    """Six new sites: enough for the message's "Sites: 6 added: …" summary line."""

    def edit(study: dict[str, Any]) -> None:
        module = study["protocolSection"].setdefault("contactsLocationsModule", {})
        module.setdefault("locations", []).extend(
            {"facility": f"Test Site {n}", "city": "Lyon", "country": "France", "status": "RECRUITING"}
            for n in range(first, first + 6)
        )

    return edit


def _changes(webhook: WebhookReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in webhook.requests if r.json().get("kind") == "changes"]


def _history_paths(fake_api: FakeCtGov) -> list[str]:
    return [r[1] for r in fake_api.requests if r[1].startswith("/api/int/")]


def _one_edit(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver, edit: Any, extra: str = ""
) -> dict[str, Any]:
    """A baseline `check`, one edit on the registry, a second `check`: the one change set's webhook document."""
    workspace.write(trials=[NCT], channels={"hook": {"url": webhook.url()}}, api=FAST, extra=extra)
    assert workspace.cli("check").code == 0  # version 0 on ClinicalTrials.gov: the baseline
    fake_api.update(NCT, edit)  # version 1
    assert workspace.cli("check").code == 0
    [doc] = _changes(webhook)
    return doc


def test_messages_link_to_the_comparison_of_the_two_versions(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    first = _one_edit(workspace, fake_api, webhook, _new_sites(1))
    assert first["links"]["compare"] == _compare(1, 2)
    assert first["links"]["history"] == _compare(1, 2), "no web view: the comparison ends the message"
    assert first["message"].rstrip().endswith(_compare(1, 2))

    fake_api.reset_requests()
    fake_api.update(NCT, _new_sites(7))  # version 2
    assert workspace.cli("check").code == 0
    second = _changes(webhook)[-1]
    assert second["links"]["compare"] == _compare(2, 3)
    assert _history_paths(fake_api) == [f"/api/int/studies/{NCT}"], (
        "the old version's number is stored: one request for the index, which carries the new version"
    )


def test_the_web_view_page_ends_the_message_and_the_comparison_stays_in_the_document(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    doc = _one_edit(workspace, fake_api, webhook, _new_sites(1), "web:\n  base_url: https://trials.example.org/\n")
    assert doc["links"]["history"] == f"https://trials.example.org/trials/{NCT}"
    assert doc["links"]["compare"] == _compare(1, 2)


def test_without_the_lookup_the_message_links_to_the_record_history(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    doc = _one_edit(workspace, fake_api, webhook, _new_sites(1), "backfill:\n  compare_links: false\n")
    assert doc["links"]["compare"] is None
    assert doc["links"]["history"] == f"https://clinicaltrials.gov/study/{NCT}?tab=history"
    assert _history_paths(fake_api) == []


def test_a_change_set_without_a_summary_line_costs_no_history_request(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    """A day of 1,000 trials changing their enrollment must not cost 1,000 record-history requests."""
    doc = _one_edit(workspace, fake_api, webhook, _enrollment(1234))
    assert [c["new"] for c in doc["changes"]] == [1234], "one change, the enrollment: no summary line"
    assert doc["links"]["compare"] is None
    assert doc["links"]["history"] == f"https://clinicaltrials.gov/study/{NCT}?tab=history"
    assert _history_paths(fake_api) == []

"""Outbox payloads as databases hold them: every kind stored by the release before typed payloads
(`stored_payloads.json`, schema 1) loads, renders and round-trips; what cannot be read is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from tests.support.peers import WebhookReceiver, wait_until
from tests.support.real_pairs import SETTINGS, pairs
from tests.support.workspace import Workspace
from watcher.config import ChannelSettings, load_config
from watcher.detect import changes_between
from watcher.detect.record import title_of
from watcher.errors import PayloadError
from watcher.messages import (
    PAYLOAD_SCHEMA,
    AlertPayload,
    ChangesPayload,
    DigestPayload,
    HeartbeatPayload,
    NewMessage,
    decode_payload,
    encode_payload,
)
from watcher.models import Trial
from watcher.notify.delivery import render
from watcher.notify.formats import FORMATS, Delivery, context
from watcher.notify.payloads import changes_payload, notify_tick
from watcher.notify.routing import for_stdout
from watcher.store.schema import OutboxRow

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
STORED: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "stored_payloads.json").read_text())
TODAY = [name for name in STORED if name != "changes_of_the_first_release"]


@pytest.mark.parametrize("name", TODAY)
def test_a_stored_payload_loads_and_writes_back_exactly_as_it_was(name: str) -> None:
    raw = STORED[name]
    payload = decode_payload(raw)
    assert payload.kind == raw["type"]
    assert json.loads(json.dumps(encode_payload(payload))) == raw, "what the JSON column stores"


@pytest.mark.parametrize("name", list(STORED))
def test_every_stored_payload_renders_in_every_format(name: str) -> None:
    ctx = context(decode_payload(STORED[name]), Delivery("ch", 3, NOW, NOW))
    assert ctx.title and ctx.body_text
    for kind, render_as in FORMATS.items():
        rendered = render_as(ctx)
        assert all(rendered.parts) or kind == "telegram", kind
    if name.startswith("changes"):
        assert ctx.title == (
            "NCT04728893 (Nemtabrutinib CLL): Status changed from RECRUITING to SUSPENDED: Sponsor decision (+3 more)"
        )


def test_a_change_set_of_the_first_release_gets_its_links_from_the_nct_id() -> None:
    raw = STORED["changes_of_the_first_release"]
    assert "history_url" not in raw
    ctx = context(decode_payload(raw), Delivery("ch", 3, NOW, NOW))
    assert ctx.trial is not None
    assert ctx.trial.history_url == "https://clinicaltrials.gov/study/NCT04728893?tab=history"
    assert "Full history: https://clinicaltrials.gov/study/NCT04728893?tab=history" in ctx.body_text


def test_the_kinds_are_typed() -> None:
    payloads = {name: decode_payload(raw) for name, raw in STORED.items()}
    assert isinstance(payloads["changes"], ChangesPayload) and payloads["changes"].version == 2
    assert isinstance(payloads["digest"], DigestPayload)
    assert [t.nct_id for t in payloads["digest"].trials] == ["NCT04728893", "NCT03418623"]
    assert isinstance(payloads["heartbeat"], HeartbeatPayload) and payloads["heartbeat"].trials_watched == 2
    alert = payloads["alert_about_the_service"]
    assert isinstance(alert, AlertPayload) and alert.nct_id is None


def test_a_message_takes_its_kind_and_trial_from_its_payload() -> None:
    change_set = NewMessage("hook", decode_payload(STORED["changes"]))
    assert (change_set.kind, change_set.nct_id) == ("changes", "NCT04728893")
    digest = NewMessage("hook", decode_payload(STORED["digest"]))
    assert (digest.kind, digest.nct_id) == ("digest", None)
    found = NewMessage("hook", decode_payload(STORED["new_trial"]))
    assert (found.kind, found.nct_id) == ("new_trial", "NCT07200001")


def test_keys_added_later_within_schema_1_are_ignored_by_this_reader() -> None:
    raw = {**STORED["alert_about_a_trial"], "severity": "major"}
    assert decode_payload(raw) == decode_payload(STORED["alert_about_a_trial"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"schema": PAYLOAD_SCHEMA + 1},
            "payload schema 2 was written by a newer TrialWatch; this version reads up to 1",
        ),
        ({"type": "telepathy"}, "payload cannot be read: Invalid value 'telepathy' - at `$.type`"),
        ({"changes": "not a list"}, "payload cannot be read: Expected `array`, got `str` - at `$.changes`"),
        ({"version": "2"}, "payload cannot be read: Expected `int`, got `str` - at `$.version`"),
        (
            {"changes": [{"field": "x", "change": "moved"}]},
            "payload cannot be read: Invalid enum value 'moved' - at `$.changes[0].change`",
        ),
    ],
)
def test_a_payload_that_cannot_be_read_is_named_with_the_field(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(PayloadError) as raised:
        decode_payload({**STORED["changes"], **change})
    assert str(raised.value) == expected


def test_every_real_change_set_survives_the_outbox_unchanged() -> None:
    """Real successive versions → changes → payload → the JSON column → payload: nothing lost or altered."""
    checked = 0
    for pair in pairs():
        changes = for_stdout(Trial(pair.nct_id), changes_between(pair.old, pair.new), SETTINGS)
        if not changes:
            continue
        payload = changes_payload(Trial(pair.nct_id), title_of(pair.new), changes, version=3, detected_at=NOW)
        stored = json.loads(json.dumps(encode_payload(payload)))
        assert decode_payload(stored) == payload, pair.id
        checked += 1
    assert checked > 50


def test_an_existing_database_delivers_what_it_held(workspace: Workspace, webhook: WebhookReceiver) -> None:
    """Rows written by the release before typed payloads (raw JSON in the outbox) reach the webhook."""
    workspace.write(trials=["NCT04728893"], channels={"hook": {"url": webhook.url()}})
    config = load_config(workspace.settings)
    store = workspace.store(config.settings.storage_url)
    with store.engine.begin() as conn:  # as the release before wrote them: plain JSON in the outbox
        for name in ("changes", "alert_about_the_service", "new_trial"):
            raw = STORED[name]
            conn.execute(
                sqlalchemy.insert(OutboxRow),
                {
                    "channel": "hook",
                    "nct_id": raw.get("nct_id"),
                    "kind": raw["type"],
                    "created_at": NOW,
                    "payload": raw,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                },
            )
    outcomes = notify_tick(config, store, now=lambda: NOW)
    wait_until(lambda: store.outbox.counts() == {"sent": 3}, timeout=30)
    assert all(o.accepted for o in outcomes)
    bodies = [r.json() for r in webhook.requests]
    assert [b["kind"] for b in bodies] == ["changes", "alert", "new_trial"]
    assert bodies[0]["trial"]["label"] == "Nemtabrutinib CLL" and len(bodies[0]["changes"]) == 4
    assert bodies[1]["nct_id"] is None and bodies[2]["search"] == "cll"


def test_a_template_reads_the_stored_facts_by_their_documented_names() -> None:
    body = (
        "{{ kind }}: {{ trial.display }} {{ count }} {% for c in changes %}[{{ c.field }} {{ c.severity }}]{% endfor %}"
    )
    channel = ChannelSettings(name="ch", url="ntfy://trialwatch", body_template=body)
    rendered = render(decode_payload(STORED["changes"]), channel, Delivery("ch", 1, NOW, NOW))
    assert rendered.parts == (
        "changes: NCT04728893 (Nemtabrutinib CLL) 4 [status.overallStatus critical][design.enrollmentCount minor]"
        "[locations.ruijin hospital|shanghai||china major][conditions.keywords minor]",
    )
    heartbeat = ChannelSettings(name="ch", url="ntfy://trialwatch", body_template="{{ trials_watched }} {{ text }}")
    rendered = render(decode_payload(STORED["heartbeat"]), heartbeat, Delivery("ch", 1, NOW, NOW))
    assert rendered.parts == (f"2 {STORED['heartbeat']['text']}",)

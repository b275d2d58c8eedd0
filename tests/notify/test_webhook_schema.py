"""The webhook document's published JSON Schema: generated from the document's typed definition,
and met by real documents (rendered from real successive versions of trials) and real requests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from tests.support.peers import WebhookReceiver
from tests.support.real_pairs import SETTINGS, pairs
from watcher.config import ChannelSettings
from watcher.detect import changes_between
from watcher.detect.record import title_of
from watcher.messages import (
    AlertPayload,
    ChangesPayload,
    HeartbeatPayload,
    NearbySitePayload,
    NewTrialPayload,
    NoEditPayload,
    Payload,
)
from watcher.models import Event, Trial
from watcher.notify.delivery import render
from watcher.notify.digest import digest_payload
from watcher.notify.formats import Delivery, json_schema
from watcher.notify.hook import envelope
from watcher.notify.payloads import changes_payload, sample_payload
from watcher.notify.routing import for_stdout
from watcher.notify.send import Sender

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "reference" / "webhook.schema.json"
NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
HOOK = ChannelSettings(name="hook", url="json://127.0.0.1:9/hook")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def document(payload: Payload, *, late: timedelta = timedelta(), message_id: int | None = 7) -> Mapping[str, Any]:
    rendered = render(payload, HOOK, Delivery("hook", message_id, NOW, NOW + late))
    assert rendered.document is not None
    return rendered.document


def real_change_sets() -> list[ChangesPayload]:
    found = []
    for pair in pairs():
        trial = Trial(pair.nct_id, label="a label" if len(found) % 2 else None)
        changes = for_stdout(trial, changes_between(pair.old, pair.new), SETTINGS)
        if changes:
            found.append(changes_payload(trial, title_of(pair.new), changes, version=2, detected_at=NOW))
    return found


def test_the_published_schema_is_the_one_generated_from_the_model() -> None:
    generated = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert PUBLISHED.read_text(encoding="utf-8") == generated, (
        "the document's definition changed: `python -m watcher.notify.schema > docs/reference/webhook.schema.json`"
    )


def test_every_real_change_set_and_their_digest_meet_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    change_sets = real_change_sets()
    assert len(change_sets) > 50
    for payload in change_sets:
        doc = document(payload)
        validator.validate(doc)
        assert doc["kind"] == "changes" and len(doc["changes"]) == len(payload.changes)
        assert list(doc)[:3] == ["schema", "schema_version", "kind"], "the order receivers have always had"
        # what is POSTed: apprise's envelope (its names may be moved by `:key=` URL arguments) and the document
        validator.validate(envelope("title", "message", doc, {}))
        validator.validate(envelope("title", "message", doc, {"message": "text", "version": ""}))
    digest = document(
        digest_payload(change_sets, since=NOW.isoformat(), until=NOW.isoformat()), late=timedelta(hours=2)
    )
    validator.validate(digest)
    assert digest["kind"] == "digest" and len(digest["trials"]) == len({p.nct_id for p in change_sets})
    assert digest["delayed_seconds"] == 7200


def test_every_other_kind_meets_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    event = Event("site_added_nearby", "New site 12 km away", {"km": 12.4, "facility": "Charité"})
    at = NOW.isoformat()
    url = "https://clinicaltrials.gov/study/NCT07200001"
    notices: list[Payload] = [
        AlertPayload(subject="API down", text="Polling failed 3 times."),
        AlertPayload(subject="NCT07200001 keeps failing", text="timeout", nct_id="NCT07200001"),
        HeartbeatPayload(
            subject="alive", text="Watching 2 trials", trials_watched=2, last_poll=None, next_poll=at, at=at
        ),
        NewTrialPayload(
            subject="New", text="t", nct_id="NCT07200001", url=url, detected_at=at, event=event, search="cll"
        ),
        NearbySitePayload(subject="Near", text="t", nct_id="NCT07200001", url=url, detected_at=at, event=event),
        NoEditPayload(subject="Overdue", text="t", nct_id="NCT07200001", url=url, detected_at=at, event=event),
    ]
    for payload in notices:
        doc = document(payload)
        validator.validate(doc)
        assert doc["kind"] == payload.kind
    sample = document(sample_payload(NOW), message_id=None)
    validator.validate(sample)
    assert sample["test"] is True and sample["message_id"] is None


@pytest.mark.parametrize(
    ("broken", "because"),
    [
        (lambda d: {k: v for k, v in d.items() if k != "message_id"}, "'message_id' is a required property"),
        (lambda d: {**d, "schema_version": 2}, "2 is not one of [1]"),
        (lambda d: {**d, "kind": "gossip"}, "'gossip' is not one of"),
        (lambda d: {**d, "changes": [{**d["changes"][0], "severity": "loud"}]}, "'loud' is not one of"),
        (lambda d: {**d, "links": {"study": d["links"]["study"]}}, "'history' is a required property"),
    ],
)
def test_the_schema_refuses_a_document_of_another_shape(
    validator: jsonschema.Draft202012Validator, broken: Any, because: str
) -> None:
    doc = broken(dict(document(msgspec.structs.replace(sample_payload(NOW), test=msgspec.UNSET))))
    errors = list(validator.iter_errors(doc))
    assert errors, "a schema that cannot fail checks nothing"
    messages = [e.message for error in errors for e in (error, *(error.context or ()))]
    assert any(because in m for m in messages), messages


def test_what_the_receiver_gets_meets_the_schema(
    validator: jsonschema.Draft202012Validator, webhook: WebhookReceiver
) -> None:
    channel = ChannelSettings(name="hook", url=webhook.url())
    for message_id, payload in enumerate(real_change_sets()[:5], start=1):
        rendered = render(payload, channel, Delivery("hook", message_id, NOW, NOW))
        Sender({"hook": channel}).send("hook", rendered, message_id=message_id)
    bodies = [request.json() for request in webhook.requests]
    assert len(bodies) == 5
    for body in bodies:
        validator.validate(body)
    assert [b["message_id"] for b in bodies] == [1, 2, 3, 4, 5]

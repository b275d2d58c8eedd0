"""The JSON webhook format: a structured, versioned document (schema `trialwatch.notification`)
beside apprise's own title/message envelope.

The document is typed below, one struct per kind (`kind` tells them apart), and its JSON Schema is
generated from these definitions (`json_schema`; published as `docs/reference/webhook.schema.json`,
kept equal to this by a test). New fields may be added within a `schema_version`; a field is never
removed or changes meaning without a new one.

Its keys sit beside apprise's envelope, so none may be one of apprise's names (`version`, `title`,
`message`, `attachments`, `type`): apprise would read it as a rename.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Literal, TypedDict

import msgspec

from watcher.messages import (
    AlertPayload,
    ChangesPayload,
    DigestPayload,
    HeartbeatPayload,
    NearbySitePayload,
    NewTrialPayload,
    NoEditPayload,
    Notice,
    Timestamp,
)
from watcher.models import ChangeKind, Event, Json, Severity
from watcher.notify.formats.context import ChangeContext, Context, SummaryEntry, TrialContext
from watcher.notify.formats.text import Rendered

SCHEMA: Literal["trialwatch.notification"] = "trialwatch.notification"
SCHEMA_VERSION: Literal[1] = 1


def _said(description: str) -> msgspec.Meta:
    return msgspec.Meta(description=description)


When = Annotated[Timestamp, _said("ISO 8601")]


class TrialRef(msgspec.Struct, frozen=True):
    """The trial: its NCT ID, the watchlist's label for it and its brief title."""

    nct_id: str
    label: str | None
    title: str | None


class EventItem(msgspec.Struct, frozen=True):
    """What a change or a discovery means: a stable `kind` (status_transition, date_slip, site_added,
    enrollment_change, …), a sentence for people, the numbers behind it for machines."""

    kind: str
    summary: str
    data: dict[str, Json]


def _event(event: Event) -> EventItem:
    return EventItem(event.kind, event.summary, dict(event.data))


class ChangeItem(msgspec.Struct, frozen=True):
    """One change. Every change of the message is here, those people read as a summary line too."""

    field: str
    change: Annotated[ChangeKind, _said("added, removed or changed")]
    old: Annotated[Json, _said("the raw old value, null when added")]
    new: Annotated[Json, _said("the raw new value, null when removed")]
    old_text: Annotated[str, _said("the old value in one line, as people read it")]
    new_text: Annotated[str, _said("the new value in one line, as people read it")]
    severity: Severity
    event: Annotated[EventItem | None, _said("what the change means, null when it means nothing more")]
    summarised: Annotated[
        str | None,
        _said("the list (locations, outcomes.secondary, …) whose summary line people read instead; null when shown"),
    ]


class SummaryItem(msgspec.Struct, frozen=True):
    """A summary line people read instead of the changes of one list."""

    family: Annotated[str, _said("the list: locations, outcomes.secondary, …")]
    summary: str
    changes: Annotated[int, _said("how many changes the line stands for")]


class Links(msgspec.Struct, frozen=True):
    """Where people read more: the trial on ClinicalTrials.gov, and the full list of changes."""

    study: Annotated[str, _said("the trial's page on ClinicalTrials.gov")]
    history: Annotated[
        str,
        _said(
            "the full list of changes, which human messages end with: the web view's trial page when "
            "web.base_url is set, else `compare` when known, else the trial's record history on ClinicalTrials.gov"
        ),
    ]
    compare: Annotated[
        str | None,
        _said("ClinicalTrials.gov's comparison of the two versions; null when its version numbers are not known"),
    ] = None


RecordVersion = Annotated[int | None, _said("TrialWatch's version number of the record, as `trialwatch history`")]
Highest = Annotated[Severity | None, _said("the highest severity of the changes")]
Changes = Annotated[list[ChangeItem], _said("every change, in clinical priority order")]
Summaries = Annotated[list[SummaryItem], _said("the summary lines people read instead of some of `changes`")]


class TrialDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One trial's changes, as each of a digest's `trials` (a `changes` document has the same fields)."""

    trial: TrialRef
    record_version: RecordVersion
    detected_at: Annotated[Timestamp | None, _said("when the change was detected (ISO 8601)")]
    severity: Highest
    changes: Changes
    summaries: Summaries
    links: Links


class _Document(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    schema: Literal["trialwatch.notification"]
    schema_version: Literal[1]
    test: Annotated[bool, _said("true for `trialwatch notify-test` samples")]
    message_id: Annotated[
        int | None, _said("the outbox message id, the same on every retry: drop duplicates by it; null in tests")
    ]
    channel: Annotated[str, _said("the channel's name in the settings file")]
    created_at: Annotated[Timestamp, _said("when the message was queued (ISO 8601)")]
    sent_at: Annotated[Timestamp, _said("when this delivery was made (ISO 8601)")]
    delayed_seconds: Annotated[int, _said("sent_at - created_at when the delivery was late, else 0")]


class ChangesDocument(_Document, frozen=True, kw_only=True, tag="changes"):
    """One trial's changes in one new version of its record."""

    trial: TrialRef
    record_version: RecordVersion
    detected_at: Annotated[Timestamp | None, _said("when the change was detected (ISO 8601)")]
    severity: Highest
    changes: Changes
    summaries: Summaries
    links: Links


class DigestDocument(_Document, frozen=True, kw_only=True, tag="digest"):
    """Every change set of a digest channel since its previous digest."""

    since: When
    until: When
    severity: Highest
    trials: Annotated[list[TrialDocument], _said("one per trial, most severe first")]


Subject = Annotated[str, _said("one line for people")]
Text = Annotated[str, _said("the message for people, plain text")]


class AlertDocument(_Document, frozen=True, kw_only=True, tag="alert"):
    """The service about itself: a trial or the API failing, recovering or moving, a rejected edit."""

    subject: Subject
    text: Text
    nct_id: Annotated[str | None, _said("the trial the alert is about, null when it is about the service")]


class HeartbeatDocument(_Document, frozen=True, kw_only=True, tag="heartbeat"):
    """The service is alive: how many trials it watches, its last and next poll."""

    subject: Subject
    text: Text
    trials_watched: int
    last_poll: Annotated[Timestamp | None, _said("the last successful poll (ISO 8601), null before the first")]
    next_poll: Annotated[Timestamp | None, _said("the next poll (ISO 8601), null when unknown")]


class NewTrialDocument(_Document, frozen=True, kw_only=True, tag="new_trial"):
    """A trial a saved search found for the first time."""

    subject: Subject
    text: Text
    nct_id: str
    event: Annotated[
        EventItem,
        _said("data: search, nct_id, title, phase, sponsor, status, first_posted, conditions, sites, places"),
    ]
    search: Annotated[str, _said("the saved search's name")]


class NearbySiteDocument(_Document, frozen=True, kw_only=True, tag="nearby_site"):
    """A site within a trial's `near:` distance that is new or newly open."""

    subject: Subject
    text: Text
    nct_id: str
    event: Annotated[
        EventItem, _said("data: facility, city, state, country, status, previous_status, km, lat, lon, radius_km")
    ]


class NoEditDocument(_Document, frozen=True, kw_only=True, tag="no_edit"):
    """A condition that needs no edit of the record: results overdue, status unverified, completion passed."""

    subject: Subject
    text: Text
    nct_id: str
    event: Annotated[EventItem, _said("data: the dates the rule read")]


Document = (
    ChangesDocument
    | DigestDocument
    | AlertDocument
    | HeartbeatDocument
    | NewTrialDocument
    | NearbySiteDocument
    | NoEditDocument
)


def _change(change: ChangeContext, summarised: dict[str, str]) -> ChangeItem:
    return ChangeItem(
        field=change.field,
        change=change.change,
        old=change.old,
        new=change.new,
        old_text=change.old_text,
        new_text=change.new_text,
        severity=change.severity,
        event=_event(change.event) if change.event is not None else None,
        summarised=summarised.get(change.field),
    )


def _trial(trial: TrialContext) -> TrialDocument:
    summarised = dict(trial.summarised)
    return TrialDocument(
        trial=TrialRef(trial.nct_id, trial.label, trial.title),
        record_version=trial.version,
        detected_at=trial.detected_at,
        severity=trial.severity,
        changes=[_change(c, summarised) for c in trial.changes],
        summaries=[SummaryItem(e.family, e.summary, e.count) for e in trial.entries if isinstance(e, SummaryEntry)],
        links=Links(study=trial.url, history=trial.history_url, compare=trial.compare_url),
    )


class _Common(TypedDict):
    schema: Literal["trialwatch.notification"]
    schema_version: Literal[1]
    test: bool
    message_id: int | None
    channel: str
    created_at: str
    sent_at: str
    delayed_seconds: int


def document(ctx: Context) -> Document:
    """The webhook's structured fields, schema `trialwatch.notification` version 1 (docs/reference/webhook.md)."""
    common: _Common = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "test": ctx.test,
        "message_id": ctx.message_id,
        "channel": ctx.channel,
        "created_at": ctx.created_at,
        "sent_at": ctx.sent_at,
        "delayed_seconds": ctx.delay_seconds if ctx.delay else 0,
    }
    payload = ctx.payload
    if isinstance(payload, ChangesPayload):
        assert ctx.trial is not None  # a change set is always one trial
        trial = _trial(ctx.trial)
        return ChangesDocument(
            **common,
            trial=trial.trial,
            record_version=trial.record_version,
            detected_at=trial.detected_at,
            severity=trial.severity,
            changes=trial.changes,
            summaries=trial.summaries,
            links=trial.links,
        )
    if isinstance(payload, DigestPayload):
        return DigestDocument(
            **common,
            since=payload.since,
            until=payload.until,
            severity=ctx.severity,
            trials=[_trial(t) for t in ctx.trials],
        )
    return _notice(common, payload)


def _notice(common: _Common, payload: Notice) -> Document:
    """An alert, a heartbeat or a discovery event: a subject and a text, and the kind's own facts."""
    subject, text = payload.subject, payload.text
    if isinstance(payload, AlertPayload):
        return AlertDocument(**common, subject=subject, text=text, nct_id=payload.nct_id)
    if isinstance(payload, HeartbeatPayload):
        return HeartbeatDocument(
            **common,
            subject=subject,
            text=text,
            trials_watched=payload.trials_watched,
            last_poll=payload.last_poll,
            next_poll=payload.next_poll,
        )
    if isinstance(payload, NewTrialPayload):
        return NewTrialDocument(
            **common,
            subject=subject,
            text=text,
            nct_id=payload.nct_id,
            event=_event(payload.event),
            search=payload.search,
        )
    if isinstance(payload, NearbySitePayload):
        return NearbySiteDocument(
            **common, subject=subject, text=text, nct_id=payload.nct_id, event=_event(payload.event)
        )
    assert isinstance(payload, NoEditPayload)
    return NoEditDocument(**common, subject=subject, text=text, nct_id=payload.nct_id, event=_event(payload.event))


def json_webhook(ctx: Context) -> Rendered:
    fields: dict[str, Json] = msgspec.to_builtins(document(ctx))
    # msgspec writes the tag first; schema_version 1 has always begun schema, schema_version, kind.
    head = {key: fields.pop(key) for key in ("schema", "schema_version", "kind")}
    return Rendered(title=ctx.title, parts=(ctx.body_text,), body_format="text", document={**head, **fields})


def _cleaned(node: Json) -> Json:
    """The schema in one form whatever the msgspec release (they differ in dedenting docstrings and in
    the order of a union's alternatives): descriptions as `inspect.cleandoc` gives them, `anyOf` sorted."""
    if isinstance(node, list):
        return [_cleaned(v) for v in node]
    if not isinstance(node, dict):
        return node
    cleaned = {k: inspect.cleandoc(v) if k == "description" else _cleaned(v) for k, v in node.items()}
    if "anyOf" in cleaned:
        cleaned["anyOf"] = sorted(cleaned["anyOf"], key=lambda v: json.dumps(v, sort_keys=True))
    return cleaned


def json_schema() -> dict[str, Json]:
    """The JSON Schema of the document, generated from the definitions above (draft 2020-12)."""
    generated: dict[str, Json] = _cleaned(msgspec.json.schema(Document))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "TrialWatch webhook notification (schema trialwatch.notification, schema_version 1)",
        "description": (
            "The JSON body a json:// or jsons:// channel receives: apprise's envelope (version, title, message "
            "- the plain-text body -, attachments, type) plus these fields, one shape per `kind`. Drop "
            "duplicates by `message_id`: a message can arrive twice when a crash falls between the "
            "receiver's answer and our record of it. New fields may be added within a schema_version; "
            "none is removed or changes meaning without a new one."
        ),
        **generated,
    }

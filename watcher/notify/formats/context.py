"""The message context: what every format and every user template reads about one message.

One `Context` per delivery (built from the typed payload by `watcher.notify.formats.build`), frozen
and typed, so mypy checks each format's use of it and a Slack line, an email row and a webhook
change object always agree. User templates read the same facts as plain data
(`template_variables`): the names documented in docs/how-to/notifications.md, "Templates".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.detect.describe import Segment
from watcher.messages import AlertPayload, ChangesPayload, DigestPayload, HeartbeatPayload, NewTrialPayload, Payload
from watcher.models import ChangeKind, Event, Json, Severity, is_registry_compare


@dataclass(frozen=True, slots=True)
class Delivery:
    """When and as what a payload is being delivered: the inputs that are not in the payload."""

    channel: str
    message_id: int | None
    created_at: datetime
    now: datetime
    delay_note_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ChangeContext:
    """One change as people read it: its values in words, the event's sentence, its line."""

    field: str
    change: ChangeKind
    old: Json
    new: Json
    old_text: str
    new_text: str
    diff: list[Segment] | None  # a long text's word diff; [] when only spacing changed
    sentence: bool  # the event's sentence stands in for the values (`new_text`)
    severity: Severity
    event: Event | None
    summary: str | None
    line: str
    rank: tuple[int, int]  # clinical priority, then severity (`detect.priority.order_key`)
    label: str = ""  # the field in words (`detect.describe.field_label`): a site or an arm by name, never its key

    @property
    def count(self) -> int:
        """Changes this entry stands for (see `SummaryEntry.count`)."""
        return 1


@dataclass(frozen=True, slots=True)
class SummaryEntry:
    """The changes of one list touching many items (a trial reopening 400 sites), as one line."""

    family: str  # the list: `locations`, `outcomes.secondary`, …
    fields: tuple[str, ...]  # the changes it stands for
    summary: str
    severity: Severity
    count: int
    items: int
    rank: tuple[int, int]

    @property
    def line(self) -> str:
        return self.summary


Entry = ChangeContext | SummaryEntry
"""What a human format lists: a change on its own, or a bulk summary in its place."""


@dataclass(frozen=True, slots=True)
class TrialContext:
    """One trial's part of a message, its changes in clinical priority order."""

    nct_id: str
    label: str | None
    title: str | None
    display: str  # `NCT… (label)`
    url: str
    history_url: str  # the full list every summarising message ends with (`notify.payloads.full_list_url`)
    version: int | None
    detected_at: str | None
    severity: Severity | None  # of its most severe change
    count: int
    changes: tuple[ChangeContext, ...]
    entries: tuple[Entry, ...]
    summarised: Mapping[str, str]  # field → the list whose summary line stands for it
    compare_url: str | None = None  # ClinicalTrials.gov's comparison of the two versions, when their numbers are known

    @property
    def history_label(self) -> str:
        """The words of the `history_url` link: what a reader gets by opening it. "Full history" on a
        link that opens the comparison of two versions sent people looking for a list that was not there."""
        return "Compare the two versions" if is_registry_compare(self.history_url) else "Full history"


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a format or template may say about one message for one channel."""

    payload: Payload
    kind: str
    channel: str
    message_id: int | None
    created_at: str
    sent_at: str
    delay: str | None  # the "Delayed delivery: …" sentence when late
    delay_seconds: int
    test: bool
    trials: tuple[TrialContext, ...] = ()
    trial: TrialContext | None = None
    changes: tuple[ChangeContext, ...] = ()
    count: int = 0
    severity: Severity | None = None
    headline: str = ""
    subject: str | None = None
    text: str | None = None
    since: str | None = None
    until: str | None = None
    title: str = field(default="")
    body_text: str = field(default="")


# -- what user templates see ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Our values as the plain data templates have always read (dicts and lists)."""
    if is_dataclass(value) and not isinstance(value, type):
        data = {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, ChangeContext):
            del data["rank"]
        return data
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and (not value or is_dataclass(value[0])):
        return [_plain(v) for v in value]
    return value


def _extras(payload: Payload) -> dict[str, Json]:
    """The kind's own facts, present only for the kinds that have them (templates are strict)."""
    if isinstance(payload, ChangesPayload | AlertPayload):
        return {"nct_id": payload.nct_id}
    if isinstance(payload, HeartbeatPayload):
        return {
            "trials_watched": payload.trials_watched,
            "last_poll": payload.last_poll,
            "next_poll": payload.next_poll,
        }
    if isinstance(payload, DigestPayload):
        return {}
    extra: dict[str, Json] = {"nct_id": payload.nct_id, "event": _plain(payload.event)}
    if isinstance(payload, NewTrialPayload):
        extra["search"] = payload.search
    return extra


def template_variables(ctx: Context) -> dict[str, Any]:
    """The variables of a user template: the context's facts as plain data, without the payload."""
    variables = {f.name: _plain(getattr(ctx, f.name)) for f in fields(ctx) if f.name != "payload"}
    return {**variables, **_extras(ctx.payload)}

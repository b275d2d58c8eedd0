"""What the outbox stores: one typed, versioned definition of every message payload.

A `NewMessage` is one payload owed to one channel. Its payload is one of the `Payload` kinds below,
stored as JSON in the outbox (the `type` key names the kind, `schema` its version) and read back
with `decode_payload` when the message is delivered or folded into a digest. Nothing here does
I/O, so the pure stages (routing, formats) and the store can all import it.

Why msgspec: the payloads are plain JSON values written once and read back by the notifier, so
they want a typed definition that mypy checks where they are built and read, a check on the way
back in (a row a newer TrialWatch wrote, or one edited by hand, is named exactly: "Expected
`array`, got `str` - at `$.changes`"), and a JSON Schema generated from the same kind of
definition for the webhook document. `bench/bench_payloads.py` measures reading and writing real
change sets through the outbox's JSON column (CPU time, 3 runs, ratios to the bare JSON round trip
every option pays): on the median change set (4 changes) msgspec, hand-written dataclass
conversion and pydantic 2 all cost ~1.65x (+22 µs); on the largest (461 changes) msgspec 1.3-1.4x,
dataclasses 1.6x, pydantic 2.9-3.6x. A TypedDict costs nothing because it converts and checks
nothing and generates no schema. msgspec adds 3-7 ms of import and 0.5 MB in one package without
dependencies; pydantic 78-119 ms (with one model defined) and 7.3 MB in four packages.

Compatibility: every payload a released TrialWatch stored loads (schema 1). Fields that early
releases did not write (a change set's `history_url`, `ctgov_versions`) are optional; unknown keys are
ignored, so a field added within schema 1 does not break an older reader. A payload whose `schema`
is newer than `PAYLOAD_SCHEMA` is refused by name rather than misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from watcher.errors import PayloadError
from watcher.models import Change, Event, Json

PAYLOAD_SCHEMA = 1
"""The version of the payloads written today; `decode_payload` reads this one and every older one."""

Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
"""An ISO 8601 time, kept as the text it was written as (what webhooks pass on unchanged)."""


class _Payload(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    schema: int = PAYLOAD_SCHEMA

    @property
    def kind(self) -> str:
        """The payload's kind as stored (`type`) and as the outbox row names it."""
        return str(self.__struct_config__.tag)


CtgovVersions = tuple[int, int]
"""ClinicalTrials.gov's numbers (from 0, as its record history counts) of the old and the new version
a change set compares, when both are known: what its comparison page (`models.compare_url`) needs."""


class ChangesPayload(_Payload, frozen=True, kw_only=True, tag="changes"):
    """One trial's changes in one new version, for one channel."""

    nct_id: str
    label: str | None
    title: str | None
    url: str | None = None  # when absent, derived from nct_id
    history_url: str | None = None  # the first release wrote none
    version: int
    detected_at: Timestamp
    changes: tuple[Change, ...]
    test: bool | msgspec.UnsetType = msgspec.UNSET  # true only in `notify-test` samples, never stored
    ctgov_versions: CtgovVersions | msgspec.UnsetType = msgspec.UNSET  # written only when known

    @property
    def compared(self) -> CtgovVersions | None:
        """`ctgov_versions` when known."""
        return self.ctgov_versions if isinstance(self.ctgov_versions, tuple) else None


class DigestTrial(msgspec.Struct, frozen=True, kw_only=True):
    """One trial's part of a digest: every change set folded since the last digest."""

    nct_id: str
    url: str | None = None
    history_url: str | None = None
    detected_at: Timestamp | None
    changes: tuple[Change, ...]
    label: str | None
    title: str | None
    version: int | None
    ctgov_versions: CtgovVersions | msgspec.UnsetType = msgspec.UNSET  # the first set's old, the last one's new

    @property
    def compared(self) -> CtgovVersions | None:
        """`ctgov_versions` when known."""
        return self.ctgov_versions if isinstance(self.ctgov_versions, tuple) else None


class DigestPayload(_Payload, frozen=True, kw_only=True, tag="digest"):
    """Every change set a digest channel was owed between `since` and `until`, grouped by trial."""

    since: Timestamp
    until: Timestamp
    trials: tuple[DigestTrial, ...]


class AlertPayload(_Payload, frozen=True, kw_only=True, tag="alert"):
    """The service telling people about itself: a trial or the API failing, recovering, a rejected edit."""

    subject: str
    text: str
    nct_id: str | None = None


class HeartbeatPayload(_Payload, frozen=True, kw_only=True, tag="heartbeat"):
    """The service saying it is alive: what it watches, its last and next poll (`at`: when it said so)."""

    subject: str
    text: str
    trials_watched: int
    last_poll: Timestamp | None
    next_poll: Timestamp | None
    at: Timestamp


class _DiscoveryPayload(_Payload, frozen=True, kw_only=True):
    """An event about a trial that is not a field change: its facts for machines in `event.data`."""

    subject: str
    text: str
    nct_id: str
    url: str
    detected_at: Timestamp
    event: Event


class NewTrialPayload(_DiscoveryPayload, frozen=True, kw_only=True, tag="new_trial"):
    search: str


class NearbySitePayload(_DiscoveryPayload, frozen=True, kw_only=True, tag="nearby_site"):
    pass


class NoEditPayload(_DiscoveryPayload, frozen=True, kw_only=True, tag="no_edit"):
    pass


Payload = (
    ChangesPayload
    | DigestPayload
    | AlertPayload
    | HeartbeatPayload
    | NewTrialPayload
    | NearbySitePayload
    | NoEditPayload
)
DiscoveryPayload = NewTrialPayload | NearbySitePayload | NoEditPayload
Notice = AlertPayload | HeartbeatPayload | DiscoveryPayload
"""The kinds that are a subject and a text for people (every kind but change sets and digests)."""


def decode_payload(raw: Mapping[str, Json]) -> Payload:
    """A stored payload, typed; PayloadError names what is wrong and where."""
    version = raw.get("schema", PAYLOAD_SCHEMA)
    if isinstance(version, int) and version > PAYLOAD_SCHEMA:
        raise PayloadError(
            f"payload schema {version} was written by a newer TrialWatch; this version reads up to {PAYLOAD_SCHEMA}"
        )
    try:
        payload: Payload = msgspec.convert(raw, Payload)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"payload cannot be read: {exc}") from exc
    return payload


def encode_payload(payload: Payload) -> dict[str, Json]:
    """The payload as the JSON data the outbox stores (and `decode_payload` reads back). Its arrays
    are the frozen payload's tuples, which the JSON column writes as arrays like lists."""
    data: dict[str, Any] = msgspec.to_builtins(payload)
    return data


MINOR_HELD = "changes.minor"
"""The outbox kind of a change set holding only minor changes that waits for its channel's digest
(`minor` setting): never sent on its own, folded with the digest (its payload is a `changes` one)."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One payload owed to one channel, before the outbox gives it an id."""

    channel: str
    payload: Payload
    held: bool = False  # a minor-only change set waiting for the channel's daily digest

    @property
    def kind(self) -> str:
        """The outbox kind: the payload's, except that a held change set is `MINOR_HELD` until folded."""
        return MINOR_HELD if self.held else self.payload.kind

    @property
    def nct_id(self) -> str | None:
        """The trial the message is about, if one (a digest or a heartbeat is about many)."""
        if isinstance(self.payload, DigestPayload | HeartbeatPayload):
            return None
        return self.payload.nct_id

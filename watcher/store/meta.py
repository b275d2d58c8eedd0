"""Every key of the `meta` table, each with the type of its value and how that value is stored.

`meta` holds the small facts that outlive a process: the registry-wide poll gate, the API's
health, partial records held back, the schedules of retention, digests, heartbeats and daily
checks, deliveries in progress, and the service's own record that `trialwatch status` reads.
Each kind of key is defined here once, as a `MetaKey` whose codec turns the typed value into the
JSON stored and back; keys that differ by a name (a channel, a search, a trial, a message) are a
`MetaKeys` family. The stored forms are those the keys always had (ISO 8601 text for times, 1/0
for flags), so existing databases are read as they are.

A value that cannot be read (absent, or not of its kind) reads as None: the code that uses a key
already treats "never set" as the safe default, and a hand-edited row must not stop the service.

Read and write with `store.meta` (each call its own transaction) or `Transaction.meta` (inside
the caller's transaction, e.g. a failure counter and the alert it raises).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.models import Json
from watcher.store.schema import MetaRow
from watcher.times import parse_utc

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    """How a value is stored as JSON (`encode`) and read back (`decode`: None when it cannot be)."""

    encode: Callable[[T], Json]
    decode: Callable[[Json], T | None]


@dataclass(frozen=True, slots=True)
class MetaEntry:
    """One key and its stored (encoded) value, for writing several keys in one transaction."""

    key: str
    value: Json


@dataclass(frozen=True, slots=True)
class MetaKey(Generic[T]):
    key: str
    codec: Codec[T]

    def encode(self, value: T | None) -> Json:
        return None if value is None else self.codec.encode(value)

    def decode(self, stored: Json) -> T | None:
        return None if stored is None else self.codec.decode(stored)

    def to(self, value: T | None) -> MetaEntry:
        """This key set to `value` (None clears it), to pass to `update`."""
        return MetaEntry(self.key, self.encode(value))


@dataclass(frozen=True, slots=True)
class MetaKeys(Generic[T]):
    """A family of keys that differ by a name: `pattern` with `{}` where the name goes."""

    pattern: str
    codec: Codec[T]

    def of(self, name: str | int) -> MetaKey[T]:
        return MetaKey(self.pattern.format(name), self.codec)


# -- codecs ----------------------------------------------------------------------------------------


def _int(value: Json) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Json) -> str | None:
    return value if isinstance(value, str) else None


def _day(value: Json) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _texts(value: Json) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None


TIME: Codec[datetime] = Codec(lambda v: v.isoformat(), parse_utc)
DAY: Codec[date] = Codec(lambda v: v.isoformat(), _day)
COUNT: Codec[int] = Codec(lambda v: v, _int)
TEXT: Codec[str] = Codec(lambda v: v, _text)
TEXTS: Codec[list[str]] = Codec(list, _texts)
FLAG: Codec[bool] = Codec(lambda v: 1 if v else 0, lambda v: bool(v) if isinstance(v, int) else None)


@dataclass(frozen=True, slots=True)
class SuspectRecord:
    """A partial record held back instead of diffed: its hash, the cycles it was seen in, what it lacks."""

    hash: str
    seen: int
    missing: list[str]


@dataclass(frozen=True, slots=True)
class SearchRun:
    """A saved search's last complete run: its query's hash and the registry's data timestamp then."""

    hash: str
    day: date
    stamp: str


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds an outbox message's claim, since when, and how many dead claimers came before."""

    by: str | None
    at: datetime | None
    recoveries: int


@dataclass(frozen=True, slots=True)
class PartsSent:
    """A split message part-way out: the parts the channel accepted, and when it was rendered."""

    sent: int
    rendered_at: datetime


def _suspect(value: Json) -> SuspectRecord | None:
    if not isinstance(value, dict) or not isinstance(value.get("hash"), str):
        return None
    return SuspectRecord(value["hash"], _int(value.get("seen")) or 0, _texts(value.get("missing")) or [])


def _search_run(value: Json) -> SearchRun | None:
    if not isinstance(value, dict) or not isinstance(value.get("hash"), str):
        return None
    day, stamp = _day(value.get("day")), _text(value.get("stamp"))
    return SearchRun(value["hash"], day, stamp) if day is not None and stamp is not None else None


def _claim(value: Json) -> Claim | None:
    if not isinstance(value, dict):
        return None
    return Claim(_text(value.get("by")), parse_utc(value.get("at")), _int(value.get("recoveries")) or 0)


def _parts(value: Json) -> PartsSent | None:
    if not isinstance(value, dict):
        return None
    sent, rendered_at = _int(value.get("sent")), parse_utc(value.get("rendered_at"))
    return PartsSent(sent, rendered_at) if sent is not None and rendered_at is not None else None


SUSPECT_RECORD: Codec[SuspectRecord] = Codec(
    lambda v: {"hash": v.hash, "seen": v.seen, "missing": list(v.missing)}, _suspect
)
SEARCH_RUN: Codec[SearchRun] = Codec(
    lambda v: {"hash": v.hash, "day": v.day.isoformat(), "stamp": v.stamp}, _search_run
)
CLAIM: Codec[Claim] = Codec(
    lambda v: {"by": v.by, "at": v.at.isoformat() if v.at else None, "recoveries": v.recoveries}, _claim
)
PARTS: Codec[PartsSent] = Codec(lambda v: {"sent": v.sent, "rendered_at": v.rendered_at.isoformat()}, _parts)


@dataclass(frozen=True, slots=True)
class ChannelDown:
    """A channel refusing every message since `since` (its last refusal said `error`); `alerted` once
    the other channels were told."""

    since: datetime
    error: str
    alerted: bool = False


def _down(value: Json) -> ChannelDown | None:
    if not isinstance(value, dict) or (since := parse_utc(value.get("since"))) is None:
        return None
    return ChannelDown(since, _text(value.get("error")) or "", bool(value.get("alerted")))


CHANNEL_DOWN: Codec[ChannelDown] = Codec(
    lambda v: {"since": v.since.isoformat(), "error": v.error, "alerted": v.alerted}, _down
)

# -- the keys --------------------------------------------------------------------------------------

# The registry-wide poll gate (`watcher.cycle.gate`): it speaks for every watched trial, so only a
# cycle that polled them all moves it.
DATA_TIMESTAMP = MetaKey("poll.data_timestamp", TEXT)
"""The registry's own data timestamp at the last complete poll, as ClinicalTrials.gov wrote it."""
LAST_SUCCESS = MetaKey("poll.last_success", TIME)
"""When the last cycle that polled every trial without a failure started."""
LAST_FULL_REFETCH = MetaKey("poll.last_full_refetch", TIME)

# The registry's health (`watcher.cycle.outage`).
API_FAILURES = MetaKey("poll.api_failures", COUNT)
"""Cycles in a row that failed at the API level (unreachable, refusing, failing for most trials)."""
API_DENIED = MetaKey("poll.api_denied", FLAG)
"""A 403 was reported to the operator; cleared, and said so, on recovery."""
API_RETRY_AT = MetaKey("poll.api_retry_at", TIME)
"""After a 403, no request before this time."""

SUSPECT = MetaKeys("poll.suspect.{}", SUSPECT_RECORD)
"""By NCT ID: a partial record held back (`watcher.cycle.partial`)."""

LAST_RETENTION = MetaKey("storage.last_retention", TIME)
NOEDIT_LAST_DAY = MetaKey("noedit.last_day", DAY)
"""The UTC day the no-edit conditions were last checked (`watcher.discovery.daily`)."""
SEARCH = MetaKeys("search.{}", SEARCH_RUN)
"""By search name (`watcher.discovery.searches`)."""

DIGEST_LAST = MetaKeys("digest.{}.last", TIME)
"""By channel: when its last digest was folded (`watcher.notify.digest`)."""
HEARTBEAT_LAST = MetaKeys("heartbeat.{}.last", TIME)
"""By channel: when its last heartbeat was queued."""
OUTBOX_CLAIM = MetaKeys("outbox.claim.{}", CLAIM)
"""By message id, while it is claimed (`watcher.store.outbox`)."""
PARTS_SENT = MetaKeys("outbox.parts.{}", PARTS)
"""By message id, while a split message is part-way out (`watcher.notify.delivery`)."""
CHANNEL_FAILING = MetaKeys("notify.failing.{}", CHANNEL_DOWN)
"""By channel name, while the channel refuses every message (`watcher.notify.delivery`)."""

# The running service's record of itself (`watcher.service`), read by `trialwatch status`.
SERVICE_STATE = MetaKey("service.state", TEXT)
"""running | stopping | stopped."""
SERVICE_PID = MetaKey("service.pid", COUNT)
SERVICE_STARTED = MetaKey("service.started_at", TIME)
SERVICE_STOPPED = MetaKey("service.stopped_at", TIME)
SERVICE_HEARTBEAT = MetaKey("service.heartbeat", TIME)
SERVICE_NEXT_CYCLE = MetaKey("service.next_cycle", TIME)
SERVICE_CYCLE_STARTED = MetaKey("service.cycle_started_at", TIME)
"""Set while a cycle runs."""
SERVICE_HEALTH = MetaKey("service.health", TEXT)
""""ok", or why the watchdog is withheld."""
SERVICE_WATCHLIST_ERROR = MetaKey("service.watchlist_error", TEXTS)
"""The problems of the last rejected edit, until a good one."""
SERVICE_TRIALS = MetaKey("service.trials", COUNT)
"""How many trials the running service watches."""

INSTALLATION = MetaKey("installation.id", TEXT)
"""A random id made once per database: a webhook's Idempotency-Key and an email's Message-ID carry
it, so two installations (or one database rebuilt) never send one key with different content."""


# -- reading and writing ---------------------------------------------------------------------------


class MetaIn:
    """`meta` read and written inside a transaction the caller holds."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: MetaKey[T]) -> T | None:
        row = self._session.get(MetaRow, key.key)
        return key.decode(row.value) if row is not None else None

    def set(self, key: MetaKey[T], value: T | None) -> None:
        """Store `value`; None clears the key."""
        self.update(key.to(value))

    def update(self, *entries: MetaEntry) -> None:
        for entry in entries:
            self._session.merge(MetaRow(key=entry.key, value=entry.value))


class Meta:
    """`store.meta`: each call is a transaction of its own."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def get(self, key: MetaKey[T]) -> T | None:
        with self._session() as s:
            return MetaIn(s).get(key)

    def set(self, key: MetaKey[T], value: T | None) -> None:
        with self._session() as s:
            MetaIn(s).set(key, value)

    def present(self, keys: Sequence[MetaKey[Any]]) -> frozenset[str]:
        """Which of these keys are set, in one query per 500 (a page of trials asks at once). A cleared
        key keeps its row with a JSON null (`set(key, None)`): not set."""
        names = sorted({k.key for k in keys})
        found: list[str] = []
        with self._session() as s:
            for start in range(0, len(names), 500):
                chunk = names[start : start + 500]
                rows = s.execute(select(MetaRow.key, MetaRow.value).where(MetaRow.key.in_(chunk)))
                found.extend(key for key, value in rows if value is not None)
        return frozenset(found)

    def update(self, *entries: MetaEntry) -> None:
        """Several keys in one transaction."""
        with self._session() as s:
            MetaIn(s).update(*entries)

    def setdefault(self, key: MetaKey[T], make: Callable[[], T]) -> T:
        """The key's value; when it has none, `make()` is stored first. Two processes racing store
        one value: the insert does nothing when the other's is already there, and both read it back."""
        found = self.get(key)
        if found is not None:
            return found
        with self._session() as s:
            dialect = s.get_bind().dialect.name
            if dialect == "postgresql":  # imported when used: PostgreSQL's dialect imports asyncio
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
            s.execute(insert(MetaRow).values(key=key.key, value=key.encode(make())).on_conflict_do_nothing())
        stored = self.get(key)
        if stored is None:
            raise ValueError(f"meta key {key.key!r} holds a value that is not of its kind")
        return stored


def installation_id(meta: Meta) -> str:
    """This database's installation id (`INSTALLATION`), made on first use."""
    return meta.setdefault(INSTALLATION, lambda: uuid.uuid4().hex)

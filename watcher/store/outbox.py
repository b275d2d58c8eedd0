"""The outbox queue: messages owed to channels, claimed, sent, retried, parked.

A message moves pending → sending (claimed; `next_attempt_at` is the claim's lease) → sent,
or back to pending (retry later) and in the end to parked; on a digest channel, pending
"changes" messages become `digested` when folded into one "digest" message. A `Store` holds
one `OutboxQueue` as `store.outbox`; the sender itself is `watcher.notify.delivery`.

Methods ending in `_in` take a session the caller has open, so that outbox rows commit in the
caller's transaction (a new version and the messages it causes commit together or not at all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from watcher.messages import MINOR_HELD, NewMessage, Payload, encode_payload
from watcher.models import Json
from watcher.store.meta import OUTBOX_CLAIM, Claim, MetaEntry, MetaIn, MetaKey
from watcher.store.schema import MetaRow, OutboxRow

UNDELIVERED = ("pending", "sending")

FREE_RECOVERIES = 2
"""Claims of dead processes taken over in a row before a takeover counts as an attempt."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A stored message as handed out; `payload` is the stored JSON, typed (or parked) by the notifier."""

    id: int
    channel: str
    nct_id: str | None
    kind: str
    created_at: datetime
    payload: Mapping[str, Json]
    attempts: int
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """A channel's undelivered messages and its head (not counting changes held for a digest)."""

    channel: str
    count: int
    head: OutboxMessage | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Head:
    """A channel's oldest undelivered message, as a notify tick sees it."""

    id: int
    channel: str
    status: str
    next_attempt_at: datetime | None
    claimed_by: str | None = None


def claim_key(message_id: int) -> str:
    """Meta key naming the process that holds a message's claim (removed when the claim ends)."""
    return OUTBOX_CLAIM.of(message_id).key


def _claim(value: Json | None) -> Claim | None:
    return OUTBOX_CLAIM.codec.decode(value) if value is not None else None


def _claimer(value: Json | None) -> str | None:
    claim = _claim(value)
    return claim.by if claim is not None else None


def _claimable(head: Head, now: datetime, is_dead: Callable[[str], bool] | None) -> bool:
    """Due, or claimed by a process that is gone: its lease ran out, or it is known dead."""
    if head.next_attempt_at is None or head.next_attempt_at <= now:
        return True
    return head.status == "sending" and head.claimed_by is not None and is_dead is not None and is_dead(head.claimed_by)


def _message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        channel=row.channel,
        nct_id=row.nct_id,
        kind=row.kind,
        created_at=row.created_at,
        payload=row.payload,
        attempts=row.attempts,
        status=row.status,
        last_error=row.last_error,
    )


class OutboxQueue:
    """The outbox's queries. Each public method is one transaction of its own."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]], *, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    # -- inside a caller's transaction -------------------------------------------------------------

    @staticmethod
    def enqueue_in(s: Session, messages: Sequence[NewMessage], at: datetime) -> None:
        """Add pending messages in the caller's open session: they commit with its transaction."""
        OutboxQueue.insert_many_in(s, [(msg, at) for msg in messages])

    @staticmethod
    def insert_many_in(s: Session, messages: Sequence[tuple[NewMessage, datetime]]) -> None:
        """Add pending messages (each with its creation time) in ONE executemany statement, in the
        caller's open session: a page of new versions queues its messages in one round trip."""
        if not messages:
            return
        s.execute(
            insert(OutboxRow),
            [
                {
                    "channel": msg.channel,
                    "nct_id": msg.nct_id,
                    "kind": msg.kind,
                    "created_at": at,
                    "payload": encode_payload(msg.payload),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                }
                for msg, at in messages
            ],
        )

    @staticmethod
    def shift_versions_in(s: Session, nct_id: str, shift: int) -> None:
        """Add `shift` to the version number in a trial's message payloads (older versions were prepended)."""
        for row in s.scalars(select(OutboxRow).where(OutboxRow.nct_id == nct_id)):
            payload = row.payload
            if isinstance(payload, dict) and isinstance(payload.get("version"), int):
                row.payload = {**payload, "version": payload["version"] + shift}

    # -- transactions of their own -----------------------------------------------------------------

    def enqueue(self, messages: Sequence[NewMessage], at: datetime) -> None:
        with self._session() as s:
            self.enqueue_in(s, messages, at)

    def counts(self) -> dict[str, int]:
        with self._session() as s:
            rows = s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
            return {r[0]: int(r[1]) for r in rows}

    def is_waiting(self, channel: str, kind: str) -> bool:
        """Whether a message of this kind waits (pending) for the channel: one index range, no payloads."""
        with self._session() as s:
            return (
                s.scalar(
                    select(OutboxRow.id)
                    .where(OutboxRow.status == "pending", OutboxRow.channel == channel, OutboxRow.kind == kind)
                    .limit(1)
                )
                is not None
            )

    def messages(self, *, status: str | None = None) -> list[OutboxMessage]:
        with self._session() as s:
            query = select(OutboxRow).order_by(OutboxRow.id)
            if status:
                query = query.where(OutboxRow.status == status)
            return [_message(r) for r in s.scalars(query)]

    # The sender's side of the outbox (watcher.notify.delivery). A message moves
    #   pending → sending (claimed; next_attempt_at is the claim's lease) → sent
    #                                                                   → pending (retry later) → … → parked
    # and, on a digest channel, pending "changes" → digested (folded into one "digest" message).

    def _head_in(self, s: Session, channel: str, held: bool) -> int | None:
        """The id of a channel's oldest undelivered message: one index seek per status on
        (status, channel, id), however long the queue. A held (digest) channel's "changes" wait
        to be folded and are skipped, as are minor-only change sets held for a daily digest."""
        ids = []
        for status in UNDELIVERED:
            query = select(func.min(OutboxRow.id)).where(OutboxRow.status == status, OutboxRow.channel == channel)
            query = query.where(OutboxRow.kind.not_in(("changes", MINOR_HELD) if held else (MINOR_HELD,)))
            ids.append(s.scalar(query))
        return min((i for i in ids if i is not None), default=None)

    @staticmethod
    def _channels_in(s: Session) -> list[str]:
        """Channels with undelivered messages: a skip scan over the (status, channel, id) index, a
        few seeks per channel instead of reading every pending row."""
        found: set[str] = set()
        for status in UNDELIVERED:
            last: str | None = None
            while True:
                query = select(func.min(OutboxRow.channel)).where(OutboxRow.status == status)
                if last is not None:
                    query = query.where(OutboxRow.channel > last)
                last = s.scalar(query)
                if last is None:
                    break
                found.add(last)
        return sorted(found)

    def heads(self, *, held_channels: Sequence[str] = ()) -> list[Head]:
        """Each channel's queue head (what a notify tick may have work for), with who claimed it."""
        with self._session() as s:
            ids = [self._head_in(s, channel, channel in held_channels) for channel in self._channels_in(s)]
            rows = s.execute(
                select(OutboxRow.id, OutboxRow.channel, OutboxRow.status, OutboxRow.next_attempt_at)
                .where(OutboxRow.id.in_([i for i in ids if i is not None]))
                .order_by(OutboxRow.id)
            ).all()
            claims = {
                row.key: row.value
                for row in s.scalars(
                    select(MetaRow).where(MetaRow.key.in_([claim_key(r.id) for r in rows if r.status == "sending"]))
                )
            }
            return [
                Head(
                    id=r.id,
                    channel=r.channel,
                    status=r.status,
                    next_attempt_at=r.next_attempt_at,
                    claimed_by=_claimer(claims.get(claim_key(r.id))),
                )
                for r in rows
            ]

    def due_channels(
        self, now: datetime, *, held_channels: Sequence[str] = (), is_dead: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Channels whose queue head can be claimed now (see `claim_next`)."""
        return [h.channel for h in self.heads(held_channels=held_channels) if _claimable(h, now, is_dead)]

    def claim_next(
        self,
        now: datetime,
        *,
        lease_until: datetime,
        held_channels: Sequence[str] = (),
        channel: str | None = None,
        claimer: str | None = None,
        is_dead: Callable[[str], bool] | None = None,
    ) -> tuple[OutboxMessage, bool] | None:
        """Claim the head of one channel's queue (of any channel when `channel` is None), if it
        can be claimed now; None when none can.

        Only a queue's head is ever claimed, so a channel's messages go out in order and a failing
        head holds back its own channel only. A head can be claimed when it is due, or when it is
        `sending` for a process that died: its lease ran out, or `is_dead(claimer)` says the
        process that claimed it is gone (then at once; `watcher.notify.claims`). Such a recovered
        claim returns True as its second value, and does not count as an attempt (up to
        FREE_RECOVERIES in a row): the interrupted send was no refusal by the channel. The claim is
        a compare-and-set UPDATE (on PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), so two
        processes sharing the database never claim one message twice. `claimer` (who claims) is
        kept beside the claim until it ends.
        """
        with self._session() as s:
            channels = [channel] if channel is not None else self._channels_in(s)
            ids = [i for i in (self._head_in(s, c, c in held_channels) for c in channels) if i is not None]
            if not ids:
                return None
            query = (
                select(OutboxRow)
                .where(OutboxRow.id.in_(ids), OutboxRow.status.in_(UNDELIVERED))
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
            )
            if self._dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(s.scalars(query))
            claims = {
                m.key: m.value
                for m in s.scalars(
                    select(MetaRow).where(MetaRow.key.in_([claim_key(r.id) for r in rows if r.status == "sending"]))
                )
            }
            for row in rows:
                head = Head(
                    id=row.id,
                    channel=row.channel,
                    status=row.status,
                    next_attempt_at=row.next_attempt_at,
                    claimed_by=_claimer(claims.get(claim_key(row.id))),
                )
                if _claimable(head, now, is_dead):
                    break
            else:
                return None
            recovered = row.status == "sending"
            previous = _claim(claims.get(claim_key(row.id)))
            before = previous.recoveries if previous is not None else 0
            recoveries = before + 1 if recovered else 0
            # A cut-off send is no refusal, but a message that kills its sender every time must still
            # reach parking: past FREE_RECOVERIES recoveries in a row, each counts as an attempt.
            attempts = row.attempts if 0 < recoveries <= FREE_RECOVERIES else row.attempts + 1
            condition = [OutboxRow.id == row.id, OutboxRow.status == row.status]
            if row.next_attempt_at is not None:
                condition.append(OutboxRow.next_attempt_at == row.next_attempt_at)
            claimed = s.execute(
                update(OutboxRow)
                .where(*condition)
                .values(status="sending", next_attempt_at=lease_until, attempts=attempts)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            if claimer is not None:
                MetaIn(s).set(OUTBOX_CLAIM.of(row.id), Claim(claimer, now, recoveries))
            elif recovered:
                s.execute(delete(MetaRow).where(MetaRow.key == claim_key(row.id)))
            message = OutboxMessage(
                id=row.id,
                channel=row.channel,
                nct_id=row.nct_id,
                kind=row.kind,
                created_at=row.created_at,
                payload=row.payload,
                attempts=attempts,
                status="sending",
                last_error=row.last_error,
            )
            return message, recovered

    def finish_sent(self, message_id: int, at: datetime, *, clear_meta: MetaKey[Any] | None = None) -> None:
        """The channel accepted the message: mark it sent (and drop its part-progress key)."""
        with self._session() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(status="sent", sent_at=at, last_error=None, next_attempt_at=None)
            )
            keys = [claim_key(message_id), *([clear_meta.key] if clear_meta else [])]
            s.execute(delete(MetaRow).where(MetaRow.key.in_(keys)))

    def finish_failed(self, message_id: int, error: str, *, retry_at: datetime | None) -> None:
        """A claimed message was refused: back to pending until `retry_at`, or parked (None)."""
        with self._session() as s:
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id)
                .values(status="pending" if retry_at else "parked", last_error=error, next_attempt_at=retry_at)
            )
            s.execute(delete(MetaRow).where(MetaRow.key == claim_key(message_id)))

    def fold_digest(
        self,
        channel: str,
        *,
        at: datetime,
        build: Callable[[Sequence[OutboxMessage]], tuple[Payload | None, Mapping[int, str]]],
        meta: Sequence[MetaEntry],
        everything: bool = True,
    ) -> int | None:
        """Fold a digest channel's pending "changes" (`everything=False`: only its `MINOR_HELD` ones) into one "digest".

        `build(messages)` makes the digest payload (None when no message could be read) and names
        the messages it cannot read, each with the reason: those are parked with it, not folded
        into nothing. The new message, the folded ones turning `digested`, the parked ones and the
        `meta` keys (the channel's last digest time) are one transaction; a fold that races another
        process's fold is rolled back. Returns the new message id, or None when there was nothing
        to fold.
        """

        class _Raced(Exception):
            pass

        try:
            with self._session() as s:
                kinds = ("changes", MINOR_HELD) if everything else (MINOR_HELD,)
                where = (OutboxRow.channel == channel, OutboxRow.kind.in_(kinds), OutboxRow.status == "pending")
                query = select(OutboxRow).where(*where).order_by(OutboxRow.id)
                rows = list(s.scalars(query))
                MetaIn(s).update(*meta)
                if not rows:
                    return None
                payload, unreadable = build([_message(r) for r in rows])
                ids = [r.id for r in rows if r.id not in unreadable]
                folded = s.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(ids), OutboxRow.status == "pending")
                    .values(status="digested", sent_at=at, next_attempt_at=None)
                )
                if getattr(folded, "rowcount", 0) != len(ids):
                    raise _Raced
                for message_id, reason in unreadable.items():  # a racing fold would park it alike
                    s.execute(
                        update(OutboxRow)
                        .where(OutboxRow.id == message_id, OutboxRow.status == "pending")
                        .values(status="parked", last_error=reason, next_attempt_at=None)
                    )
                if payload is None:
                    return None
                digest = OutboxRow(
                    channel=channel,
                    nct_id=None,
                    kind=payload.kind,
                    created_at=at,
                    payload=encode_payload(payload),
                    status="pending",
                    attempts=0,
                    next_attempt_at=at,
                )
                s.add(digest)
                s.flush()
                return digest.id
        except _Raced:
            return None

    def counts_by_channel(self) -> dict[str, dict[str, int]]:
        """channel → status → count: what `status` shows per channel (pending, sending, parked…)."""
        with self._session() as s:
            rows = s.execute(
                select(OutboxRow.channel, OutboxRow.status, func.count()).group_by(OutboxRow.channel, OutboxRow.status)
            ).all()
            result: dict[str, dict[str, int]] = {}
            for channel, status, count in rows:
                result.setdefault(channel, {})[status] = int(count)
            return result

    def queued(self, *, held_channels: Sequence[str] = ()) -> list[Queued]:
        """Every channel's undelivered messages: how many, and its head (why it has not gone yet)."""
        query = select(OutboxRow.channel, func.count()).where(OutboxRow.status.in_(UNDELIVERED))
        with self._session() as s:
            counts = s.execute(query.group_by(OutboxRow.channel).order_by(OutboxRow.channel)).all()
            heads = {c: s.get(OutboxRow, i) for c, _ in counts if (i := self._head_in(s, c, c in held_channels))}
            return [
                Queued(c, int(n), _message(h) if h else None, h.next_attempt_at if h else None)
                for c, n in counts
                for h in [heads.get(c)]
            ]

    def requeue_parked(self, at: datetime, *, channel: str | None = None) -> int:
        """Give parked messages a fresh set of attempts (after fixing a channel); returns how many."""
        with self._session() as s:
            query = update(OutboxRow).where(OutboxRow.status == "parked")
            if channel:
                query = query.where(OutboxRow.channel == channel)
            result = s.execute(query.values(status="pending", attempts=0, next_attempt_at=at))
            return int(getattr(result, "rowcount", 0) or 0)

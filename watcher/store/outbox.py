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

from watcher.models import Json
from watcher.store.schema import MetaRow, OutboxRow

UNDELIVERED = ("pending", "sending")


@dataclass(frozen=True, slots=True)
class OutboxMessage:
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
class NewMessage:
    channel: str
    nct_id: str | None
    kind: str
    payload: Mapping[str, Json]


def _message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(id=row.id, channel=row.channel, nct_id=row.nct_id, kind=row.kind,
                         created_at=row.created_at, payload=row.payload, attempts=row.attempts,
                         status=row.status, last_error=row.last_error)


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
        s.execute(insert(OutboxRow), [
            {"channel": msg.channel, "nct_id": msg.nct_id, "kind": msg.kind, "created_at": at,
             "payload": dict(msg.payload), "status": "pending", "attempts": 0, "next_attempt_at": at}
            for msg, at in messages])

    @staticmethod
    def held_versions_in(s: Session) -> set[tuple[str, int]]:
        """(nct_id, version) pairs an undelivered message names: retention must keep their records."""
        rows = s.execute(select(OutboxRow.nct_id, OutboxRow.payload)
                         .where(OutboxRow.status.in_(UNDELIVERED), OutboxRow.nct_id.is_not(None))).all()
        needed: set[tuple[str, int]] = set()
        for nct_id, payload in rows:
            version = payload.get("version") if isinstance(payload, dict) else None
            if isinstance(version, int):
                needed.add((nct_id, version))
        return needed

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

    def due_channels(self, now: datetime, *, held_channels: Sequence[str] = ()) -> list[str]:
        """Channels whose queue head is due now (what a notify tick has work for)."""
        with self._session() as s:
            heads = select(func.min(OutboxRow.id)).where(OutboxRow.status.in_(UNDELIVERED))
            if held_channels:
                heads = heads.where(~((OutboxRow.channel.in_(list(held_channels))) & (OutboxRow.kind == "changes")))
            query = select(OutboxRow.channel).where(OutboxRow.id.in_(heads.group_by(OutboxRow.channel)),
                                                    OutboxRow.next_attempt_at <= now).distinct()
            return sorted(s.scalars(query))

    def claim_next(self, now: datetime, *, lease_until: datetime, held_channels: Sequence[str] = (),
                   skip_channels: Sequence[str] = (), channel: str | None = None) -> tuple[OutboxMessage, bool] | None:
        """Claim the oldest message of one channel's queue, if it is due; None when none is.

        Only a queue's head is ever claimed, so a channel's messages go out in order and a
        failing head holds back its own channel only. The claim is a compare-and-set UPDATE
        (on PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), so two processes sharing the
        database never claim one message twice. A `sending` head whose lease ran out was
        claimed by a process that died: it is claimed again, and the second value is True.
        `held_channels` are digest channels: their "changes" messages wait to be folded.
        """
        with self._session() as s:
            heads = select(func.min(OutboxRow.id)).where(OutboxRow.status.in_(UNDELIVERED))
            if held_channels:
                heads = heads.where(~((OutboxRow.channel.in_(list(held_channels))) & (OutboxRow.kind == "changes")))
            if skip_channels:
                heads = heads.where(OutboxRow.channel.not_in(list(skip_channels)))
            if channel is not None:
                heads = heads.where(OutboxRow.channel == channel)
            heads = heads.group_by(OutboxRow.channel)
            query = (select(OutboxRow).where(OutboxRow.id.in_(heads), OutboxRow.next_attempt_at <= now,
                                             OutboxRow.status.in_(UNDELIVERED))
                     .order_by(OutboxRow.next_attempt_at, OutboxRow.id).limit(1))
            if self._dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = s.scalars(query).first()
            if row is None:
                return None
            recovered = row.status == "sending"
            message = OutboxMessage(id=row.id, channel=row.channel, nct_id=row.nct_id, kind=row.kind,
                                    created_at=row.created_at, payload=row.payload, attempts=row.attempts + 1,
                                    status="sending", last_error=row.last_error)
            claimed = s.execute(update(OutboxRow).where(
                OutboxRow.id == row.id, OutboxRow.status == row.status, OutboxRow.next_attempt_at <= now,
            ).values(status="sending", next_attempt_at=lease_until, attempts=OutboxRow.attempts + 1))
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            return message, recovered

    def finish_sent(self, message_id: int, at: datetime, *, clear_meta: str | None = None) -> None:
        """The channel accepted the message: mark it sent (and drop its part-progress key)."""
        with self._session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id)
                      .values(status="sent", sent_at=at, last_error=None, next_attempt_at=None))
            if clear_meta:
                s.execute(delete(MetaRow).where(MetaRow.key == clear_meta))

    def finish_failed(self, message_id: int, error: str, *, retry_at: datetime | None) -> None:
        """A claimed message was refused: back to pending until `retry_at`, or parked (None)."""
        with self._session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id).values(
                status="pending" if retry_at else "parked", last_error=error, next_attempt_at=retry_at))

    def fold_digest(self, channel: str, *, at: datetime, build: Any, meta: Mapping[str, Json]) -> int | None:
        """Fold a digest channel's pending "changes" messages into one "digest" message.

        `build(messages)` makes the digest payload. The new message, the folded ones turning
        `digested` and the `meta` keys (the channel's last digest time) are one transaction;
        a fold that races another process's fold is rolled back. Returns the new message id,
        or None when there was nothing to fold.
        """
        class _Raced(Exception):
            pass

        try:
            with self._session() as s:
                query = (select(OutboxRow).where(OutboxRow.channel == channel, OutboxRow.kind == "changes",
                                                 OutboxRow.status == "pending").order_by(OutboxRow.id))
                rows = list(s.scalars(query))
                for key, value in meta.items():
                    s.merge(MetaRow(key=key, value=value))
                if not rows:
                    return None
                ids = [r.id for r in rows]
                folded = s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.status == "pending")
                                   .values(status="digested", sent_at=at, next_attempt_at=None))
                if getattr(folded, "rowcount", 0) != len(ids):
                    raise _Raced
                digest = OutboxRow(channel=channel, nct_id=None, kind="digest", created_at=at,
                                   payload=dict(build([_message(r) for r in rows])), status="pending",
                                   attempts=0, next_attempt_at=at)
                s.add(digest)
                s.flush()
                return digest.id
        except _Raced:
            return None

    def enqueue_with_meta(self, messages: Sequence[NewMessage], at: datetime, meta: Mapping[str, Json]) -> None:
        """Enqueue messages and record why (e.g. the last heartbeat time) in one transaction."""
        with self._session() as s:
            self.enqueue_in(s, messages, at)
            for key, value in meta.items():
                s.merge(MetaRow(key=key, value=value))

    def counts_by_channel(self) -> dict[str, dict[str, int]]:
        """channel → status → count: what `status` shows per channel (pending, sending, parked…)."""
        with self._session() as s:
            rows = s.execute(select(OutboxRow.channel, OutboxRow.status, func.count())
                             .group_by(OutboxRow.channel, OutboxRow.status)).all()
            result: dict[str, dict[str, int]] = {}
            for channel, status, count in rows:
                result.setdefault(channel, {})[status] = int(count)
            return result

    def requeue_parked(self, at: datetime, *, channel: str | None = None) -> int:
        """Give parked messages a fresh set of attempts (after fixing a channel); returns how many."""
        with self._session() as s:
            query = update(OutboxRow).where(OutboxRow.status == "parked")
            if channel:
                query = query.where(OutboxRow.channel == channel)
            result = s.execute(query.values(status="pending", attempts=0, next_attempt_at=at))
            return int(getattr(result, "rowcount", 0) or 0)

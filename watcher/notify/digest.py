"""Digests and heartbeats: the notifier's scheduled messages.

A digest channel's change sets stay in the outbox as `pending` "changes" messages (and on every
other channel with a `minor` schedule, the change sets holding only minor changes, as `changes.minor`
messages: by default a daily digest on human channels); when
its cron expression fires (in the channel's timezone) they are folded into one "digest"
message, grouped by trial, in one transaction with the channel's last-digest time, so a
crash either folds them all or none. A service that was down over several fire times
sends one digest covering everything since the last one.

Each channel's last digest and heartbeat times are `meta` keys (`DIGEST_LAST`, `HEARTBEAT_LAST`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial

import msgspec
import structlog

from watcher.config import Config, Settings
from watcher.config.channels import minor_schedule, next_fire
from watcher.errors import PayloadError
from watcher.messages import (
    MINOR_HELD,
    ChangesPayload,
    CtgovVersions,
    DigestPayload,
    DigestTrial,
    HeartbeatPayload,
    NewMessage,
    decode_payload,
)
from watcher.models import Change, registry_changes_url, study_url
from watcher.store import Store
from watcher.store.discovery import watched_trials
from watcher.store.meta import DIGEST_LAST, HEARTBEAT_LAST, LAST_SUCCESS
from watcher.store.outbox import OutboxMessage
from watcher.times import minute

log = structlog.get_logger("watcher.notify.digest")


def digest_payload(change_sets: Sequence[ChangesPayload], *, since: str, until: str) -> DigestPayload:
    """Every folded change set, grouped by trial in order of first appearance: the first one's
    detection time, the last one's label, title and version, every change."""
    firsts: dict[str, ChangesPayload] = {}
    lasts: dict[str, ChangesPayload] = {}
    changes: dict[str, list[Change]] = {}
    for payload in change_sets:
        firsts.setdefault(payload.nct_id, payload)
        lasts[payload.nct_id] = payload
        changes.setdefault(payload.nct_id, []).extend(payload.changes)
    trials = tuple(
        DigestTrial(
            nct_id=nct_id,
            url=study_url(nct_id),
            history_url=_full_list(nct_id, first, lasts[nct_id]),
            detected_at=first.detected_at,
            changes=tuple(changes[nct_id]),
            label=lasts[nct_id].label,
            title=lasts[nct_id].title,
            version=lasts[nct_id].version,
            ctgov_versions=_span(first, lasts[nct_id]) or msgspec.UNSET,
        )
        for nct_id, first in firsts.items()
    )
    return DigestPayload(since=since, until=until, trials=trials)


def _span(first: ChangesPayload, last: ChangesPayload) -> CtgovVersions | None:
    """ClinicalTrials.gov's numbers of the oldest and the newest version a trial's folded change
    sets compare: its comparison of those two shows every change in between."""
    if first.compared is None or last.compared is None:
        return None
    return first.compared[0], last.compared[1]


def _full_list(nct_id: str, first: ChangesPayload, last: ChangesPayload) -> str:
    """The web view's trial page when the change sets link to it (`web.base_url`), else
    ClinicalTrials.gov's comparison of the span, else the trial's record history there."""
    own = last.history_url
    if own and not own.startswith(study_url(nct_id)):
        return own
    return registry_changes_url(nct_id, _span(first, last))


def _fold(
    messages: Sequence[OutboxMessage], *, since: str, until: str
) -> tuple[DigestPayload | None, Mapping[int, str]]:
    """The digest of the change sets that can be read; the others, each with why, to be parked."""
    readable: list[ChangesPayload] = []
    unreadable: dict[int, str] = {}
    for message in messages:
        try:
            payload = decode_payload(message.payload)
            if not isinstance(payload, ChangesPayload):
                raise PayloadError(f"a {payload.kind!r} message cannot be folded into a digest")
        except PayloadError as exc:
            unreadable[message.id] = f"cannot be folded into the digest: {exc}"
            log.error("digest.unreadable", channel=message.channel, message_id=message.id, error=str(exc))  # noqa: TRY400
            continue
        readable.append(payload)
    return (digest_payload(readable, since=since, until=until) if readable else None), unreadable


def fold_due_digests(store: Store, settings: Settings, *, now: datetime) -> list[int]:
    """Fold every digest channel whose cron time has come; returns the new digest message ids."""
    made: list[int] = []
    for name, channel in settings.channels.items():
        cron = channel.digest or minor_schedule(channel)
        if not cron or (not channel.digest and not store.outbox.is_waiting(name, MINOR_HELD)):
            continue  # a channel holding no minor-only change set has no digest to keep time for
        key = DIGEST_LAST.of(name)
        last = store.meta.get(key)
        if last is None:
            store.meta.set(key, now)  # the first digest covers what comes from now on
            continue
        if now < next_fire(cron, channel.timezone, last):
            continue
        since = last.isoformat()
        message_id = store.outbox.fold_digest(
            name,
            at=now,
            meta=[key.to(now)],
            build=partial(_fold, since=since, until=now.isoformat()),
            everything=bool(channel.digest),
        )
        log.info("digest.folded", channel=name, message_id=message_id, since=since)
        if message_id is not None:
            made.append(message_id)
    return made


def _stamp(value: datetime | None) -> str:
    return minute(value) if value else "never"


def heartbeat_payload(config: Config, store: Store, *, now: datetime, next_poll: datetime | None) -> HeartbeatPayload:
    last_poll = store.meta.get(LAST_SUCCESS)
    if next_poll is None:
        cycle = store.cycles.last()
        next_poll = cycle.started_at + config.settings.interval if cycle else None
    polled = watched_trials(config, store.discovery)  # the watchlist's and those its searches added
    trials = len(polled)
    watched = {t.nct_id for t in polled}  # trials removed from the watchlist keep their state
    failing = sum(1 for nct_id, s in store.trials.states().items() if s.consecutive_failures and nct_id in watched)
    text = (
        f"Watching {trials} trial{'s' if trials != 1 else ''}; last successful poll at {_stamp(last_poll)}; "
        f"next at {_stamp(next_poll)}."
    )
    if failing:
        text += f" {failing} trial{'s are' if failing != 1 else ' is'} failing to update."
    return HeartbeatPayload(
        subject=f"TrialWatch heartbeat: watching {trials} trials",
        text=text,
        trials_watched=trials,
        last_poll=last_poll.isoformat() if last_poll else None,
        next_poll=next_poll.isoformat() if next_poll else None,
        at=now.isoformat(),
    )


def enqueue_heartbeats(config: Config, store: Store, *, now: datetime, next_poll: datetime | None = None) -> int:
    """Queue a heartbeat for every channel whose heartbeat interval has passed."""
    queued = 0
    for name, channel in config.settings.channels.items():
        if channel.heartbeat is None:
            continue
        key = HEARTBEAT_LAST.of(name)
        last = store.meta.get(key)
        if last is not None and now - last < channel.heartbeat:
            continue
        if store.outbox.is_waiting(name, "heartbeat"):  # the channel is down: one heartbeat waiting is enough
            store.meta.set(key, now)
            continue
        payload = heartbeat_payload(config, store, now=now, next_poll=next_poll)
        with store.transaction() as tx:  # the heartbeat and the time it was queued: both or neither
            tx.enqueue([NewMessage(name, payload)], now)
            tx.meta.set(key, now)
        queued += 1
    return queued

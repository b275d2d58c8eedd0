"""Notifications: the change sets the cycle stores in the outbox, `notify_tick` and `drain`.

The payloads themselves are defined once, typed, in `watcher.messages`; the stages live in their
own modules: `routing` (who hears of what), `formats` (what a message looks like per channel),
`delivery` (claim, send, mark; retries; parking), `digest` (digests and heartbeats). This module
is the seam the rest of TrialWatch uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog

from watcher.config import Config, Settings
from watcher.config.channels import minor_schedule, next_fire
from watcher.errors import TrialWatchError
from watcher.messages import MINOR_HELD, ChangesPayload, CtgovVersions, NewMessage, Payload
from watcher.models import Change, Event, Trial, history_url, registry_changes_url, study_url
from watcher.notify.delivery import TICK_WAIT, Outcome, deliver_due, render
from watcher.notify.formats import Delivery, context
from watcher.notify.send import Sender
from watcher.store import Store
from watcher.store.meta import DIGEST_LAST, installation_id
from watcher.store.outbox import Queued
from watcher.times import minute, utc

log = structlog.get_logger("watcher.notify.payloads")

__all__ = [
    "Outcome",
    "Sender",
    "change_messages",
    "changes_payload",
    "notify_tick",
    "print_changes",
    "render_text",
    "sample_payload",
    "send_test",
]


def trial_page_url(web_base_url: str | None, nct_id: str) -> str | None:
    """The web view's page of a trial (every version, every change), when `web.base_url` is set."""
    return f"{web_base_url.rstrip('/')}/trials/{nct_id}" if web_base_url else None


def full_list_url(nct_id: str, *, web_base_url: str | None = None, ctgov_versions: CtgovVersions | None = None) -> str:
    """The link every message that summarises ends with: the web view's trial page when
    `web.base_url` is set, else ClinicalTrials.gov's comparison of the two versions when their
    numbers are known, else the trial's record history there."""
    return trial_page_url(web_base_url, nct_id) or registry_changes_url(nct_id, ctgov_versions)


def changes_payload(
    trial: Trial,
    title: str | None,
    changes: Sequence[Change],
    *,
    version: int,
    detected_at: datetime,
    web_base_url: str | None = None,
    ctgov_versions: CtgovVersions | None = None,
) -> ChangesPayload:
    """One trial's changes as the outbox stores them (no URLs of channels), with the link to the
    full list (`full_list_url`) and ClinicalTrials.gov's numbers of the two versions when known."""
    return ChangesPayload(
        nct_id=trial.nct_id,
        label=trial.label,
        title=title,
        url=study_url(trial.nct_id),
        history_url=full_list_url(trial.nct_id, web_base_url=web_base_url, ctgov_versions=ctgov_versions),
        version=version,
        detected_at=detected_at.isoformat(),
        changes=tuple(changes),
        ctgov_versions=ctgov_versions if ctgov_versions is not None else msgspec.UNSET,
    )


def change_messages(
    trial: Trial,
    title: str | None,
    routed: Mapping[str, Sequence[Change]],
    *,
    version: int,
    detected_at: datetime,
    web_base_url: str | None = None,
    held: Collection[str] = (),
    ctgov_versions: CtgovVersions | None = None,
) -> list[NewMessage]:
    """One message per routed channel; those named in `held` wait for the channel's digest of minor
    changes (`routing.held_for_digest`)."""
    return [
        NewMessage(
            name,
            changes_payload(
                trial,
                title,
                changes,
                version=version,
                detected_at=detected_at,
                web_base_url=web_base_url,
                ctgov_versions=ctgov_versions,
            ),
            held=name in held,
        )
        for name, changes in routed.items()
    ]


def render_text(payload: Payload, *, now: datetime | None = None) -> tuple[str, str]:
    """Title and plain-text body of a payload, as a text-only channel gets them."""
    at = now or datetime.now(UTC)
    ctx = context(payload, Delivery(channel="stdout", message_id=None, created_at=at, now=at))
    return ctx.title, ctx.body_text


def print_changes(trial: Trial, title: str | None, changes: Sequence[Change], write: Callable[[str], Any]) -> None:
    """The no-channel default: the same text a channel would get, on stdout."""
    payload = changes_payload(trial, title, changes, version=0, detected_at=datetime.now(UTC))
    subject, body = render_text(payload)
    write(f"== {subject}\n{body}\n")


def notify_tick(
    config: Config,
    store: Store,
    *,
    now: Callable[[], datetime],
    next_poll: datetime | None = None,
    sender: Sender | None = None,
    wait: float | None = TICK_WAIT,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Everything the notifier owes right now: digests whose time has come, heartbeats, and
    every due delivery (new messages, retries, messages a crashed process had claimed).

    The service calls this on a short timer and after each cycle. `next_poll`, when the
    scheduler knows it, goes into heartbeats. `wait`: see `deliver_due` (`watcher.notify.drain`
    passes None to send everything before `check` exits); `stop`: the service's, see `deliver_due`.
    """
    from watcher.notify.digest import enqueue_heartbeats, fold_due_digests

    settings = config.settings
    if not settings.channels:
        return []
    at = now()
    for step, run in (
        ("digest", lambda: fold_due_digests(store, settings, now=at)),
        ("heartbeat", lambda: enqueue_heartbeats(config, store, now=at, next_poll=next_poll)),
    ):
        try:
            run()
        except TrialWatchError as exc:
            log.error("notify.tick_failed", step=step, error=str(exc))  # noqa: TRY400 - a known error, no trace
    return deliver_due(store, settings, now=now, sender=sender, wait=wait, stop=stop)


MAX_DRAIN_ROUNDS = 100
"""Rounds of `deliver_due` a drain makes at most (each sends up to `MAX_ROUNDS` per channel): a backstop."""


@dataclass(frozen=True, slots=True)
class Drained:
    """What a drain sent, and one line per channel it leaves messages for, saying why (for stderr)."""

    outcomes: list[Outcome] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def drain(config: Config, store: Store, *, now: Callable[[], datetime], sender: Sender | None = None) -> Drained:
    """`notify_tick` for a one-shot `check`, which has no next tick (under cron the next run may be hours
    away): every channel's worker is joined, round after round, until no channel has a message due. It
    ends: a send is bounded by its channel's `timeout`, and a channel that refuses or times out has its
    head rescheduled (backoff), which holds back that channel alone. No worker is cut off at exit
    mid-send (it could send its message twice)."""
    settings = config.settings
    if not settings.channels:
        return Drained()
    sender = sender or Sender(settings.channels, installation=installation_id(store.meta))
    outcomes = notify_tick(config, store, now=now, sender=sender, wait=None)
    for _ in range(MAX_DRAIN_ROUNDS):
        sent = deliver_due(store, settings, now=now, sender=sender, wait=None)
        if not sent:
            break
        outcomes.extend(sent)
    held = [name for name, c in settings.channels.items() if c.digest]
    return Drained(outcomes, [queued_note(q, settings, store) for q in store.outbox.queued(held_channels=held)])


def _count(count: int, noun: str = "message") -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def queued_note(queued: Queued, settings: Settings, store: Store) -> str:
    """`3 messages to 'ops-hook' left queued: next attempt at …; last error: …`. The error is the one
    recorded with the message, redacted when it was: it names the channel, never its URL."""
    channel = settings.channels.get(queued.channel)
    reasons: list[str] = []
    if channel is None:
        reasons.append("the channel is no longer configured")
    elif channel.digest and (last := store.meta.get(DIGEST_LAST.of(queued.channel))) is not None:
        reasons.append(
            f"changes wait for the channel's digest at {minute(next_fire(channel.digest, channel.timezone, last))}"
        )
    elif (cron := minor_schedule(channel)) is not None and store.outbox.is_waiting(queued.channel, MINOR_HELD):
        last = store.meta.get(DIGEST_LAST.of(queued.channel))
        when = minute(next_fire(cron, channel.timezone, last)) if last is not None else f"{cron!r} ({channel.timezone})"
        reasons.append(f"minor-only change sets wait for the channel's digest at {when}")
    head = queued.head
    if head is not None and channel is not None:
        at = f"next attempt at {minute(utc(queued.next_attempt_at))}" if queued.next_attempt_at else "due"
        reasons.append(at + (f" ({_count(head.attempts, 'attempt')} so far)" if head.attempts else ""))
    if head is not None and head.last_error:
        reasons.append(f"last error: {head.last_error}")
    return f"{_count(queued.count)} to {queued.channel!r} left queued: {'; '.join(reasons) or 'not due yet'}"


# -- notify-test ---------------------------------------------------------------------------------


def sample_payload(now: datetime) -> ChangesPayload:
    """A realistic change set for `notify-test`: a suspension, an enrollment change, a new site."""
    changes = (
        Change(
            field="status.overallStatus",
            change="changed",
            old="RECRUITING",
            new="SUSPENDED",
            severity="critical",
            event=Event(
                kind="status_transition",
                summary="Status changed from RECRUITING to SUSPENDED: Sponsor decision",
                data={"from": "RECRUITING", "to": "SUSPENDED", "whyStopped": "Sponsor decision"},
            ),
        ),
        Change(
            field="design.enrollmentCount",
            change="changed",
            old=450,
            new=560,
            severity="major",
            event=Event(
                kind="enrollment_change",
                summary="Enrollment changed from 450 to 560 (+24.4%), ESTIMATED",
                data={"from": 450, "to": 560},
            ),
        ),
        Change(
            field="locations.ruijin hospital|shanghai||china",
            change="added",
            old=None,
            new={"facility": "Ruijin Hospital", "city": "Shanghai", "country": "China", "status": "RECRUITING"},
            severity="major",
            event=Event(kind="site_added", summary="New site: Ruijin Hospital, Shanghai, China (RECRUITING)"),
        ),
    )
    nct_id = "NCT04728893"
    return ChangesPayload(
        test=True,
        nct_id=nct_id,
        label="notify-test sample",
        title="A sample trial title (this is a test message)",
        url=study_url(nct_id),
        history_url=history_url(nct_id),
        version=2,
        detected_at=now.isoformat(),
        changes=changes,
    )


def send_test(config: Config, names: Sequence[str], *, now: datetime, sender: Sender | None = None) -> list[Outcome]:
    """Send the sample change set straight to each named channel (not through the outbox)."""
    from watcher.errors import NotifyError

    settings = config.settings
    sender = sender or Sender(settings.channels)
    outcomes = []
    for name in names:
        channel = settings.channels[name]
        try:
            try:
                rendered = render(
                    sample_payload(now), channel, Delivery(channel=name, message_id=None, created_at=now, now=now)
                )
            except Exception as exc:  # a bug in a format: the traceback says where, the channel is not to blame
                log.exception("notify.test_unrenderable", channel=name)
                raise NotifyError(f"cannot be rendered: {type(exc).__name__}: {exc}") from exc
            sender.send(name, rendered)
        except NotifyError as exc:
            log.warning("notify.test_failed", channel=name, error=str(exc))
            outcomes.append(Outcome(name, False, str(exc)))
        else:
            log.info("notify.test_sent", channel=name)
            outcomes.append(Outcome(name, True))
    return outcomes

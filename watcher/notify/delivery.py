"""Deliver the durable outbox: claim, send (`watcher.notify.send`), mark — in that order.

Delivery guarantee (docs/explanation/delivery-guarantees.md): a message is claimed (`sending`, with
a lease) in one transaction, sent, and marked `sent` in another only after the channel
accepted it. A crash before the channel accepted leaves a claim whose lease runs out, and
the message is sent again: nothing is lost. A crash after the channel accepted but before
the mark is the one window in which a message can arrive twice, and then only once more;
apprise cannot ask Slack or an SMTP server whether a message arrived. Webhook receivers
can close even that window: every JSON document carries its `message_id`.

A channel's messages go out in order, each channel in its own worker thread: a failing or hanging
channel holds back its own messages only (a failing one with backoff, until it is accepted or
parked after `notify.max_attempts` tries). A refusal that retrying cannot cure — HTTP 401, 403,
404, 410, 413 and the like: a revoked token, a deleted hook, a message too large — parks the message
at once (`notify-retry` queues parked messages again once the channel is fixed). A channel that has
refused everything for `notify.channel_failing_after` is said once on the other channels, and its
recovery once more. Every other channel is told, one that is refusing too included: the alert waits in
its queue like any message. Told only the channels healthy at that very tick, a failure met while the
others had one refusal of their own (a flaky SMTP server, a restart) was never said at all, nor its
recovery.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from watcher.config import ChannelSettings, Settings
from watcher.config.channels import channel_kind
from watcher.errors import NotifyError, StorageError
from watcher.messages import AlertPayload, NewMessage, Payload, decode_payload
from watcher.notify import claims
from watcher.notify.formats import FORMATS, Delivery, Rendered, context, template_variables
from watcher.notify.send import Sender
from watcher.store import Store
from watcher.store.failures import alert_reason
from watcher.store.meta import CHANNEL_FAILING, PARTS_SENT, ChannelDown, PartsSent, installation_id
from watcher.store.outbox import OutboxMessage

log = structlog.get_logger("watcher.notify.delivery")

MAX_ROUNDS = 1000
"""Messages one tick sends at most, so a huge backlog cannot starve the poll."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery attempt (returned by `notify_tick` and `notify-test`)."""

    channel: str
    accepted: bool
    error: str | None = None
    message_id: int | None = None
    parked: bool = False


_PERMANENT = re.compile(r"(?:error=|HTTP )(400|401|403|404|405|410|413|414|415|422)\b")
"""HTTP statuses a retry cannot change (unlike 408, 425, 429 and every 5xx): the request itself, or
the credentials in the channel's URL, must change first."""


def permanent(error: str) -> bool:
    """Whether a channel's refusal is one that retrying cannot cure (`_PERMANENT`)."""
    return _PERMANENT.search(error) is not None


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … doubling, capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


# -- rendering with templates --------------------------------------------------------------------


def render(payload: Payload, channel: ChannelSettings, delivery: Delivery) -> Rendered:
    """The channel's built-in format, with its title/body templates applied when it has them."""
    from watcher.config.templates import TemplateError, render_template

    kind = channel_kind(channel.url)
    ctx = context(payload, delivery)
    rendered = FORMATS[kind](ctx)
    if not (channel.title_template or channel.body_template):
        return rendered
    html = rendered.body_format == "html"
    variables = template_variables(ctx)
    try:
        title = render_template(channel.title_template, variables, html=False) if channel.title_template else None
        body = render_template(channel.body_template, variables, html=html) if channel.body_template else None
    except TemplateError as exc:
        log.warning("notify.template_failed", channel=channel.name, error=str(exc))
        return rendered
    if kind == "telegram" and body is not None:
        from watcher.notify.formats import TELEGRAM_LIMIT, split_lines

        parts = tuple(split_lines(body.splitlines(), TELEGRAM_LIMIT))
        if title:
            parts = (f"<b>{title}</b>\n{parts[0] if parts else ''}", *parts[1:])
        return Rendered(title="", parts=parts, body_format="html")
    return Rendered(
        title=title if title is not None else rendered.title,
        parts=(body,) if body is not None else rendered.parts,
        body_format=rendered.body_format,
        plain=None if body is not None else rendered.plain,
        document=rendered.document,
    )


# -- walking the outbox --------------------------------------------------------------------------


TICK_WAIT = 5.0
"""Seconds a notify tick waits for its channels' workers; a channel still sending after that (a hung
SMTP server, say) goes on in its own thread and is left alone by later ticks until it returns."""

_busy: set[str] = set()  # channels whose worker (in this process) is still sending
_senders: dict[str, threading.Thread] = {}  # those workers, for a stopping service to wait for
_busy_lock = threading.Lock()


def _gone_or_mine(claimer: str) -> bool:
    """Whether a `sending` claim may be taken over now: its process is dead, or it is this process.

    A channel has at most one worker in a process (`_busy`), and a new one starts only after the last
    returned; so a claim of this process on a channel about to be drained was left by a worker that
    could not mark its message (the database went away between the send and the mark). It is taken
    back at once instead of holding the channel for the whole lease (`notify.claim_timeout`).
    """
    return claimer == claims.me() or claims.is_dead(claimer)


def deliver_due(
    store: Store,
    settings: Settings,
    *,
    now: Callable[[], datetime],
    sender: Sender | None = None,
    wait: float | None = TICK_WAIT,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Send every message that is due: one worker thread per channel, each channel's queue in order.

    Channels never wait for each other: a channel that hangs holds back only its own messages.
    Each message is claimed before it is sent and marked after, so a process killed at any point
    leaves nothing lost and at most this one message possibly sent twice. Returns the outcomes of
    the workers that finished within `wait` seconds; `wait=None` joins every worker (`check`, which
    exits next: a send is bounded by its channel's `timeout`, and a thread cut off at exit mid-send
    could send its message twice). Once `stop` is set a worker finishes the message it is sending and
    claims no other (`finish_sends` waits for it).
    """
    sender = sender or Sender(settings.channels, installation=installation_id(store.meta))
    held = [name for name, c in settings.channels.items() if c.digest]
    try:
        alert_failing_channels(store, settings, now())
        due = store.outbox.due_channels(now(), held_channels=held, is_dead=_gone_or_mine)
    except StorageError as exc:
        log.error("notify.storage_failed", error=str(exc))  # noqa: TRY400 - known error, no trace
        return []
    outcomes: list[Outcome] = []
    workers: list[threading.Thread] = []
    for channel in due:
        with _busy_lock:
            if channel in _busy:
                log.info("notify.channel_busy", channel=channel, note="its previous send has not returned yet")
                continue
            _busy.add(channel)
        worker = threading.Thread(
            target=_drain,
            name=f"notify-{channel}",
            daemon=True,
            args=(store, settings, sender, channel),
            kwargs={"held": held, "now": now, "outcomes": outcomes, "stop": stop},
        )
        with _busy_lock:
            _senders[channel] = worker
        worker.start()
        workers.append(worker)
    deadline = None if wait is None else time.monotonic() + wait
    for worker in workers:
        worker.join(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    return list(outcomes)


def _drain(
    store: Store,
    settings: Settings,
    sender: Sender,
    channel: str,
    *,
    held: list[str],
    now: Callable[[], datetime],
    outcomes: list[Outcome],
    stop: threading.Event | None = None,
) -> None:
    """One channel's worker: its due messages in order, until none is left (or MAX_ROUNDS, or `stop`)."""
    try:
        for _ in range(MAX_ROUNDS):
            if stop is not None and stop.is_set():
                break  # the service stops: the next message waits for the next process
            at = now()
            claim = store.outbox.claim_next(
                at,
                lease_until=at + settings.claim_timeout,
                held_channels=held,
                channel=channel,
                claimer=claims.me(),
                is_dead=_gone_or_mine,
            )
            if claim is None:
                break
            message, recovered = claim
            outcomes.append(_deliver_one(store, settings, sender, message, recovered=recovered, now=now))
    except StorageError as exc:
        # e.g. SQLite busy under another writer: whatever was claimed stays claimed and its
        # lease brings it back; the next tick goes on.
        log.error("notify.storage_failed", channel=channel, error=str(exc))  # noqa: TRY400 - no trace
    except Exception:  # a bug: the claimed message's lease brings it back; the traceback says where
        log.exception("notify.worker_failed", channel=channel)
    finally:
        with _busy_lock:
            _busy.discard(channel)
            if _senders.get(channel) is threading.current_thread():
                del _senders[channel]


def finish_sends(timeout: float) -> list[str]:
    """Wait up to `timeout` seconds for the channel workers still sending; returns the channels still
    sending then. A stopping service calls this after setting the `stop` its ticks were given: a worker
    cut off at exit mid-send leaves its message claimed but unmarked, and the next process sends it again
    (a duplicate); one that finishes marks it. A send is bounded by its channel's `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with _busy_lock:
            alive = [t for t in _senders.values() if t.is_alive()]
        left = deadline - time.monotonic()
        if not alive or left <= 0:
            return sorted(t.name for t in alive)
        alive[0].join(timeout=min(left, 0.2))


def _deliver_one(
    store: Store,
    settings: Settings,
    sender: Sender,
    message: OutboxMessage,
    *,
    recovered: bool,
    now: Callable[[], datetime],
) -> Outcome:
    bound = log.bind(
        channel=message.channel,
        message_id=message.id,
        nct_id=message.nct_id,
        kind=message.kind,
        attempt=message.attempts,
    )
    if recovered:
        bound.warning("notify.recovered", note="claimed before a crash; it may reach the channel twice")
    channel = settings.channels.get(message.channel)
    # A split message some of whose parts were accepted resumes after them, rendered as at its
    # first attempt (rendering is pure), so the remaining parts are exactly the ones still owed.
    parts_key = PARTS_SENT.of(message.id)
    progress = store.meta.get(parts_key)
    first_part, rendered_at = (progress.sent, progress.rendered_at) if progress else (0, now())
    try:
        if channel is None:
            raise NotifyError(f"channel {message.channel!r} is no longer configured")
        try:
            rendered = render(
                decode_payload(message.payload),
                channel,
                Delivery(
                    channel=message.channel,
                    message_id=message.id,
                    created_at=message.created_at,
                    now=rendered_at,
                    delay_note_after=settings.delay_note_after,
                ),
            )
        except Exception as exc:  # a payload no format can render would block its channel forever
            # A payload this version cannot read (PayloadError names the field), or a bug in a format:
            # either way retrying cannot help. The row records why; the log has the traceback.
            error = f"cannot be rendered: {type(exc).__name__}: {exc}"
            store.outbox.finish_failed(message.id, error, retry_at=None)
            bound.exception("notify.parked", error=error, attempts=message.attempts, reason="unrenderable")
            return Outcome(message.channel, False, error, message.id, parked=True)
        multi = len(rendered.parts) > 1

        def part_done(count: int) -> None:
            if multi and count < len(rendered.parts):
                store.meta.set(parts_key, PartsSent(count, rendered_at))

        sender.send(message.channel, rendered, first_part=first_part, on_part=part_done, message_id=message.id)
    except NotifyError as exc:
        error = str(exc)
        refused_for_good = permanent(error)
        park = channel is None or message.attempts >= settings.max_attempts or refused_for_good
        retry_at = None if park else now() + retry_delay(message.attempts)
        store.outbox.finish_failed(message.id, error, retry_at=retry_at)
        refused(store, message.channel, error, now())
        if park:
            why = "permanent" if refused_for_good else "attempts"
            bound.error("notify.parked", error=error, attempts=message.attempts, reason=why)
        else:
            bound.warning("notify.failed", error=error, retry_at=retry_at.isoformat() if retry_at else None)
        return Outcome(message.channel, False, error, message.id, parked=park)
    sent_at = now()
    store.outbox.finish_sent(message.id, sent_at, clear_meta=parts_key if first_part or multi else None)
    accepted(store, settings, message.channel, sent_at)
    delay = (sent_at - message.created_at).total_seconds()
    bound.info("notify.sent", parts=len(rendered.parts), delay_s=round(delay, 1))
    return Outcome(message.channel, True, None, message.id)


# -- a channel failing for a long time -----------------------------------------------------------


def refused(store: Store, channel: str, error: str, at: datetime) -> None:
    """Note when a channel began refusing (its first refusal since it last accepted a message)."""
    key = CHANNEL_FAILING.of(channel)
    down = store.meta.get(key)
    store.meta.set(key, ChannelDown(down.since if down else at, alert_reason(error), down.alerted if down else False))


def accepted(store: Store, settings: Settings, channel: str, at: datetime) -> None:
    """The channel accepted a message: it is no longer failing; tell the others if they were told."""
    key = CHANNEL_FAILING.of(channel)
    down = store.meta.get(key)
    if down is None:
        return
    others = _others(settings, but=channel)
    with store.transaction() as tx:
        tx.meta.set(key, None)
        if down.alerted and others:
            text = (
                f"Channel {channel!r} accepts messages again (it refused them from {down.since:%Y-%m-%d %H:%M} UTC). "
                "Messages it refused for good are parked: `trialwatch notify-retry` sends them again."
            )
            tx.enqueue(_alert(others, f"TrialWatch: channel {channel!r} recovered", text), at)
    log.info("notify.channel_recovered", channel=channel, failing_since=down.since.isoformat(), alerted=down.alerted)


def alert_failing_channels(store: Store, settings: Settings, at: datetime) -> None:
    """Once per failure, tell the other channels about a channel refusing for `channel_failing_after`."""
    for name in settings.channels:
        key = CHANNEL_FAILING.of(name)
        down = store.meta.get(key)
        if down is None or down.alerted or at - down.since < settings.channel_failing_after:
            continue
        others = _others(settings, but=name)
        if not others:
            continue  # the only channel: nobody to tell
        minutes = int((at - down.since).total_seconds() // 60)
        text = (
            f"Channel {name!r} has refused every message for {minutes} minutes "
            f"(since {down.since:%Y-%m-%d %H:%M} UTC). Last refusal: {down.error}\n\n"
            "Its messages wait in the outbox and are retried; once it is fixed, "
            "`trialwatch notify-retry` also sends those it refused for good."
        )
        with store.transaction() as tx:
            tx.meta.set(key, ChannelDown(down.since, down.error, alerted=True))
            tx.enqueue(_alert(others, f"TrialWatch: channel {name!r} failing for {minutes} min", text), at)
        log.error("notify.channel_failing", channel=name, since=down.since.isoformat(), told=others)


def _others(settings: Settings, *, but: str) -> list[str]:
    """Every channel but `but`, failing ones too: their queue keeps the alert until they accept again."""
    return [n for n in settings.channels if n != but]


def _alert(channels: list[str], subject: str, text: str) -> list[NewMessage]:
    return [NewMessage(name, AlertPayload(subject=subject, text=text, nct_id=None)) for name in channels]

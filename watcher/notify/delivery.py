"""Deliver the durable outbox through apprise: claim, send, mark — in that order.

Delivery guarantee (README, "Delivery guarantees"): a message is claimed (`sending`, with
a lease) in one transaction, sent, and marked `sent` in another only after the channel
accepted it. A crash before the channel accepted leaves a claim whose lease runs out, and
the message is sent again: nothing is lost. A crash after the channel accepted but before
the mark is the one window in which a message can arrive twice, and then only once more;
apprise cannot ask Slack or an SMTP server whether a message arrived. Webhook receivers
can close even that window: every JSON document carries its `message_id`.

A channel's messages go out in order, each channel in its own worker thread: a failing or hanging
channel holds back its own messages only (a failing one with backoff, until it is accepted or
parked after `notify.max_attempts` tries).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from watcher.config import ChannelSettings, Settings
from watcher.config.channels import channel_kind
from watcher.config.secrets import redact, secret_parts
from watcher.errors import NotifyError, StorageError, TrialWatchError
from watcher.notify.formats import FORMATS, Delivery, Rendered, context
from watcher.store import Store
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


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … doubling, capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


# -- rendering with templates --------------------------------------------------------------------


def render(payload: Mapping[str, Any], channel: ChannelSettings, delivery: Delivery) -> Rendered:
    """The channel's built-in format, with its title/body templates applied when it has them."""
    from watcher.config.templates import TemplateError, render_template

    kind = channel_kind(channel.url)
    ctx = context(payload, delivery)
    rendered = FORMATS[kind](ctx)
    if not (channel.title_template or channel.body_template):
        return rendered
    html = rendered.body_format == "html"
    try:
        title = render_template(channel.title_template, ctx, html=False) if channel.title_template else None
        body = render_template(channel.body_template, ctx, html=html) if channel.body_template else None
    except TemplateError as exc:
        log.warning("notify.template_failed", channel=channel.name, error=str(exc))
        return rendered
    if kind == "telegram" and body is not None:
        from watcher.notify.formats import TELEGRAM_LIMIT, split_lines

        parts = tuple(split_lines(body.splitlines(), TELEGRAM_LIMIT))
        if title:
            parts = (f"<b>{title}</b>\n{parts[0] if parts else ''}", *parts[1:])
        return Rendered(title="", parts=parts, body_format="html")
    return Rendered(title=title if title is not None else rendered.title,
                    parts=(body,) if body is not None else rendered.parts,
                    body_format=rendered.body_format,
                    plain=None if body is not None else rendered.plain,
                    document=rendered.document)


# -- the apprise edge ----------------------------------------------------------------------------

_plain_lock = threading.Lock()
_plain_parts: dict[str, str] = {}
_plain_installed = False


def _install_plain_part_hook() -> None:
    """Let an email carry our own text/plain part instead of apprise's HTML-to-text guess.

    apprise builds an HTML email's plain alternative by converting the HTML; a table turns
    into one cell per line. The hook answers that one conversion with the text we wrote
    for exactly that HTML body, and leaves every other conversion to apprise.
    """
    global _plain_installed  # noqa: PLW0603 - installed once per process
    if _plain_installed:
        return
    from apprise.common import NotifyFormat
    from apprise.plugins.email import base

    original: Callable[[Any, Any, Any], Any] = getattr(base, "convert_between")  # noqa: B009 - not exported

    def convert_between(from_format: Any, to_format: Any, content: Any) -> Any:
        if from_format == NotifyFormat.HTML and to_format == NotifyFormat.TEXT:
            with _plain_lock:
                plain = _plain_parts.get(content)
            if plain is not None:
                return plain
        return original(from_format, to_format, content)

    setattr(base, "convert_between", convert_between)  # noqa: B010 - not exported
    _plain_installed = True


@contextmanager
def _plain_part(html: str, plain: str | None) -> Iterator[None]:
    if plain is None:
        yield
        return
    _install_plain_part_hook()
    with _plain_lock:
        _plain_parts[html] = plain
    try:
        yield
    finally:
        with _plain_lock:
            _plain_parts.pop(html, None)


def _with_idempotency_key(url: str, rendered: Rendered) -> str:
    """A JSON webhook's URL with an `Idempotency-Key: trialwatch-<message id>` header (apprise's
    documented `+Header=value` URL syntax): the same message retried after a crash carries the same
    key, so a receiver can drop the duplicate of the crash window."""
    message_id = (rendered.document or {}).get("message_id")
    if message_id is None or channel_kind(url) != "json":
        return url
    return f"{url}{'&' if '?' in url else '?'}+Idempotency-Key=trialwatch-{message_id}"


class Sender:
    """Sends rendered messages to channels through apprise; every error comes back redacted."""

    def __init__(self, channels: Mapping[str, ChannelSettings]) -> None:
        self.channels = channels

    def send(self, channel_name: str, rendered: Rendered, *, first_part: int = 0,
             on_part: Callable[[int], None] | None = None) -> None:
        """Send each part from `first_part` on; `on_part(n)` runs after part n was accepted."""
        channel = self.channels.get(channel_name)
        if channel is None:
            raise NotifyError(f"channel {channel_name!r} is not configured")
        secrets = secret_parts(channel.url)
        try:
            for index in range(first_part, len(rendered.parts)):
                self._send_one(channel, rendered, rendered.parts[index])
                if on_part is not None:
                    on_part(index + 1)
        except NotifyError as exc:  # only the detail is redacted: a channel's name is never a secret
            raise NotifyError(f"channel {channel_name!r}: {redact(str(exc), secrets)}") from None
        except TrialWatchError:
            raise  # our own storage failing while recording a part is not the channel's refusal
        except Exception as exc:  # apprise or a plugin crashed: report it, redacted, as a refusal
            detail = redact(f"{type(exc).__name__}: {exc}", secrets)
            raise NotifyError(f"channel {channel_name!r}: {detail}") from None

    @staticmethod
    def _send_one(channel: ChannelSettings, rendered: Rendered, body: str) -> None:
        import apprise

        notifier = apprise.Apprise()
        if not notifier.add(_with_idempotency_key(channel.url, rendered)):
            raise NotifyError("apprise does not understand its URL")
        if rendered.document is not None:
            for service in notifier:
                extras = getattr(service, "payload_extras", None)
                if isinstance(extras, dict):
                    # json:// posts {version,title,message,attachments,type}; our fields join them.
                    extras.update({k: v for k, v in rendered.document.items() if k not in extras})
        with _plain_part(body, rendered.plain):
            result = notifier.notify(body=body, title=rendered.title, body_format=rendered.body_format)
        if not result:
            messages = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
            detail = "; ".join(dict.fromkeys(messages)) or "the channel did not accept the message"
            raise NotifyError(detail)


# -- walking the outbox --------------------------------------------------------------------------


def parts_key(message_id: int) -> str:
    return f"outbox.parts.{message_id}"


TICK_WAIT = 5.0
"""Seconds a notify tick waits for its channels' workers; a channel still sending after that (a hung
SMTP server, say) goes on in its own thread and is left alone by later ticks until it returns."""

_busy: set[str] = set()  # channels whose worker (in this process) is still sending
_busy_lock = threading.Lock()


def deliver_due(store: Store, settings: Settings, *, now: Callable[[], datetime],
                sender: Sender | None = None) -> list[Outcome]:
    """Send every message that is due: one worker thread per channel, each channel's queue in order.

    Channels never wait for each other: a channel that hangs holds back only its own messages.
    Each message is claimed before it is sent and marked after, so a process killed at any point
    leaves nothing lost and at most this one message possibly sent twice. Returns the outcomes of
    the workers that finished within `TICK_WAIT`.
    """
    sender = sender or Sender(settings.channels)
    held = [name for name, c in settings.channels.items() if c.digest]
    try:
        due = store.outbox.due_channels(now(), held_channels=held)
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
        worker = threading.Thread(target=_drain, name=f"notify-{channel}", daemon=True,
                                  args=(store, settings, sender, channel),
                                  kwargs={"held": held, "now": now, "outcomes": outcomes})
        worker.start()
        workers.append(worker)
    deadline = time.monotonic() + TICK_WAIT
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    return list(outcomes)


def _drain(store: Store, settings: Settings, sender: Sender, channel: str, *, held: list[str],
           now: Callable[[], datetime], outcomes: list[Outcome]) -> None:
    """One channel's worker: its due messages in order, until none is left (or MAX_ROUNDS)."""
    try:
        for _ in range(MAX_ROUNDS):
            at = now()
            claim = store.outbox.claim_next(at, lease_until=at + settings.claim_timeout, held_channels=held,
                                            channel=channel)
            if claim is None:
                break
            message, recovered = claim
            outcomes.append(_deliver_one(store, settings, sender, message, recovered=recovered, now=now))
    except StorageError as exc:
        # e.g. SQLite busy under another writer: whatever was claimed stays claimed and its
        # lease brings it back; the next tick goes on.
        log.error("notify.storage_failed", channel=channel, error=str(exc))  # noqa: TRY400 - no trace
    finally:
        with _busy_lock:
            _busy.discard(channel)


def _deliver_one(store: Store, settings: Settings, sender: Sender, message: OutboxMessage, *,
                 recovered: bool, now: Callable[[], datetime]) -> Outcome:
    bound = log.bind(channel=message.channel, message_id=message.id, nct_id=message.nct_id, kind=message.kind,
                     attempt=message.attempts)
    if recovered:
        bound.warning("notify.recovered", note="claimed before a crash; it may reach the channel twice")
    channel = settings.channels.get(message.channel)
    # A split message some of whose parts were accepted resumes after them, rendered as at its
    # first attempt (rendering is pure), so the remaining parts are exactly the ones still owed.
    progress = store.get_meta(parts_key(message.id))
    first_part, rendered_at = 0, now()
    if isinstance(progress, dict):
        first_part, rendered_at = int(progress["sent"]), datetime.fromisoformat(progress["rendered_at"])
    try:
        if channel is None:
            raise NotifyError(f"channel {message.channel!r} is no longer configured")
        try:
            rendered = render(message.payload, channel, Delivery(
                channel=message.channel, message_id=message.id, created_at=message.created_at, now=rendered_at,
                delay_note_after=settings.delay_note_after))
        except Exception as exc:  # a payload no format can render would block its channel forever
            error = f"cannot be rendered: {type(exc).__name__}: {exc}"
            store.outbox.finish_failed(message.id, error, retry_at=None)
            bound.error("notify.parked", error=error, attempts=message.attempts, reason="unrenderable")
            return Outcome(message.channel, False, error, message.id, parked=True)
        multi = len(rendered.parts) > 1

        def part_done(count: int) -> None:
            if multi and count < len(rendered.parts):
                store.set_meta(parts_key(message.id), {"sent": count, "rendered_at": rendered_at.isoformat()})

        sender.send(message.channel, rendered, first_part=first_part, on_part=part_done)
    except NotifyError as exc:
        error = str(exc)
        park = channel is None or message.attempts >= settings.max_attempts
        retry_at = None if park else now() + retry_delay(message.attempts)
        store.outbox.finish_failed(message.id, error, retry_at=retry_at)
        if park:
            bound.error("notify.parked", error=error, attempts=message.attempts)
        else:
            bound.warning("notify.failed", error=error, retry_at=retry_at.isoformat() if retry_at else None)
        return Outcome(message.channel, False, error, message.id, parked=park)
    sent_at = now()
    store.outbox.finish_sent(message.id, sent_at, clear_meta=parts_key(message.id) if first_part or multi else None)
    delay = (sent_at - message.created_at).total_seconds()
    bound.info("notify.sent", parts=len(rendered.parts), delay_s=round(delay, 1))
    return Outcome(message.channel, True, None, message.id)

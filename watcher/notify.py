"""Turn change sets into messages and deliver the outbox through apprise.

Rendering is pure (payload → title/body); `Sender` is the thin I/O edge over apprise;
`deliver_due` walks the durable outbox, marking a message sent only after the channel
accepted it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from watcher.config import ChannelSettings, Config
from watcher.errors import NotifyError
from watcher.models import Change, Json, Trial, study_url
from watcher.render import format_value
from watcher.secrets import redact, secret_parts
from watcher.store import NewMessage, OutboxMessage, Store

log = structlog.get_logger("watcher.notify")

PAYLOAD_SCHEMA = 1
MAX_ATTEMPTS = 10


def change_to_dict(change: Change) -> dict[str, Json]:
    event = None
    if change.event is not None:
        event = {"kind": change.event.kind, "summary": change.event.summary, "data": dict(change.event.data)}
    return {"field": change.field, "change": change.change, "old": change.old, "new": change.new,
            "severity": change.severity, "event": event}


def changes_payload(trial: Trial, title: str | None, changes: Sequence[Change], *, version: int,
                    detected_at: datetime) -> dict[str, Json]:
    """The versioned, plain-data description of one trial's changes, stored in the outbox."""
    return {
        "schema": PAYLOAD_SCHEMA,
        "type": "changes",
        "nct_id": trial.nct_id,
        "label": trial.label,
        "title": title,
        "url": study_url(trial.nct_id),
        "version": version,
        "detected_at": detected_at.isoformat(),
        "changes": [change_to_dict(c) for c in changes],
    }


def change_messages(trial: Trial, title: str | None, routed: Mapping[str, Sequence[Change]], *,
                    version: int, detected_at: datetime) -> list[NewMessage]:
    return [NewMessage(channel=name, nct_id=trial.nct_id, kind="changes",
                       payload=changes_payload(trial, title, changes, version=version, detected_at=detected_at))
            for name, changes in routed.items()]


def change_line(change: Mapping[str, Json]) -> str:
    """`field: old → new`, the one-line form used in every plain-text body."""
    old = format_value(change.get("old")) if change.get("change") != "added" else "(none)"
    new = format_value(change.get("new")) if change.get("change") != "removed" else "(removed)"
    return f"{change['field']}: {old} → {new}"


def render_text(payload: Mapping[str, Json]) -> tuple[str, str]:
    """Title and plain-text body for a message payload."""
    kind = payload.get("type")
    if kind != "changes":
        return str(payload.get("subject", "TrialWatch")), str(payload.get("text", ""))
    nct_id = payload["nct_id"]
    label = payload.get("label")
    changes = payload.get("changes") or []
    head = f"{nct_id} ({label})" if label else str(nct_id)
    count = len(changes)
    title = f"{head}: {count} field change{'s' if count != 1 else ''}"
    lines = []
    if payload.get("title"):
        lines.append(str(payload["title"]))
        lines.append("")
    lines.extend(change_line(c) for c in changes)
    lines.append("")
    lines.append(str(payload.get("url") or study_url(str(nct_id))))
    return title, "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    accepted: bool
    error: str | None = None


class Sender:
    """Sends one rendered message to one channel through apprise; errors come back redacted."""

    def __init__(self, channels: Mapping[str, ChannelSettings]) -> None:
        self.channels = channels

    def send(self, channel_name: str, title: str, body: str, body_format: str = "text") -> None:
        import apprise

        channel = self.channels.get(channel_name)
        if channel is None:
            raise NotifyError(f"channel {channel_name!r} is no longer configured")
        secrets = secret_parts(channel.url)
        notifier = apprise.Apprise()
        if not notifier.add(channel.url):
            raise NotifyError(f"channel {channel_name!r}: apprise does not understand its URL")
        result = notifier.notify(body=body, title=title, body_format=body_format)
        if not result:
            messages = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
            detail = "; ".join(messages) or "the channel did not accept the message"
            raise NotifyError(f"channel {channel_name!r}: {redact(detail, secrets)}")


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def deliver_due(store: Store, sender: Sender, *, now: Callable[[], datetime],
                render: Callable[[OutboxMessage, ChannelSettings], tuple[str, str, str]] | None = None,
                max_attempts: int = MAX_ATTEMPTS) -> list[Delivery]:
    """Send every due message; a failing channel stops only its own queue (to keep order)."""
    deliveries: list[Delivery] = []
    blocked: set[str] = set()
    for message in store.due_messages(now()):
        if message.channel in blocked:
            continue
        channel = sender.channels.get(message.channel)
        try:
            if channel is None:
                raise NotifyError(f"channel {message.channel!r} is no longer configured")
            if render is not None:
                title, body, body_format = render(message, channel)
            else:
                title, body = render_text(message.payload)
                body_format = "text"
            sender.send(message.channel, title, body, body_format)
        except NotifyError as exc:
            attempts = message.attempts + 1
            park = attempts >= max_attempts or channel is None
            store.mark_failed(message.id, str(exc), retry_at=None if park else now() + retry_delay(attempts))
            blocked.add(message.channel)
            log.warning("notify.parked" if park else "notify.failed", channel=message.channel,
                        message_id=message.id, nct_id=message.nct_id, attempts=attempts, error=str(exc))
            deliveries.append(Delivery(message.channel, False, str(exc)))
            continue
        store.mark_sent(message.id, now())
        log.info("notify.sent", channel=message.channel, message_id=message.id, nct_id=message.nct_id)
        deliveries.append(Delivery(message.channel, True))
    return deliveries


def print_changes(trial: Trial, title: str | None, changes: Sequence[Change], write: Callable[[str], Any]) -> None:
    """The no-channel default: the same text a channel would get, on stdout."""
    payload = changes_payload(trial, title, changes, version=0, detected_at=datetime.now().astimezone())
    subject, body = render_text(payload)
    write(f"== {subject}\n{body}\n")


def notify_tick(config: Config, store: Store, *, now: Callable[[], datetime]) -> list[Delivery]:
    """Everything the notifier owes right now: the service calls this on a short timer and after
    each cycle, so messages whose retry time has come go out without waiting for the next poll."""
    if not config.settings.channels:
        return []
    return deliver_due(store, Sender(config.settings.channels), now=now)

"""Failures say why: a channel's refusal carries the channel's reason, a bug in our code is logged
with its traceback (secrets redacted), a message no format can render or no digest can fold is
parked with the reason recorded, and its channel moves on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import sqlalchemy
from structlog.testing import capture_logs

from tests.support.outbox import setup
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.workspace import Workspace
from watcher.config import ChannelSettings
from watcher.errors import NotifyError
from watcher.messages import AlertPayload, ChangesPayload, NewMessage
from watcher.models import Change
from watcher.notify import formats
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.payloads import notify_tick, sample_payload
from watcher.notify.send import Sender

NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # a Monday: 07:30 in Berlin
TOKEN = "123456789:AAHsuperSecretBotToken"


def change_set(nct_id: str, label: str) -> NewMessage:
    change = Change("status.overallStatus", "changed", "RECRUITING", "COMPLETED", "critical")
    payload = ChangesPayload(
        nct_id=nct_id, label=label, title=None, version=2, detected_at=NOW.isoformat(), changes=(change,)
    )
    return NewMessage("hook", payload)


def test_a_refusal_carries_the_channels_own_reason_without_its_secrets() -> None:
    channel = ChannelSettings(name="bot", url=f"tgram://{TOKEN}/-1009876543210/")
    rendered = render(sample_payload(NOW), channel, Delivery("bot", 1, NOW, NOW))
    answer = mock.Mock(status_code=401, content=b'{"ok": false, "description": "Unauthorized"}')
    with mock.patch("requests.post", return_value=answer), pytest.raises(NotifyError) as refused:
        Sender({"bot": channel}).send("bot", rendered)
    reason = str(refused.value)
    assert reason.startswith("channel 'bot': Failed to send Telegram notification")
    assert "Unauthorized" in reason and "error=401" in reason
    assert "AAHsuperSecretBotToken" not in reason and "AttributeError" not in reason


def test_a_crash_while_sending_is_logged_with_its_traceback_and_retried(webhook: WebhookReceiver) -> None:
    channel = ChannelSettings(name="hook", url=webhook.url() + "?-key=hook-secret-value")
    rendered = render(sample_payload(NOW), channel, Delivery("hook", 1, NOW, NOW))
    crash = TypeError("cannot post to https://example.org/?key=hook-secret-value")
    with (
        capture_logs() as logs,
        mock.patch("watcher.notify.hook.post", side_effect=crash),
        pytest.raises(NotifyError) as refused,
    ):
        Sender({"hook": channel}).send("hook", rendered, message_id=1)
    assert str(refused.value) == "channel 'hook': TypeError: cannot post to https://example.org/?key=***"
    (crashed,) = [e for e in logs if e["event"] == "notify.send_crashed"]
    assert crashed["log_level"] == "error" and crashed["channel"] == "hook"
    trace = crashed["exception"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "watcher/notify/send.py" in trace and trace.rstrip().endswith("key=***")
    assert "hook-secret-value" not in repr(logs)


def test_a_bug_in_a_format_parks_the_message_with_why_and_logs_the_traceback(
    workspace: Workspace, webhook: WebhookReceiver
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    store.outbox.enqueue(
        [NewMessage("hook", AlertPayload(subject="first", text="t")), NewMessage("hook", sample_payload(NOW))], NOW
    )

    def broken(ctx: formats.Context) -> formats.Rendered:
        if ctx.kind == "alert":
            raise KeyError("subjetc")
        return formats.json_webhook(ctx)

    with capture_logs() as logs, mock.patch.dict(formats.FORMATS, {"json": broken}):
        outcomes = notify_tick(config, store, now=lambda: NOW)
        wait_until(lambda: store.outbox.counts() == {"parked": 1, "sent": 1}, timeout=30)  # the channel moves on
    assert (outcomes[0].accepted, outcomes[0].parked) == (False, True)
    (parked,) = store.outbox.messages(status="parked")
    assert parked.last_error == "cannot be rendered: KeyError: 'subjetc'"
    (event,) = [e for e in logs if e["event"] == "notify.parked"]
    assert event["reason"] == "unrenderable" and event["exc_info"] is True and event["log_level"] == "error"
    assert [r.json()["kind"] for r in webhook.requests] == ["changes"]


def test_a_change_set_no_digest_can_read_is_parked_and_the_others_are_folded(
    workspace: Workspace, webhook: WebhookReceiver
) -> None:
    config, store = setup(
        workspace, {"hook": {"url": webhook.url(), "digest": "0 8 * * 1-5", "timezone": "Europe/Berlin"}}
    )
    notify_tick(config, store, now=lambda: NOW)  # the first tick starts the digest clock
    store.outbox.enqueue([change_set("NCT00000001", "fine"), change_set("NCT00000002", "damaged")], NOW)
    damaged = {**store.outbox.messages()[1].payload, "version": "two"}
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE outbox SET payload = :p WHERE id = 2"), {"p": json.dumps(damaged)})
    with capture_logs() as logs:
        notify_tick(config, store, now=lambda: NOW + timedelta(minutes=30))  # 08:00 in Berlin
    (digest,) = [r.json() for r in webhook.requests]
    assert [t["trial"]["label"] for t in digest["trials"]] == ["fine"]
    (parked,) = store.outbox.messages(status="parked")
    assert parked.id == 2
    assert parked.last_error == (
        "cannot be folded into the digest: payload cannot be read: Expected `int`, got `str` - at `$.version`"
    )
    assert [e["message_id"] for e in logs if e["event"] == "digest.unreadable"] == [2]
    assert store.outbox.counts() == {"digested": 1, "parked": 1, "sent": 1}

"""A channel refusing forever is not silent: after `notify.channel_failing_after` the healthy channels
are told once, and once more when it recovers; a refusal retrying cannot cure (401, 403, 404, 410,
413, ...) parks the message at once, and `notify-retry` queues it again after the fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.outbox import Clock, setup
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.messages import AlertPayload, NewMessage
from watcher.notify.delivery import deliver_due, permanent
from watcher.store.meta import CHANNEL_FAILING


@pytest.fixture
def second() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def _titles(receiver: WebhookReceiver) -> list[str]:
    return [r.json()["title"] for r in receiver.requests]


def test_a_channel_failing_for_long_is_told_once_on_the_healthy_ones_and_its_recovery_too(
    workspace: Workspace, webhook: WebhookReceiver, second: WebhookReceiver
) -> None:
    config, store = setup(
        workspace,
        {"down": {"url": webhook.url()}, "ok": {"url": second.url()}},
        extra="notify:\n  channel_failing_after: 10m\n",
    )
    clock = Clock()
    store.outbox.enqueue([NewMessage("down", AlertPayload(subject="owed", text="t"))], clock())
    webhook.fail_next(1000, status=503)
    deliver_due(store, config.settings, now=clock)
    assert store.meta.get(CHANNEL_FAILING.of("down")) is not None and not second.requests
    for _ in range(6):  # retries at 30 s, 1, 2, 4 min ...: twenty minutes of refusals
        clock.advance(minutes=4)
        deliver_due(store, config.settings, now=clock)
    failing = [t for t in _titles(second) if "failing" in t]
    assert failing == ["TrialWatch: channel 'down' failing for 12 min"], _titles(second)
    assert "HTTP 503" in second.requests[0].json()["message"]

    with webhook._lock:
        webhook._failures.clear()  # the channel is fixed
    clock.advance(hours=1)
    deliver_due(store, config.settings, now=clock)
    assert _titles(webhook) == ["owed"]
    clock.advance(seconds=1)
    deliver_due(store, config.settings, now=clock)  # the recovery, queued for the healthy channel
    assert _titles(second)[1:] == ["TrialWatch: channel 'down' recovered"]
    assert store.meta.get(CHANNEL_FAILING.of("down")) is None
    clock.advance(hours=1)
    deliver_due(store, config.settings, now=clock)
    assert len(second.requests) == 2, "said once each"


def test_the_others_are_told_even_while_they_refuse_a_message_of_their_own(
    workspace: Workspace, webhook: WebhookReceiver, second: WebhookReceiver
) -> None:
    """The soak's case: the webhook down for long while the mail server refused one message shortly
    before (a flaky moment, its retry 30 s away). Told only channels without a refusal of their own,
    the failure was never said, nor its recovery: the alert now waits in the other channel's queue."""
    config, store = setup(
        workspace,
        {"down": {"url": webhook.url()}, "flaky": {"url": second.url()}},
        extra="notify:\n  channel_failing_after: 45s\n",
    )
    clock = Clock()
    store.outbox.enqueue(
        [
            NewMessage("down", AlertPayload(subject="owed", text="t")),
            NewMessage("flaky", AlertPayload(subject="mine", text="t")),
        ],
        clock(),
    )
    webhook.fail_next(1000, status=503)
    second.fail_next(1, status=503)
    deliver_due(store, config.settings, now=clock)
    assert store.meta.get(CHANNEL_FAILING.of("flaky")) is not None, "the other channel has a refusal of its own"
    clock.advance(seconds=50)  # past the threshold: the alert is queued, behind the flaky channel's own message
    deliver_due(store, config.settings, now=clock)
    assert store.meta.get(CHANNEL_FAILING.of("down")).alerted  # type: ignore[union-attr]
    clock.advance(seconds=1)
    deliver_due(store, config.settings, now=clock)
    assert _titles(second) == ["mine", "TrialWatch: channel 'down' failing for 0 min"]

    second.fail_next(1, status=503)  # refusing again just as the webhook comes back
    store.outbox.enqueue([NewMessage("flaky", AlertPayload(subject="again", text="t"))], clock())
    deliver_due(store, config.settings, now=clock)
    with webhook._lock:
        webhook._failures.clear()
    clock.advance(hours=1)
    deliver_due(store, config.settings, now=clock)  # the webhook accepts: its recovery is queued too
    clock.advance(hours=1)
    deliver_due(store, config.settings, now=clock)
    assert _titles(second)[2:] == ["again", "TrialWatch: channel 'down' recovered"]


@pytest.mark.parametrize("status", [401, 403, 404, 410, 413])
def test_a_refusal_retrying_cannot_cure_parks_at_once_and_notify_retry_sends_it_after_the_fix(
    workspace: Workspace, webhook: WebhookReceiver, status: int
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    clock = Clock()
    store.outbox.enqueue([NewMessage("hook", AlertPayload(subject="owed", text="t"))], clock())
    webhook.fail_next(1, status=status)
    (outcome,) = deliver_due(store, config.settings, now=clock)
    assert outcome.parked and f"HTTP {status}" in (outcome.error or "")
    (message,) = store.outbox.messages()
    assert message.status == "parked" and message.attempts == 1
    retried = workspace.cli("notify-retry")
    assert retried.code == 0 and "1 parked message queued again" in retried.out
    clock.at = datetime.now(UTC) + timedelta(seconds=1)  # notify-retry queues it for the real now
    assert [o.accepted for o in deliver_due(store, config.settings, now=clock)] == [True]
    assert _titles(webhook) == ["owed"]


def test_transient_refusals_are_retried_not_parked() -> None:
    for error in ("HTTP 503 Service Unavailable (error=503)", "HTTP 429 Too Many Requests", "error=408", "timed out"):
        assert not permanent(error), error
    assert permanent("Failed to send Telegram notification: Unauthorized (error=401)")

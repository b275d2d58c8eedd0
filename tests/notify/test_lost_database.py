"""The database going away between a send and its mark: the message's claim is this live process's,
so no other process may take it before the lease ends — but this process knows its worker is gone,
and takes it back at the next tick instead of holding the channel for the whole lease."""

from __future__ import annotations

from unittest import mock

from structlog.testing import capture_logs

from tests.support.outbox import T0, Clock, setup
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.errors import StorageError
from watcher.messages import AlertPayload, NewMessage
from watcher.notify.delivery import deliver_due
from watcher.store.outbox import OutboxQueue


def test_a_mark_lost_with_the_database_does_not_hold_the_channel_for_the_lease(
    workspace: Workspace, webhook: WebhookReceiver
) -> None:
    config, store = setup(workspace, {"hook": {"url": webhook.url()}})
    store.outbox.enqueue([NewMessage("hook", AlertPayload(subject=s, text="t")) for s in ("first", "second")], T0)
    clock = Clock()
    gone = StorageError("database error on sqlite:///x: disk I/O error")
    with capture_logs() as logs, mock.patch.object(OutboxQueue, "finish_sent", side_effect=gone):
        assert deliver_due(store, config.settings, now=clock) == []
    assert [r.json()["title"] for r in webhook.requests] == ["first"], "sent, then the mark failed"
    assert any(e["event"] == "notify.storage_failed" for e in logs)
    assert [m.status for m in store.outbox.messages()] == ["sending", "pending"]

    clock.advance(seconds=30)  # far inside the 5-minute lease
    outcomes = deliver_due(store, config.settings, now=clock)
    assert [o.accepted for o in outcomes] == [True, True]
    titles = [r.json()["title"] for r in webhook.requests]
    assert titles == ["first", "first", "second"], "the first once more (documented: at most once more), in order"
    assert {m.status for m in store.outbox.messages()} == {"sent"}

"""A webhook's Idempotency-Key (and an email's Message-ID) is unique per installation and message.

Outbox ids start at 1 in every database: two installations — or one whose database was rebuilt —
posting to one receiver must never send one key with different content, or a receiver that drops
keys it has seen loses real alerts.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.outbox import T0, Clock, owed
from tests.support.peers import SmtpServer, WebhookReceiver
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.notify.payloads import notify_tick
from watcher.store import Store
from watcher.store.meta import INSTALLATION, installation_id


def deliver_once(root: Path, api_url: str, channels: dict[str, dict[str, str]]) -> Store:
    workspace = Workspace(root, api_url)
    workspace.write(channels=channels)
    config = load_config(workspace.settings)
    store = Store(config.settings.storage_url)
    store.outbox.enqueue([owed("NCT04728893", channel=name) for name in channels], T0)
    notify_tick(config, store, now=Clock())
    return store


def test_two_databases_send_different_keys_for_their_message_1(
    tmp_path: Path, webhook: WebhookReceiver, smtp_server: SmtpServer
) -> None:
    channels = {"hook": {"url": webhook.url()}, "mail": {"url": smtp_server.url()}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        deliver_once(tmp_path / "a", "http://127.0.0.1:9", channels) as first,
        deliver_once(tmp_path / "b", "http://127.0.0.1:9", channels) as second,
    ):
        ids = [installation_id(first.meta), installation_id(second.meta)]
        hook_ids = [m.id for s in (first, second) for m in s.outbox.messages() if m.channel == "hook"]
    assert ids[0] != ids[1]
    assert hook_ids[0] == hook_ids[1], "both databases numbered their first message alike"
    keys = [r.headers["Idempotency-Key"] for r in webhook.requests]
    assert keys == [f"trialwatch-{ids[0]}-{hook_ids[0]}", f"trialwatch-{ids[1]}-{hook_ids[1]}"]
    assert len(set(keys)) == 2
    message_ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(set(message_ids)) == 2 and all(i in h for i, h in zip(ids, message_ids, strict=True))


def test_the_installation_id_is_made_once_and_kept(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.meta.get(INSTALLATION) is None
        made = installation_id(store.meta)
        assert len(made) == 32 and made == installation_id(store.meta)
    with Store(db_url) as reopened:
        assert installation_id(reopened.meta) == made

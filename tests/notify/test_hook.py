"""JSON webhooks without apprise internals: apprise's documented json:// URL syntax, read by us,
against a real HTTP receiver — and the envelope compared with what apprise itself posts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs

import msgspec
import pytest

from tests.support.peers import WebhookReceiver
from watcher.config import ChannelSettings
from watcher.config.hookurl import hook_target
from watcher.errors import NotifyError
from watcher.notify.delivery import render
from watcher.notify.formats import Delivery
from watcher.notify.payloads import sample_payload
from watcher.notify.send import Sender

NOW = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)


def send(url: str, message_id: int = 7) -> None:
    channel = ChannelSettings(name="hook", url=url)
    data = msgspec.structs.replace(sample_payload(NOW), test=msgspec.UNSET)
    Sender({"hook": channel}).send(
        "hook", render(data, channel, Delivery("hook", message_id, NOW, NOW)), message_id=message_id
    )


def test_the_envelope_is_the_one_apprise_itself_posts(webhook: WebhookReceiver) -> None:
    import apprise

    notifier = apprise.Apprise()
    assert notifier.add(webhook.url("apprise"))
    assert notifier.notify(body="the message", title="the title")
    send(webhook.url("ours"))
    theirs, ours = (r.json() for r in webhook.requests)
    assert theirs == {
        "version": "1.0",
        "title": "the title",
        "message": "the message",
        "attachments": [],
        "type": "info",
    }
    assert {k: type(v) for k, v in theirs.items()} == {k: type(ours[k]) for k in theirs}
    assert (ours["version"], ours["attachments"], ours["type"]) == ("1.0", [], "info")
    assert ours["schema"] == "trialwatch.notification" and ours["message_id"] == 7


def test_the_documented_url_syntax_headers_params_renames_auth_and_method(webhook: WebhookReceiver) -> None:
    url = (
        f"json://bot:s3cret%2Fpw@127.0.0.1:{webhook.port}/in/hook?+X-Token=tok%2Bplus&-tenant=a%20b"
        "&:type=&:message=text&:source=trialwatch&method=PUT&format=text"
    )
    send(url, message_id=9)
    (request,) = webhook.requests
    body = request.json()
    path, _, query = request.path.partition("?")
    # a space is `+` or `%20` depending on the httpx release; a receiver reads both as a space
    assert request.method == "PUT" and path == "/in/hook" and parse_qs(query) == {"tenant": ["a b"]}
    assert request.headers["X-Token"] == "tok+plus"
    assert request.headers["Idempotency-Key"] == "trialwatch-9"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot:s3cret/pw").decode()
    assert "type" not in body and "message" not in body and body["text"].startswith("NCT04728893")
    assert body["source"] == "trialwatch"


def test_refusals_and_silence_are_errors_that_name_no_secret(webhook: WebhookReceiver) -> None:
    webhook.fail_next(1, 401)
    with pytest.raises(NotifyError) as refused:
        send(f"json://user:TopSecretPw@127.0.0.1:{webhook.port}/key-123456?+X-Token=tok-987654")
    assert "HTTP 401" in str(refused.value) and "error=401" in str(refused.value)
    with pytest.raises(NotifyError) as unreachable:
        send("json://user:TopSecretPw@127.0.0.1:9/key-123456?+X-Token=tok-987654")
    shown = str(refused.value) + str(unreachable.value) + repr(hook_target("json://u:TopSecretPw@h/key-123456"))
    for secret in ("TopSecretPw", "key-123456", "tok-987654"):
        assert secret not in shown


@pytest.mark.parametrize("url", ["json://", "json://host:notaport/x", "json://host/x?method=FETCH"])
def test_a_url_that_cannot_be_a_webhook_is_a_clear_refusal(url: str) -> None:
    with pytest.raises(NotifyError):
        hook_target(url)


@pytest.mark.parametrize("status", [301, 307])
def test_a_redirect_is_a_refusal_naming_its_host_and_nothing_reaches_that_host(status: int) -> None:
    """A 301 would turn the POST into a bodyless GET whose 200 looks like acceptance; a 307 would
    carry the body and the secret header to the other host. Neither is followed."""
    first, elsewhere = WebhookReceiver().start(), WebhookReceiver(host="127.0.0.1").start()
    try:
        first.redirect_next(status, f"http://localhost:{elsewhere.port}/stolen?token=tok-in-location")
        with pytest.raises(NotifyError) as refused:
            send(f"json://127.0.0.1:{first.port}/hook?+X-Api-Key=tok-987654")
        (asked,) = first.redirected
        assert asked.method == "POST" and asked.headers["X-Api-Key"] == "tok-987654"
        assert elsewhere.requests == [] and elsewhere.redirected == [] and first.requests == []
        shown = str(refused.value)
        assert f"HTTP {status}" in shown and f"localhost:{elsewhere.port}" in shown
        assert "tok-987654" not in shown and "tok-in-location" not in shown and "/stolen" not in shown
    finally:
        first.stop()
        elsewhere.stop()


def test_a_relative_redirect_names_the_webhook_host(webhook: WebhookReceiver) -> None:
    webhook.redirect_next(308, "/moved")
    with pytest.raises(NotifyError) as refused:
        send(webhook.url())
    assert f"127.0.0.1:{webhook.port}" in str(refused.value) and webhook.requests == []
